"""Events API: batches of interactions in, a visit's item history out. Validation only; the work is in services."""
import hashlib
import json
import re
import uuid

from django.conf import settings
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from shop.parsers import JSONParser

from .. import selectors, services
from ..http import visitor_from_request
from .serializers import IDEMPOTENCY_KEY_RE, EventBatchResultSerializer, EventBatchSerializer, SessionHistorySerializer

IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY = re.compile(IDEMPOTENCY_KEY_RE)

IDEMPOTENCY_DOC = (
    "Optional. A unique key per batch (a random UUID is best) makes a retry safe: a repeat of the key "
    f"with the same body within {settings.EVENTS_IDEMPOTENCY_HOURS} hours (EVENTS_IDEMPOTENCY_HOURS) "
    "answers exactly as the first request did (same status and body, plus `Idempotent-Replayed: true`) "
    "and stores nothing; the same key with another body is a 422. Keys belong to the token's user, or "
    "for anonymous clients to the visit (`session`). 1 to 100 printable ASCII characters, no space, "
    "quote or backslash; a structured-field string (`\"...\"`) is accepted too. Clients that cannot "
    "set headers send the body's `batch_id` instead (when both are sent, the header is the key)."
)


class BeaconJSONParser(JSONParser):
    """JSON sent as text/plain: ``navigator.sendBeacon`` can only send CORS-safelisted types."""

    media_type = "text/plain"


