"""Puts HTTP requests under the visit gate (tracking.gate): clients that have not shown they are
browsers get no visit and no session; the signed pending-events cookie is set or cleared here."""
from . import http


class VisitGateMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        http.gate_enable(request)
        response = self.get_response(request)
        http.response_update(request, response)
        return response
