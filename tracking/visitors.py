"""Who a tracked request is, as plain values: what the visit and event services need to know of a
browser, built once at the HTTP edge (tracking.http) so that no service takes a request."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class VisitorState:
    """What the services learn and leave during one request (one per request, shared by every
    ``Visitor`` built for it): the visit found or started, the gate's reading of the pending
    cookie, and the events to keep in it, which the response then sets or clears (tracking.http)."""

    visit: Any = None  # the visit of this request, once found or started (tracking.models.Visit)
    pending_read: bool = False  # the pending cookie has been read into ``pending``
    pending: list[dict] | None = None  # the events waiting in a valid pending cookie; None without one
    deferred: list[dict] | None = None  # events to keep in the pending cookie (None: the cookie is not set)
    pending_done: bool = False  # a visit started and recorded the cookie's events: the cookie goes


@dataclass(frozen=True)
class Visitor:
    """A browser as the tracking services see it. Built with the defaults (a session store and
    perhaps a user) it is a direct service call, not subject to the visit gate (tracking.gate)."""

    session: Any = None  # the browser's session store (a SessionBase): the visit id lives in it
    user: Any = None  # the authenticated user, or None
    gated: bool = False  # under the visit gate: an HTTP request through VisitGateMiddleware
    safe_method: bool = True  # GET, HEAD, OPTIONS or TRACE (an unsafe one passed CSRF with our cookie)
    pending_cookie: str | None = None  # the raw signed pending-events cookie, when the browser sent one
    state: VisitorState = field(default_factory=VisitorState, compare=False)

    @property
    def is_staff(self) -> bool:
        return bool(self.user is not None and self.user.is_staff)
