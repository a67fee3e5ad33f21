"""When a client gets a visit (and with it a session row): only once it has shown it is a browser.

A crawler or a script that sends no cookies must not grow the database: each of its GETs made a
``django_session`` row and a ``tracking_visit`` row that nobody would ever use again. Over HTTP
(requests that passed ``tracking.middleware.VisitGateMiddleware``) a visit may start only for:

* a request of a session that already exists (the browser kept the session cookie);
* a POST (or any other unsafe method): it reached a view, so it passed CSRF and carried our cookie;
* a request that returns the signed ``shop_pending`` cookie the shop set on an earlier response.

Otherwise ``tracking.services.visit_for_visitor`` raises ``VisitDeferred``: the page renders
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

from .visitors import Visitor

PENDING_COOKIE = "shop_pending"
PENDING_SALT = "tracking.gate.pending"
# At most this many events wait in the cookie (a browser returns it on its next request; only
# parallel first requests add more than one).
PENDING_MAX = 10
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class VisitDeferred(Exception):
    """This client has not shown it is a browser yet: it gets no visit and no session (yet)."""


def timeout_seconds() -> int:
    return int(settings.VISIT_TIMEOUT_MINUTES) * 60


def _session_exists(session) -> bool:
    if session is None:
        return False
    try:
        session.get("_")  # loads it: an unknown or expired session key is dropped here
    except Exception:  # noqa: BLE001 - an unreadable session is no session
        return False
    return bool(session.session_key)


def pending_events(visitor: Visitor) -> list[dict] | None:
    """The events waiting in this browser's valid ``shop_pending`` cookie; None without one."""
    state = visitor.state
    if state.pending_read:
        return state.pending
    events = None
    raw = visitor.pending_cookie
    if raw:
        try:
            value = signing.loads(raw, salt=PENDING_SALT, max_age=timeout_seconds())
            events = [_event_parse(item) for item in value][:PENDING_MAX]
            events = [e for e in events if e is not None]
        except (signing.BadSignature, ValueError, TypeError, KeyError):
            events = None
    state.pending, state.pending_read = events, True
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


def visit_may_start(visitor: Visitor) -> bool:
    if not visitor.gated:
        return True
    if not visitor.safe_method:
        return True
    if _session_exists(visitor.session):
        return True
    return pending_events(visitor) is not None


def event_defer(visitor: Visitor, event_type: str, product, source: str = "") -> None:
    """Keep an event of a client without a visit in its ``shop_pending`` cookie (set on the response)."""
    product_id = getattr(product, "pk", product)
    state = visitor.state
    if state.deferred is None:
        state.deferred = []
    state.deferred.append({"t": event_type, "p": int(product_id), "s": source or "", "at": timezone.now().isoformat()})


def visit_refused(visitor: Visitor) -> None:
    """Remember that this browser wanted a visit: the response asks it to show itself."""
    if visitor.state.deferred is None:
        visitor.state.deferred = []


def pending_record(visitor: Visitor, visit) -> int:
    """A visit has just started: record the events its browser made before (from the cookie)."""
    events = pending_events(visitor) or []
    visitor.state.pending_done = True
    if not events:
        return 0
    # why: services imports this module (services <-> gate is a cycle left to untangle in tracking)
    from . import services

    known = set(Product.objects.filter(pk__in={e["product"] for e in events}).values_list("pk", flat=True))
    oldest = timezone.now() - timedelta(seconds=timeout_seconds())
    user = visitor.user
    stored = 0
    for event in events:
        if event["product"] not in known or event["type"] not in services.EVENT_TYPE_VALUES:
            continue
        stamp = event["timestamp"]
        if timezone.is_naive(stamp) or stamp < oldest or stamp > timezone.now():
            continue
        services.event_record(visit, event["type"], event["product"], source=services._label(event["source"], "source"),
                              user=user, is_staff=visitor.is_staff, timestamp=stamp)
        stored += 1
    return stored


def pending_cookie_value(visitor: Visitor) -> str:
    """The ``shop_pending`` cookie's new value: the events still waiting and those deferred now."""
    events = [
        {"t": e["type"], "p": e["product"], "s": e["source"], "at": e["timestamp"].isoformat()}
        for e in (pending_events(visitor) or [])
    ] + (visitor.state.deferred or [])
    return signing.dumps(events[-PENDING_MAX:], salt=PENDING_SALT, compress=True)