class EventBatchView(APIView):
    # CSRF: this view authenticates with tokens only, never with the session cookie, so a forged
    # cross-site request carries no ambient authority: it cannot act as the logged-in user. (That
    # is also why sendBeacon, which cannot set an X-CSRFToken header, works.) Events land on the
    # visit named in the body; a browser's visit id is a random uuid4 known only to its own pages,
    # and the user and staff flag come from that visit, recorded server-side by
    # visit_for_visitor on page views, or from the API token. The endpoint is append-only,
    # validates every field and accepts only JSON (application/json, or text/plain from beacons).
    authentication_classes = [TokenAuthentication]
    permission_classes = [AllowAny]
    parser_classes = [JSONParser, BeaconJSONParser]

    @extend_schema(
        operation_id="events_create",
        summary="Record a batch of 1 to 500 events of one visit",
        description=(
            "What the shop counts is what it can vouch for. Purchases are recorded from the shop's "
            "orders: a `purchase` from a client without the `tracking.record_trusted_events` "
            "permission is not stored. A recommendation impression or click keeps its `source` "
            "(recommended, similar) and `model_version`, and counts for that model, only with the "
            "`token` the shop issued when it served the item to this visit; without it the event is "
            "stored without them. The answer's `ignored` lists both, by index. Views sent here "
            "build the visit's history (its recommendations) but move the public popular list "
            "only when the client has that permission."
        ),
        request=EventBatchSerializer,
        parameters=[
            OpenApiParameter(IDEMPOTENCY_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
                             pattern=IDEMPOTENCY_KEY_RE, description=IDEMPOTENCY_DOC),
        ],
        responses={
            201: EventBatchResultSerializer,
            400: OpenApiResponse(description="Invalid batch; nothing was stored. Errors per field and per item."),
            422: OpenApiResponse(description="The idempotency key was already used for a different batch."),
        },
        examples=[
            OpenApiExample(
                "Two events",
                request_only=True,
                value={
                    "session": "0b7c1f3e-2d4a-4c59-9a8e-3f1b2c4d5e6f",
                    "batch_id": "5d0c6a3e-7f4b-4a8e-9c1d-2b3a4c5d6e7f",
                    "events": [
                        {"type": "impression", "product": 12, "source": "recommended", "position": 0,
                         "model_version": "gru4rec-20250101", "token": "0f1e2d3c4b5a69788796a5b4c3d2e1f0"},
                        {"type": "click", "product": 12, "timestamp": "2025-01-01T10:00:00Z",
                         "source": "recommended", "position": 0, "model_version": "gru4rec-20250101",
                         "token": "0f1e2d3c4b5a69788796a5b4c3d2e1f0"},
                    ],
                },
            ),
            OpenApiExample(
                "A purchase from an anonymous client",
                response_only=True,
                status_codes=["201"],
                value={
                    "session": "0b7c1f3e-2d4a-4c59-9a8e-3f1b2c4d5e6f",
                    "count": 1,
                    "ignored": [{"index": 1, "reason": "untrusted_purchase", "stored": False}],
                },
            ),
        ],
    )
    def post(self, request):
        user = request.user if request.user.is_authenticated else None
        header_key = self._header_key(request)
        serializer = EventBatchSerializer(data=request.data)
        try:
            if not serializer.is_valid():
                replay = self._replay_of_invalid(request, user, header_key)
                if replay is not None:
                    return replay
                raise serializers.ValidationError(serializer.errors)
            data = serializer.validated_data
            # The header wins: a body with its own batch_id is then just that body (any valid
            # request is accepted, whatever pair of keys it carries).
            key = header_key or data.get("batch_id")
            batch_key = self._batch_key(request, user, data["session"], key) if key is not None else None
            trusted = services.client_is_trusted(user)
            own = (request.session.get(services.VISIT_SESSION_KEY) or {}) if hasattr(request, "session") else {}
            if own.get("uuid") == str(data["session"]):
                # The browser's own visit: client-side activity keeps it alive like page views do.
                visit = services.visit_for_visitor(visitor_from_request(request))
                if str(visit.uuid) == str(data["session"]):
                    outcome = services.events_record_batch(visit, data["events"], user=user, trusted=trusted,
                                                           key=batch_key)
                    return self._answer(data["session"], outcome)
            outcome = services.events_record_for_api(data["session"], data["events"], user=user, trusted=trusted,
                                                     key=batch_key)
            return self._answer(data["session"], outcome)
        except services.BatchKeyReused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)

    def _replay_of_invalid(self, request, user, header_key) -> Response | None:
        """A retry of an accepted batch answers as the batch did, even if it would not validate now
        (a timestamp that has since left the accepted window, say)."""
        key = header_key or self._body_key(request.data)
        session = self._uuid(request.data.get("session") if isinstance(request.data, dict) else None)
        if key is None or session is None:
            return None
        outcome = services.event_batch_replay(self._batch_key(request, user, session, key))
        return self._answer(session, outcome) if outcome is not None else None

    @staticmethod
    def _answer(session, outcome) -> Response:
        response = Response({"session": str(session), **outcome.result}, status=status.HTTP_201_CREATED)
        if outcome.replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    @staticmethod
    def _header_key(request) -> str | None:
        raw = request.headers.get(IDEMPOTENCY_HEADER)
        if raw is None:
            return None
        value = raw.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':  # an RFC 8941 string, as the IETF draft has it
            value = value[1:-1]
        if not _KEY.match(value):
            raise serializers.ValidationError(
                {IDEMPOTENCY_HEADER: ["1 to 100 printable ASCII characters, without space, quote or backslash."]})
        return value

    @staticmethod
    def _body_key(data) -> str | None:
        value = data.get("batch_id") if isinstance(data, dict) else None
        return value if isinstance(value, str) and _KEY.match(value) else None

    @staticmethod
    def _uuid(value) -> uuid.UUID | None:
        try:
            return uuid.UUID(value) if isinstance(value, str) else None
        except ValueError:
            return None

    @staticmethod
    def _batch_key(request, user, session, key: str) -> services.BatchKey:
        # The fingerprint is of the parsed body in a canonical form: a retry's bytes may differ in
        # whitespace or key order and still be the same batch.
        body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        scope = f"user:{user.pk}" if user is not None else f"visit:{session}"
        return services.BatchKey(scope=scope, key=key, fingerprint=hashlib.sha256(body.encode()).hexdigest())


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
