"""Template context for client-side tracking: the visit id and where to send events."""
from django.urls import reverse


def visit(request):
    # The storefront's base template puts these in window.SHOP for tracking.js.
    if not hasattr(request, "session"):
        return {"tracking_visit_id": "", "tracking_events_url": reverse("tracking-events")}
    from .services import visit_for_request

    return {"tracking_visit_id": str(visit_for_request(request).uuid), "tracking_events_url": reverse("tracking-events")}
