"""Events API: batches of interactions in, a visit's item history out. Validation only; the work is in services."""
from django.http import Http404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import TokenAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors, services
from .serializers import EventBatchResultSerializer, EventBatchSerializer, SessionHistorySerializer


class BeaconJSONParser(JSONParser):
    """JSON sent as text/plain: ``navigator.sendBeacon`` can only send CORS-safelisted types."""

    media_type = "text/plain"


class EventBatchView(APIView):
    # CSRF: this view authenticates with tokens only, never with the session cookie, so a forged
    # cross-site request carries no ambient authority: it cannot act as the logged-in user. (That
    # is also why sendBeacon, which cannot set an X-CSRFToken header, works.) Events land on the
    # visit named in the body; a browser's visit id is a random uuid4 known only to its own pages,
    # and the user and staff flag come from that visit, recorded server-side by
    # visit_for_request on page views, or from the API token. The endpoint is append-only,
    # validates every field and accepts only JSON (application/json, or text/plain from beacons).
    authentication_classes = [TokenAuthentication]
    permission_classes = [AllowAny]
    parser_classes = [JSONParser, BeaconJSONParser]

    @extend_schema(
        operation_id="events_create",
        summary="Record a batch of 1 to 500 events of one visit",
        request=EventBatchSerializer,
        responses={
            201: EventBatchResultSerializer,
            400: OpenApiResponse(description="Invalid batch; nothing was stored. Errors per field and per item."),
        },
        examples=[
            OpenApiExample(
                "Two events",
                request_only=True,
                value={
                    "session": "0b7c1f3e-2d4a-4c59-9a8e-3f1b2c4d5e6f",
                    "events": [
                        {"type": "impression", "product": 12, "source": "recommended", "position": 0,
                         "model_version": "gru4rec-20250101"},
                        {"type": "click", "product": 12, "timestamp": "2025-01-01T10:00:00Z",
                         "source": "recommended", "position": 0, "model_version": "gru4rec-20250101"},
                    ],
                },
            )
        ],
    )
    def post(self, request):
        serializer = EventBatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = request.user if request.user.is_authenticated else None
        own = (request.session.get(services.VISIT_SESSION_KEY) or {}) if hasattr(request, "session") else {}
        if own.get("uuid") == str(data["session"]):
            # The browser's own visit: client-side activity keeps it alive like page views do.
            visit = services.visit_for_request(request)
            if str(visit.uuid) == str(data["session"]):
                count = services.events_record_batch(visit, data["events"], user=user)
                return Response({"session": str(visit.uuid), "count": count}, status=status.HTTP_201_CREATED)
        count = services.events_record_for_api(data["session"], data["events"], user=user)
        return Response({"session": str(data["session"]), "count": count}, status=status.HTTP_201_CREATED)


class SessionHistoryView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="sessions_history",
        summary="A visit's item history (product ids of views and clicks) in time order",
        responses={200: SessionHistorySerializer, 404: OpenApiResponse(description="Unknown visit.")},
    )
    def get(self, request, session):
        visit = selectors.visit_get(session)
        if visit is None:
            raise Http404("Unknown visit.")
        return Response({"session": str(visit.uuid), "items": selectors.session_history(visit)})
