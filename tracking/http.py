"""The HTTP edge of tracking: what a request says about its browser, as plain values for the
services (``visitor_from_request``), and the visit gate's pending cookie on the response."""
from __future__ import annotations

from django.conf import settings

from . import gate
from .visitors import Visitor, VisitorState

_STATE_ATTR = "_tracking_visitor_state"


def gate_enable(request) -> None:
    """Mark an HTTP request as subject to the gate (the middleware does; direct service calls are not)."""
    request._visit_gate = True


def visitor_state(request) -> VisitorState | None:
    """What the services did for this request so far; None when no visitor was built for it."""
    return getattr(request, _STATE_ATTR, None)


def visitor_from_request(request) -> Visitor:
    """The request's browser as the tracking services need it. Cheap: built where a view calls a
    service (the user may have signed in meanwhile); all of a request's visitors share one state."""
    state = visitor_state(request)
    if state is None:
        state = VisitorState()
        setattr(request, _STATE_ATTR, state)
    user = getattr(request, "user", None)
    return Visitor(
        session=getattr(request, "session", None),
        user=user if user is not None and user.is_authenticated else None,
        gated=bool(getattr(request, "_visit_gate", False)),
        safe_method=request.method in gate.SAFE_METHODS,
        pending_cookie=request.COOKIES.get(gate.PENDING_COOKIE),
        state=state,
    )


def response_update(request, response) -> None:
    """Set, keep or clear the pending-events cookie after the view has run."""
    state = visitor_state(request)
    if state is None:  # no service looked at this request's visit: nothing to set or clear
        return
    if state.deferred is not None:
        visitor = Visitor(pending_cookie=request.COOKIES.get(gate.PENDING_COOKIE), state=state)
        # Signed (only the shop can have written it) and dated (max_age on reading); URL-safe base64,
        # so no cookie quoting for clients to get wrong.
        response.set_cookie(
            gate.PENDING_COOKIE, gate.pending_cookie_value(visitor), max_age=gate.timeout_seconds(),
            httponly=True, samesite="Lax", secure=settings.SESSION_COOKIE_SECURE,
        )
    elif state.pending_done and gate.PENDING_COOKIE in request.COOKIES:
        response.delete_cookie(gate.PENDING_COOKIE, samesite="Lax")
