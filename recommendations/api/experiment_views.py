"""/api/experiments/ (staff only): list, create, retrieve; start, stop, promote; the report.
Validation and orchestration only: ``recommendations.experimenting`` does the work."""
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from recommendations import experimenting
from recommendations.models import Experiment

from .experiment_serializers import (
    ExperimentCreateSerializer,
    ExperimentDetailSerializer,
    ExperimentReportSerializer,
    ExperimentSerializer,
    PromoteSerializer,
)
from .permissions import IsStaffWithModelPermission

CONFLICT = inline_serializer("ExperimentConflict", {"detail": serializers.CharField()})


class ExperimentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Online experiments between model versions (A/B or interleaving) on a recommendation surface."""

    permission_classes = [IsStaffWithModelPermission]
    queryset = Experiment.objects.prefetch_related("arms__model_version").select_related("started_by", "stopped_by")
    serializer_class = ExperimentSerializer
    pagination_class = None
    lookup_value_regex = r"[0-9]{1,18}"  # an id; anything else is the API's JSON 404

    @property
    def required_perm(self):
        # read: any staff; create: the add permission; start, stop, promote: run_experiment
        return "recommendations.add_experiment" if self.action == "create" else "recommendations.run_experiment"

    def get_queryset(self):
        return self.queryset.all()[:200] if self.action == "list" else self.queryset.all()

    @extend_schema(responses=ExperimentDetailSerializer)
    def retrieve(self, request, *args, **kwargs):
        experiment = self.get_object()
        data = ExperimentDetailSerializer(experiment).data
        data["design"] = experimenting.design_summary(experiment)
        return Response(data)

    @extend_schema(request=ExperimentCreateSerializer, responses={201: ExperimentSerializer})
    def create(self, request):
        q = ExperimentCreateSerializer(data=request.data)
        q.is_valid(raise_exception=True)
        v = q.validated_data
        arms = [experimenting.ArmInput(a["name"], a["model_version"], a["share"], a["is_control"]) for a in v["arms"]]
        try:
            experiment = experimenting.experiment_create(
                name=v["name"], surface=v["surface"], mode=v["mode"], arms=arms, alpha=v["alpha"], power=v["power"],
                mde=v["mde"], baseline_rate=v["baseline_rate"], user=request.user)
        except experimenting.ExperimentInvalid as exc:
            return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
        return Response(ExperimentSerializer(self.queryset.get(pk=experiment.pk)).data, status=status.HTTP_201_CREATED)

    def _act(self, fn, *args):
        experiment = get_object_or_404(Experiment.objects.all(), pk=self.kwargs["pk"])
        try:
            experiment = fn(experiment, *args, user=self.request.user)
        except experimenting.ExperimentRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(ExperimentSerializer(self.queryset.get(pk=experiment.pk)).data)

    @extend_schema(request=None, responses={200: ExperimentSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        return self._act(experimenting.experiment_start)

    @extend_schema(request=None, responses={200: ExperimentSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        return self._act(experimenting.experiment_stop)

    @extend_schema(request=PromoteSerializer, responses={200: ExperimentSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def promote(self, request, pk=None):
        experiment = get_object_or_404(Experiment.objects.all(), pk=pk)
        q = PromoteSerializer(data=request.data)
        q.is_valid(raise_exception=True)
        arm = experiment.arms.filter(pk=q.validated_data["arm"]).first()
        if arm is None:
            return Response({"arm": [f"Experiment {experiment.pk} has no arm {q.validated_data['arm']}."]},
                            status=status.HTTP_400_BAD_REQUEST)
        return self._act(experimenting.experiment_promote, arm)

    @extend_schema(responses=ExperimentReportSerializer)
    @action(detail=True, methods=["get"])
    def report(self, request, pk=None):
        experiment = get_object_or_404(Experiment.objects.all(), pk=pk)
        return Response(experimenting.experiment_report(experiment))
