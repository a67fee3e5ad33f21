"""Serializers of /api/experiments/: every design field checked with bounds (a 400 naming the
field, never a 500), the answers as documented in the OpenAPI schema."""
import math

from django.core.validators import RegexValidator
from rest_framework import serializers

from recommendations.models import Experiment, ExperimentArm, ModelVersion
from shop.validators import JsonBooleanField, JsonCharField, JsonIntegerField

POPULAR = "popular"


class JsonFloatField(serializers.FloatField):
    """A finite JSON number; strings, booleans, NaN and infinities are type errors."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        try:
            value = float(data)
        except OverflowError:  # an integer too large for a float
            self.fail("invalid")
        if not math.isfinite(value):
            self.fail("invalid")
        return super().to_internal_value(value)


class ArmWriteSerializer(serializers.Serializer):
    name = JsonCharField(max_length=32, help_text="The arm's name, unique in the experiment (e.g. control, v2).")
    model_version = JsonCharField(
        max_length=64, allow_null=True, required=False, default=None,
        help_text="The model version (its name) this arm serves; null or \"popular\" for the popular list.")
    share = JsonFloatField(min_value=0.001, max_value=1.0, help_text="Traffic share (normalised over the arms).")
    is_control = JsonBooleanField(default=False, help_text="The arm the others are compared with (default: the first).")


class ExperimentCreateSerializer(serializers.Serializer):
    name = JsonCharField(max_length=100, validators=[
        RegexValidator(r"^[^\x00]*[^\s\x00][^\x00]*$", "Give the experiment a name (no NUL characters).")])
    surface = serializers.ChoiceField(choices=Experiment.Surface.choices)
    mode = serializers.ChoiceField(choices=Experiment.Mode.choices, default=Experiment.Mode.AB)
    arms = ArmWriteSerializer(many=True, min_length=2, max_length=8)
    alpha = JsonFloatField(min_value=0.001, max_value=0.5, default=0.05, help_text="The test's level (false positive rate).")
    power = JsonFloatField(min_value=0.51, max_value=0.99, default=0.8, help_text="The power wanted at the MDE.")
    mde = JsonFloatField(min_value=0.001, max_value=10.0, default=0.05,
                         help_text="Minimum detectable effect: the relative lift of the CTR the design is sized for.")
    baseline_rate = JsonFloatField(min_value=0.0001, max_value=0.999, default=0.05,
                                   help_text="The control's expected CTR (for the sample size).")

    def validate_arms(self, arms):
        names = [a["model_version"] for a in arms if a["model_version"] not in (None, POPULAR)]
        found = {mv.version: mv for mv in ModelVersion.objects.filter(version__in=names)}
        missing = sorted(set(names) - set(found))
        if missing:
            raise serializers.ValidationError(f"Unknown model version(s): {', '.join(missing)}.")
        for arm in arms:
            arm["model_version"] = found.get(arm["model_version"])
        if len({a["name"] for a in arms}) != len(arms):
            raise serializers.ValidationError("Arm names must differ.")
        if sum(1 for a in arms if a["is_control"]) > 1:
            raise serializers.ValidationError("At most one arm is the control.")
        return arms

    def validate(self, data):
        if data.get("mode") == Experiment.Mode.INTERLEAVING and len(data.get("arms", [])) != 2:
            raise serializers.ValidationError({"arms": ["Interleaving mixes exactly two arms."]})
        return data


class PromoteSerializer(serializers.Serializer):
    arm = JsonIntegerField(min_value=1, max_value=2**63 - 1, help_text="The id of the arm whose model to activate.")


class ArmSerializer(serializers.ModelSerializer):
    model_version = serializers.SlugRelatedField(slug_field="version", read_only=True, allow_null=True)

    class Meta:
        model = ExperimentArm
        fields = ["id", "name", "model_version", "share", "is_control"]
        read_only_fields = fields


class ExperimentSerializer(serializers.ModelSerializer):
    arms = ArmSerializer(many=True, read_only=True)
    started_by = serializers.StringRelatedField(allow_null=True)
    stopped_by = serializers.StringRelatedField(allow_null=True)

    class Meta:
        model = Experiment
        # never the salt: whoever knows it could pick visits for an arm
        fields = ["id", "name", "surface", "mode", "status", "alpha", "power", "mde", "baseline_rate",
                  "memory_estimate_mb", "created", "started_at", "started_by", "stopped_at", "stopped_by",
                  "winner", "arms"]
        read_only_fields = fields


class ExperimentDetailSerializer(ExperimentSerializer):
    design = serializers.DictField(read_only=True, help_text=(
        "The pre-registered design: the test, alpha, power, MDE, visits per arm needed, the memory the "
        "models take against the budget."))

    class Meta(ExperimentSerializer.Meta):
        fields = [*ExperimentSerializer.Meta.fields, "design"]
        read_only_fields = fields


class ExperimentReportSerializer(serializers.Serializer):
    """The results (recommendations.experimenting.experiment_report)."""

    experiment = serializers.IntegerField()
    name = serializers.CharField()
    surface = serializers.CharField()
    mode = serializers.CharField()
    status = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    stopped_at = serializers.DateTimeField(allow_null=True)
    winner = serializers.IntegerField(allow_null=True)
    arms = serializers.ListField(child=serializers.DictField(), help_text=(
        "Per arm: visits, impressions, clicks, add_to_carts, orders, revenue, revenue_sq and `stats` (rates with "
        "95% confidence intervals, the difference to control with its always-valid p-value)."))
    interleaving = serializers.DictField(allow_null=True)
    interleaving_stats = serializers.DictField(allow_null=True, required=False)
    srm = serializers.DictField(allow_null=True, required=False)
    days = serializers.ListField(child=serializers.DictField(), help_text=(
        "The daily looks: per day, per arm name the counts so far and the always-valid p-values (charts)."))
