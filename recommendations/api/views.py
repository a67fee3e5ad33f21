"""Recommendations API: validation and orchestration only; ranking, registry and training do the work."""
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import Product
from recommendations import caches, ranking, registry, selectors, training
from tracking.attribution import served_token
from tracking.services import VISIT_SESSION_KEY

from .permissions import IsStaffWithModelPermission
from .serializers import (
    ProductSerializer,
    ModelVersionSerializer,
    RecommendationQuerySerializer,
    RecommendationRequestSerializer,
    RecommendationResultSerializer,
    SimilarQuerySerializer,
    TrainingRunSerializer,
    TrainRequestSerializer,
    query_validated_fast,
)


def _product_data(product) -> dict:
    """The products API representation, cached per process with the product itself (both are
    dropped when the catalogue's cache version changes): no serializer work on the hot path."""
    cached = caches.product_serialized(product.pk)
    if cached is None:
        cached = ProductSerializer(product).data
        caches.product_serialized_put(product.pk, cached)
    return cached


def _query(serializer_class, request) -> dict:
    """The validated query parameters: the fast path for plain valid queries, else the serializer
    (which raises the 400 with field errors)."""
    fast = query_validated_fast(serializer_class, request.query_params)
    if fast is not None:
        return fast
    # A plain dict (the last value of each parameter), not the QueryDict: DRF reads a QueryDict as an
    # HTML form, where "?k=" or "?session=" means "not given"; an empty value is not a number or a uuid.
    q = serializer_class(data=request.query_params.dict())
    q.is_valid(raise_exception=True)
    return q.validated_data


def _own_visit(request) -> str | None:
    """The browser's own tracking visit, read from its session (never created: serving writes nothing)."""
    session = getattr(request, "session", None)
    data = session.get(VISIT_SESSION_KEY) if session is not None and session.session_key else None
    return data.get("uuid") if isinstance(data, dict) else None


def _answer(result, request, visit=None, source="recommended") -> Response:
    # Same shape as RecommendationResultSerializer (the documented schema), built directly. Each
    # item carries the served-item token that lets its impressions and clicks count for this
    # model version (tracking.attribution); null when the list was served to no visit.
    # In an experiment each item names its own source (the arm) and version, and its token binds them.
    items = []
    for s in result.items:
        item_source = s.source or source
        item_version = s.model_version if s.source else result.model_version
        items.append({"product": _product_data(s.product), "score": s.score,
                      "token": served_token(visit, item_version or "", s.product.pk, item_source) or None,
                      "source": item_source, "model_version": item_version})
    data = {
        "strategy": result.strategy,
        "model_version": result.model_version,
        "items": items,
        "experiment": result.experiment,
    }
    if result.explanation is not None:
        data["explanation"] = result.explanation
    return Response(data)


class RecommendationView(APIView):
    """Next products for a live session, by tracking visit id (GET) or product ids in order (POST)."""

    @extend_schema(parameters=[RecommendationQuerySerializer], responses=RecommendationResultSerializer)
    def get(self, request):
        v = _query(RecommendationQuerySerializer, request)
        visit = v.get("session") or _own_visit(request)
        result = ranking.recommend_for_session(
            session=v.get("session"), k=v["k"], exclude_seen=v["exclude_seen"], explain=v["explain"],
            category=v.get("category"), visit=visit,
        )
        return _answer(result, request, visit)

    @extend_schema(request=RecommendationRequestSerializer, responses=RecommendationResultSerializer)
    def post(self, request):
        q = RecommendationRequestSerializer(data=request.data)
        q.is_valid(raise_exception=True)
        v = q.validated_data
        visit = _own_visit(request)
        result = ranking.recommend_for_session(
            items=v["items"], k=v["k"], exclude_seen=v["exclude_seen"], explain=v["explain"],
            category=v.get("category"), visit=visit,
        )
        return _answer(result, request, visit)


class SimilarItemsView(APIView):
    """Products similar to this one (the active model's item embeddings; item-kNN; popular)."""

    @extend_schema(parameters=[SimilarQuerySerializer], responses=RecommendationResultSerializer)
    def get(self, request, pk: int):
        k = _query(SimilarQuerySerializer, request)["k"]
        product = get_object_or_404(Product.objects.only("pk", "category_id"), pk=pk, is_active=True)
        visit = _own_visit(request)
        return _answer(ranking.similar_items(product, k=k, visit=visit), request, visit, "similar")


class ModelVersionListView(APIView):
    permission_classes = [IsStaffWithModelPermission]

    @extend_schema(responses=ModelVersionSerializer(many=True))
    def get(self, request):
        return Response(ModelVersionSerializer(selectors.model_version_list()[:200], many=True).data)


class ModelVersionActivateView(APIView):
    permission_classes = [IsStaffWithModelPermission]
    required_perm = "recommendations.activate_modelversion"

    @extend_schema(request=None, responses=ModelVersionSerializer)
    def post(self, request, pk: int):
        mv = get_object_or_404(selectors.model_version_list(), pk=pk)
        try:
            mv = registry.model_activate(mv, user=request.user)
        except registry.ActivationRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(ModelVersionSerializer(mv).data)


class ModelTrainView(APIView):
    permission_classes = [IsStaffWithModelPermission]
    required_perm = "recommendations.train_model"

    @extend_schema(request=TrainRequestSerializer, responses={202: TrainingRunSerializer, 503: inline_serializer(
        "TrainingNotQueued", {"detail": serializers.CharField(), "run": serializers.IntegerField()})})
    def post(self, request):
        q = TrainRequestSerializer(data=request.data)
        q.is_valid(raise_exception=True)
        try:
            run = training.training_run_queue(
                user=request.user, params=q.validated_data.get("params") or None, activate=q.validated_data["activate"]
            )
        except training.TrainingNotQueued as exc:  # the broker is down: the run is failed, say so now
            return Response({"detail": str(exc), "run": exc.run.pk}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        run.refresh_from_db()
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunDetailView(APIView):
    permission_classes = [IsStaffWithModelPermission]

    @extend_schema(responses=TrainingRunSerializer)
    def get(self, request, pk: int):
        return Response(TrainingRunSerializer(get_object_or_404(selectors.training_run_list(), pk=pk)).data)
