"""Template context for client-side tracking: the visit id and where to send events."""


def visit(request):
    # Filled in by the tracking app: the storefront's JS reads these to batch impressions and clicks.
    return {"tracking_visit_id": "", "tracking_events_url": "/api/events/"}
