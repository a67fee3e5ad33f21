"""Gives every session its owner id when the session is first saved (see selectors.OWNER_SESSION_KEY)."""
from . import services


class SessionOwnerMiddleware:
    """Must come after SessionMiddleware: its answer is handled before the session is saved.

    The owner id is written once, with the session's first save, so that every later copy of the
    session (parallel requests, a cache in front of the database) already carries it and no request
    has to rewrite the session to set it: parallel first cart adds then all find the same owner.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        # An empty session (none yet, or flushed by logout) stays unsaved: no row for a bare visit.
        if session is not None and session.modified and not session.is_empty():
            services.session_owner_ensure(session)
        return response
