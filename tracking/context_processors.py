"""Template context for client-side tracking: the visit id and where to send events.

Read-only: it runs for every template rendered with a request (the storefront, but also the admin
and Swagger UI at /api/docs/), so it never starts a visit, which would write a visit row and a
session row for any client, crawlers included. It gives the visit the view already has, or renews
the one this browser's session holds; pages without one send no events (tracking.js stays idle)."""
from django.urls import reverse

from .gate import VisitDeferred
from .http import visitor_from_request, visitor_state
from .services import VISIT_SESSION_KEY, visit_for_visitor


def visit(request):
    # The storefront's base template puts these in window.SHOP for tracking.js.
    context = {"tracking_visit_id": "", "tracking_events_url": reverse("tracking-events")}
    state = visitor_state(request)
    current = state.visit if state is not None else None
    if current is None and hasattr(request, "session"):
        if request.session.get(VISIT_SESSION_KEY):
            try:
                current = visit_for_visitor(visitor_from_request(request))  # the session exists: a browser, renewed as before
            except VisitDeferred:
                current = None
    if current is not None:
        context["tracking_visit_id"] = str(current.uuid)
    return context
