"""When a client gets a visit (and with it a session row): only once it has shown it is a browser.

A crawler or a script that sends no cookies must not grow the database: each of its GETs made a
``django_session`` row and a ``tracking_visit`` row that nobody would ever use again. Over HTTP
(requests that passed ``tracking.middleware.VisitGateMiddleware``) a visit may start only for:

* a request of a session that already exists (the browser kept the session cookie);
* a POST (or any other unsafe method): it reached a view, so it passed CSRF and carried our cookie;
* a request that returns the signed ``shop_pending`` cookie the shop set on an earlier response.

Otherwise ``tracking.services.visit_for_request`` raises ``VisitDeferred``: the page renders
without a visit (recommendations from the product alone), and the event it would have recorded
(the product view) goes into the ``shop_pending`` cookie, signed, with its time. When the browser
comes back with that cookie, the visit starts and those events are recorded first, with their
own times, so the first page's view is not lost. A client that never returns a cookie costs no row.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.utils import timezone

from catalog.models import Product

PENDING_COOKIE = "shop_pending"
PENDING_SALT = "tracking.gate.pending"
# At most this many events wait in the cookie (a browser returns it on its next request; only
# parallel first requests add more than one).
PENDING_MAX = 10
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class VisitDeferred(Exception):
    """This client has not shown it is a browser yet: it gets no visit and no session (yet)."""


def gate_enable(request) -> None:
    """Mark an HTTP request as subject to the gate (the middleware does; direct service calls are not)."""
    request._visit_gate = True


def _timeout_seconds() -> int:
    return int(settings.VISIT_TIMEOUT_MINUTES) * 60


def _session_exists(request) -> bool:
    session = getattr(request, "session", None)
    if session is None:
        return False
    try:
        session.get("_")  # loads it: an unknown or expired session key is dropped here
    except Exception:  # noqa: BLE001 - an unreadable session is no session
        return False
    return bool(session.session_key)


def pending_events(request) -> list[dict] | None:
    """The events waiting in this request's valid ``shop_pending`` cookie; None without one."""
    if hasattr(request, "_visit_pending"):
        return request._visit_pending
    events = None
    raw = request.COOKIES.get(PENDING_COOKIE)
    if raw:
        try:
            value = signing.loads(raw, salt=PENDING_SALT, max_age=_timeout_seconds())
            events = [_event_parse(item) for item in value][:PENDING_MAX]
            events = [e for e in events if e is not None]
        except (signing.BadSignature, ValueError, TypeError, KeyError):
            events = None
    request._visit_pending = events
    return events


def _event_parse(item) -> dict | None:
    if not isinstance(item, dict):
        return None
    product = item.get("p")
    if type(product) is not int or product < 1:
        return None
    return {
        "type": str(item.get("t", "")),
        "product": product,
        "source": str(item.get("s") or ""),
        "timestamp": datetime.fromisoformat(str(item["at"])),
    }


def visit_may_start(request) -> bool:
    if not getattr(request, "_visit_gate", False):
        return True
    if request.method not in SAFE_METHODS:
        return True
    if _session_exists(request):
        return True
    return pending_events(request) is not None


def event_defer(request, event_type: str, product, source: str = "") -> None:
    """Keep an event of a client without a visit in its ``shop_pending`` cookie (set on the response)."""
    product_id = getattr(product, "pk", product)
    deferred = getattr(request, "_visit_deferred", None)
    if deferred is None:
        deferred = request._visit_deferred = []
    deferred.append({"t": event_type, "p": int(product_id), "s": source or "", "at": timezone.now().isoformat()})


def visit_refused(request) -> None:
    """Remember that this request wanted a visit: its response asks the browser to show itself."""
    if getattr(request, "_visit_deferred", None) is None:
        request._visit_deferred = []


def pending_record(request, visit) -> int:
    """A visit has just started: record the events its browser made before (from the cookie)."""
    events = pending_events(request) or []
    request._visit_pending_done = True
    if not events:
        return 0
    # why: services imports this module (services <-> gate is a cycle left to untangle in tracking)
    from . import services

    known = set(Product.objects.filter(pk__in={e["product"] for e in events}).values_list("pk", flat=True))
    oldest = timezone.now() - timedelta(seconds=_timeout_seconds())
    user = services._request_user(request)
    stored = 0
    for event in events:
        if event["product"] not in known or event["type"] not in services.EVENT_TYPE_VALUES:
            continue
        stamp = event["timestamp"]
        if timezone.is_naive(stamp) or stamp < oldest or stamp > timezone.now():
            continue
        services.event_record(visit, event["type"], event["product"], source=services._label(event["source"], "source"),
                              user=user, is_staff=bool(user and user.is_staff), timestamp=stamp)
        stored += 1
    return stored


def response_update(request, response) -> None:
    """Set, keep or clear the ``shop_pending`` cookie after the view has run."""
    deferred = getattr(request, "_visit_deferred", None)
    if deferred is not None:
        events = [
            {"t": e["type"], "p": e["product"], "s": e["source"], "at": e["timestamp"].isoformat()}
            for e in (pending_events(request) or [])
        ] + deferred
        # Signed (only the shop can have written it) and dated (max_age on reading); URL-safe base64,
        # so no cookie quoting for clients to get wrong.
        response.set_cookie(
            PENDING_COOKIE, signing.dumps(events[-PENDING_MAX:], salt=PENDING_SALT, compress=True),
            max_age=_timeout_seconds(), httponly=True, samesite="Lax", secure=settings.SESSION_COOKIE_SECURE,
        )
    elif getattr(request, "_visit_pending_done", False) and PENDING_COOKIE in request.COOKIES:
        response.delete_cookie(PENDING_COOKIE, samesite="Lax")
