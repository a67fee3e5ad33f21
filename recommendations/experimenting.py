"""Online experiments between model versions: create, start, stop, promote the winner, report.

An experiment runs on one surface ("recommended" for you, "similar" items) in one of two modes:
A/B (each visit sees one arm, chosen by a salted hash of its id: sticky, independent between
experiments) or team-draft interleaving (two arms' lists mixed in one response, each item credited
to the arm that contributed it). Serving (``serving``: every process loads the running
experiments' arm models like the active one; ``ranking``: the visit's arm answers) writes nothing;
this module is the only writer of the experiment rows.

What counts is only what the shop can vouch for: trusted, non-staff events whose source names the
arm ("recommended-x<experiment>-<arm>"), which the events API keeps only with the served-item token
the shop issued for that visit, product, version and arm (tracking.attribution). Add-to-carts count
for an arm when the visit had that arm's impression of the product before; orders and revenue when
the visit (A/B) had an impression of the arm before the order (orders come from the storefront
through :func:`order_source_register`: this app never imports the shop).

The statistics (confidence intervals, the always-valid p-values of the mixture sequential
probability ratio test, the sample-ratio-mismatch check, the pre-registered sample size) are the
Django-free ``recommendations.experiments.stats``; :func:`_statistics` is the one place that calls it.
"""
from __future__ import annotations

import datetime
import logging
import math
import numbers
from collections import defaultdict
from collections.abc import Callable, Iterable
import dataclasses
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from tracking.models import Event, EventType

from . import registry
from .experiments import assignment, stats
from .models import Experiment, ExperimentArm, ModelVersion
from .serving import arm_source

logger = logging.getLogger(__name__)

MB = 1024 * 1024
# What a loaded model takes beyond its artifact, measured (bench/experiment_memory.py, 40k-item
# GRU4Rec): the int8 candidate copy of the output embeddings, the item-id and product-pk maps.
MEMORY_ARTIFACT_FACTOR = 1.3
MEMORY_PER_ITEM_BYTES = 400
REPORT_CACHE_SECONDS = 30
NAME_MAX = 100
ARM_NAME_MAX = 32
ARMS_MAX = 8


class ExperimentInvalid(ValueError):
    """A design the shop refuses; ``errors`` maps each bad field to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


class ExperimentRefused(Exception):
    """The action does not apply now (another experiment runs on the surface, the memory budget,
    a stopped experiment started again, a popular arm promoted)."""


@dataclass(frozen=True)
class ArmInput:
    name: str
    model_version: ModelVersion | None  # None: the popular list
    share: float
    is_control: bool = False


# ------------------------------------------------------------------------ orders (storefront hook)
_ORDER_SOURCE: Callable[[Iterable[int]], Iterable[tuple[int, datetime.datetime, float]]] | None = None


def order_source_register(fn) -> None:
    """Register ``fn(visit_ids) -> [(visit_id, created, total), ...]``: the orders of those visits
    (the storefront registers it in its ``apps.ready``; without one, orders and revenue are 0)."""
    global _ORDER_SOURCE
    _ORDER_SOURCE = fn


# ----------------------------------------------------------------------------------- memory
def model_memory_mb(mv: ModelVersion | None) -> float:
    """What serving ``mv`` takes in one process, estimated from its artifact and catalogue size
    (0 for the popular arm)."""
    if mv is None:
        return 0.0
    return (float(mv.artifact_size) * MEMORY_ARTIFACT_FACTOR + float(mv.n_items) * MEMORY_PER_ITEM_BYTES) / MB


def memory_budget_mb() -> float:
    return float(settings.EXPERIMENT_MEMORY_BUDGET_MB)


def memory_needed_mb(experiment: Experiment) -> tuple[float, list[str]]:
    """The models every process would hold with ``experiment`` running: the active one, the arms of
    the experiments running now and this one's, each version once. Returns (MB, the versions)."""
    versions = {}
    active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    if active is not None:
        versions[active.pk] = active
    arms = ExperimentArm.objects.filter(model_version__isnull=False).select_related("model_version")
    running = arms.filter(experiment__status=Experiment.Status.RUNNING).exclude(experiment=experiment)
    for arm in [*running, *arms.filter(experiment=experiment)]:
        versions[arm.model_version_id] = arm.model_version
    total = sum(model_memory_mb(mv) for mv in versions.values())
    return total, sorted(mv.version for mv in versions.values())


# ----------------------------------------------------------------------------------- design
def _design_errors(*, name, surface, mode, arms: list[ArmInput], alpha, power, mde, baseline_rate) -> dict:
    errors: dict[str, list[str]] = defaultdict(list)
    if not isinstance(name, str) or not name.strip():
        errors["name"].append("Give the experiment a name.")
    elif len(name) > NAME_MAX:
        errors["name"].append(f"At most {NAME_MAX} characters.")
    if surface not in Experiment.Surface.values:
        errors["surface"].append(f"{surface!r} is not one of {', '.join(Experiment.Surface.values)}.")
    if mode not in Experiment.Mode.values:
        errors["mode"].append(f"{mode!r} is not one of {', '.join(Experiment.Mode.values)}.")
    if len(arms) < 2:
        errors["arms"].append("An experiment needs at least two arms.")
    if len(arms) > ARMS_MAX:
        errors["arms"].append(f"At most {ARMS_MAX} arms.")
    if mode == Experiment.Mode.INTERLEAVING and len(arms) != 2:
        errors["arms"].append("Interleaving mixes exactly two arms.")
    names = [a.name for a in arms]
    for arm in arms:
        if not arm.name or len(arm.name) > ARM_NAME_MAX:
            errors["arms"].append(f"Arm names are 1 to {ARM_NAME_MAX} characters, got {arm.name!r}.")
        share = arm.share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < float(share) <= 1:
            errors["arms"].append(f"Arm {arm.name}: the share must be a number above 0 and at most 1, got {share!r}.")
        mv = arm.model_version
        if mv is not None and not ModelVersion.objects.filter(pk=mv.pk).exists():
            errors["arms"].append(f"Arm {arm.name}: model {mv.version} was deleted.")
    if len(set(names)) != len(names):
        errors["arms"].append("Arm names must differ.")
    if sum(1 for a in arms if a.is_control) > 1:
        errors["arms"].append("At most one arm is the control.")
    for field_name, value, low, high in (("alpha", alpha, 0.0, 0.5), ("power", power, 0.5, 1.0),
                                         ("mde", mde, 0.0, 10.0), ("baseline_rate", baseline_rate, 0.0, 1.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low < float(value) < high):
            errors[field_name].append(f"Must be a number above {low} and below {high}, got {value!r}.")
    return dict(errors)


def experiment_create(*, name: str, surface: str, arms: list[ArmInput], mode: str = Experiment.Mode.AB,
                      alpha: float = 0.05, power: float = 0.8, mde: float = 0.05, baseline_rate: float = 0.05,
                      user=None) -> Experiment:
    """A draft experiment with its arms (the first arm is the control unless one says it is)."""
    errors = _design_errors(name=name, surface=surface, mode=mode, arms=arms, alpha=alpha, power=power, mde=mde,
                            baseline_rate=baseline_rate)
    if errors:
        raise ExperimentInvalid(errors)
    control = next((i for i, a in enumerate(arms) if a.is_control), 0)
    with transaction.atomic():
        experiment = Experiment.objects.create(
            name=name.strip(), surface=surface, mode=mode, salt=assignment.new_salt(), alpha=float(alpha),
            power=float(power), mde=float(mde), baseline_rate=float(baseline_rate),
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        ExperimentArm.objects.bulk_create([
            ExperimentArm(experiment=experiment, name=a.name, model_version=a.model_version, share=float(a.share),
                          is_control=i == control) for i, a in enumerate(arms)])
    return experiment


def design_summary(experiment: Experiment) -> dict:
    """The pre-registered design shown before the start: the test, its level and power, the
    minimum detectable effect and the visits per arm it needs, the memory the models take."""
    arms = list(experiment.arms.all())
    needed, versions = memory_needed_mb(experiment)
    try:
        per_arm = stats.sample_size(baseline=experiment.baseline_rate, mde=experiment.mde, alpha=experiment.alpha,
                                    power=experiment.power)
    except ValueError as exc:
        per_arm = None
        logger.warning("experiment %s: no sample size: %s", experiment.pk, exc)
    return {
        "test": "mixture sequential probability ratio test (always-valid p-values: staff may look every day)",
        "alpha": experiment.alpha, "power": experiment.power, "mde": experiment.mde,
        "baseline_rate": experiment.baseline_rate, "visits_per_arm": per_arm,
        "arms": [{"name": a.name, "model_version": a.model_version.version if a.model_version_id else None,
                  "share": a.share, "is_control": a.is_control} for a in arms],
        "memory_mb": round(needed, 1), "memory_budget_mb": memory_budget_mb(), "memory_versions": versions,
    }


# ------------------------------------------------------------------------------- life cycle
def experiment_start(experiment: Experiment, user=None) -> Experiment:
    """Start a draft. Idempotent (a running one is returned as it is); refused when stopped, when
    another experiment runs on the surface (the partial unique index decides a race between two
    experiments; the row lock one between two starts of the same), when an arm's model is gone,
    or when the models would not fit the memory budget."""
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if experiment.status == Experiment.Status.RUNNING:
            return experiment
        if experiment.status == Experiment.Status.STOPPED:
            raise ExperimentRefused(f"experiment {experiment.pk} was stopped: create a new one to run it again")
        other = (Experiment.objects.filter(surface=experiment.surface, status=Experiment.Status.RUNNING)
                 .exclude(pk=experiment.pk).first())
        if other is not None:
            raise ExperimentRefused(f"experiment {other.pk} ({other.name}) already runs on {experiment.surface}")
        needed, versions = memory_needed_mb(experiment)
        budget = memory_budget_mb()
        if needed > budget:
            raise ExperimentRefused(
                f"the models every process would hold ({', '.join(versions)}) need about {needed:.0f} MB, "
                f"over the budget of {budget:.0f} MB (EXPERIMENT_MEMORY_BUDGET_MB)")
        experiment.status = Experiment.Status.RUNNING
        experiment.started_at = timezone.now()
        experiment.started_by = user if getattr(user, "is_authenticated", False) else None
        experiment.memory_estimate_mb = round(needed, 1)
        try:
            with transaction.atomic():
                experiment.save(update_fields=["status", "started_at", "started_by", "memory_estimate_mb"])
        except IntegrityError:
            raise ExperimentRefused(f"another experiment started on {experiment.surface} at the same time") from None
    logger.info("experiment %s started on %s", experiment.pk, experiment.surface)
    return experiment


def experiment_stop(experiment: Experiment, user=None) -> Experiment:
    """Stop it (a draft is cancelled); idempotent. Every process unloads its arms' models within
    the reload interval."""
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if experiment.status == Experiment.Status.STOPPED:
            return experiment
        experiment.status = Experiment.Status.STOPPED
        experiment.stopped_at = timezone.now()
        experiment.stopped_by = user if getattr(user, "is_authenticated", False) else None
        experiment.save(update_fields=["status", "stopped_at", "stopped_by"])
    logger.info("experiment %s stopped", experiment.pk)
    return experiment


def experiment_promote(experiment: Experiment, arm: ExperimentArm, user=None) -> Experiment:
    """Activate the winner arm's model (``registry.model_activate``: its artifact is checked) and
    stop the experiment with the winner recorded. Repeating it changes nothing more."""
    if arm.experiment_id != experiment.pk:
        raise ExperimentRefused(f"arm {arm.pk} is not an arm of experiment {experiment.pk}")
    if arm.model_version_id is None:
        raise ExperimentRefused(f"arm {arm.name} is the popular list: there is no model to activate "
                                "(stop the experiment to keep the active model)")
    if experiment.status == Experiment.Status.DRAFT:
        raise ExperimentRefused(f"experiment {experiment.pk} has not run: there is nothing to promote")
    try:
        registry.model_activate(arm.model_version, user=user)
    except registry.ActivationRefused as exc:
        raise ExperimentRefused(str(exc)) from exc
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
        experiment.winner = arm
        fields = ["winner"]
        if experiment.status != Experiment.Status.STOPPED:
            experiment.status = Experiment.Status.STOPPED
            experiment.stopped_at = timezone.now()
            experiment.stopped_by = user if getattr(user, "is_authenticated", False) else None
            fields += ["status", "stopped_at", "stopped_by"]
        experiment.save(update_fields=fields)
    logger.info("experiment %s: arm %s (%s) promoted", experiment.pk, arm.name, arm.model_version.version)
    return experiment


# ------------------------------------------------------------------------------- counting
def _day(ts: datetime.datetime) -> datetime.date:
    return ts.astimezone(datetime.timezone.utc).date()


def arm_counts(experiment: Experiment) -> dict:
    """Per arm totals and per-day counts from the trusted, non-staff events that carry the arm's
    source (see the module docstring for what counts), plus the interleaving outcome per visit.

    ``{"arms": {arm_pk: {visits, impressions, clicks, add_to_carts, orders, revenue, revenue_sq}},
    "days": {arm_pk: {date: {visits, impressions, clicks, orders}}}, "interleaving": {wins_a,
    wins_b, ties}}`` (orders: visits with an order after their first impression of the arm)."""
    arms = list(experiment.arms.order_by("id"))
    by_source = {arm_source(experiment.surface, experiment.pk, a.pk): a.pk for a in arms}
    totals = {a.pk: dict(visits=0, impressions=0, clicks=0, add_to_carts=0, orders=0, revenue=0.0, revenue_sq=0.0)
              for a in arms}
    days: dict[int, dict] = {a.pk: {} for a in arms}
    out = {"arms": totals, "days": days, "interleaving": {"wins_a": 0, "wins_b": 0, "ties": 0}}
    if experiment.started_at is None:
        return out
    base = Event.objects.filter(trusted=True, is_staff=False, timestamp__gte=experiment.started_at)
    if experiment.stopped_at is not None:
        base = base.filter(timestamp__lte=experiment.stopped_at)
    served = (base.filter(source__in=list(by_source), event_type__in=[EventType.IMPRESSION, EventType.CLICK])
              .values_list("source", "event_type", "visit_id", "product_id", "timestamp"))
    # each (arm, type, visit, product) once, when first seen
    first: dict[tuple, datetime.datetime] = {}
    for source, event_type, visit, product, ts in served.iterator(chunk_size=5000):
        key = (by_source[source], event_type, visit, product)
        if key not in first or ts < first[key]:
            first[key] = ts
    shown: dict[tuple[int, int], dict[int, datetime.datetime]] = defaultdict(dict)  # (visit, product) -> arm -> ts
    visit_first: dict[int, dict[int, datetime.datetime]] = defaultdict(dict)  # arm -> visit -> first impression
    clicks_by_visit: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))  # visit -> arm -> clicks
    for (arm, event_type, visit, product), ts in first.items():
        day = days[arm].setdefault(_day(ts), dict(visits=0, impressions=0, clicks=0, orders=0))
        if event_type == EventType.IMPRESSION:
            totals[arm]["impressions"] += 1
            day["impressions"] += 1
            shown[(visit, product)][arm] = min(ts, shown[(visit, product)].get(arm, ts))
            if visit not in visit_first[arm] or ts < visit_first[arm][visit]:
                visit_first[arm][visit] = ts
        else:
            totals[arm]["clicks"] += 1
            day["clicks"] += 1
            clicks_by_visit[visit][arm] += 1
    for arm, visits in visit_first.items():
        totals[arm]["visits"] = len(visits)
        for ts in visits.values():
            days[arm].setdefault(_day(ts), dict(visits=0, impressions=0, clicks=0, orders=0))["visits"] += 1
    all_visits = {v for visits in visit_first.values() for v in visits}
    if all_visits:
        carts = (base.filter(event_type=EventType.ADD_TO_CART, visit_id__in=list(all_visits))
                 .values_list("visit_id", "product_id", "timestamp"))
        carted: set[tuple[int, int, int]] = set()
        for visit, product, ts in carts.iterator(chunk_size=5000):
            for arm, shown_at in shown.get((visit, product), {}).items():
                if shown_at <= ts:
                    carted.add((arm, visit, product))
        for arm, _visit, _product in carted:
            totals[arm]["add_to_carts"] += 1
    if experiment.mode == Experiment.Mode.AB and all_visits and _ORDER_SOURCE is not None:
        revenue: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        for visit, created, total in _ORDER_SOURCE(sorted(all_visits)):
            if experiment.stopped_at is not None and created > experiment.stopped_at:
                continue
            for arm, visits in visit_first.items():
                if visit in visits and visits[visit] <= created:
                    revenue[arm][visit] += float(total)
        for arm, per_visit in revenue.items():
            totals[arm]["orders"] = len(per_visit)
            totals[arm]["revenue"] = round(sum(per_visit.values()), 2)
            totals[arm]["revenue_sq"] = round(sum(r * r for r in per_visit.values()), 4)
            for visit in per_visit:
                day = _day(visit_first[arm][visit])
                days[arm][day]["orders"] += 1
    if experiment.mode == Experiment.Mode.INTERLEAVING and len(arms) == 2:
        a, b = arms[0].pk, arms[1].pk
        for visit in visit_first[a].keys() | visit_first[b].keys():
            ca, cb = clicks_by_visit[visit][a], clicks_by_visit[visit][b]
            key = "wins_a" if ca > cb else "wins_b" if cb > ca else "ties"
            out["interleaving"][key] += 1
    return out


# -------------------------------------------------------------------------------- reporting
def _statistics(experiment: Experiment, arms: list[ExperimentArm], counts: dict) -> dict:
    """The statistics of the counts (the one caller of ``experiments.stats``)."""
    totals = {a.pk: stats.ArmTotals(**counts["arms"][a.pk]) for a in arms}
    control = next((a for a in arms if a.is_control), arms[0])
    per_arm = {a.pk: stats.arm_report(totals[control.pk], totals[a.pk], alpha=experiment.alpha) for a in arms}
    out = {"control": control.pk, "per_arm": per_arm, "srm": None, "interleaving": None}
    if experiment.mode == Experiment.Mode.AB:
        out["srm"] = stats.srm([totals[a.pk].visits for a in arms], [a.share for a in arms])
    else:
        i = counts["interleaving"]
        out["interleaving"] = stats.interleaving_report(i["wins_a"], i["wins_b"], i["ties"], alpha=experiment.alpha)
    return out


def experiment_report(experiment: Experiment, fresh: bool = False) -> dict:
    """Everything the results page, the API and the command show: per arm totals with rates and
    95% confidence intervals, the difference to control with its always-valid p-value, the SRM
    check, interleaving wins, and the daily series for the charts. Cached ``REPORT_CACHE_SECONDS``
    (one scan of the experiment's events) unless ``fresh``."""
    key = f"experiment-report:{experiment.pk}:{experiment.status}"
    if not fresh:
        cached = cache.get(key)
        if cached is not None:
            return cached
    arms = list(experiment.arms.select_related("model_version").order_by("id"))
    counts = arm_counts(experiment)
    report = {
        "experiment": experiment.pk, "name": experiment.name, "surface": experiment.surface,
        "mode": experiment.mode, "status": experiment.status,
        "started_at": experiment.started_at, "stopped_at": experiment.stopped_at,
        "winner": experiment.winner_id,
        "arms": [{"id": a.pk, "name": a.name, "is_control": a.is_control, "share": a.share,
                  "model_version": a.model_version.version if a.model_version_id else None,
                  "source": arm_source(experiment.surface, experiment.pk, a.pk),
                  **counts["arms"][a.pk]} for a in arms],
        "interleaving": counts["interleaving"] if experiment.mode == Experiment.Mode.INTERLEAVING else None,
        "days": {a.name: [{"day": d.isoformat(), **row} for d, row in sorted(counts["days"][a.pk].items())]
                 for a in arms},
    }
    if arms:
        s = _statistics(experiment, arms, counts)
        for row in report["arms"]:
            row["stats"] = s["per_arm"][row["id"]]
        report["srm"] = s["srm"]
        report["interleaving_stats"] = s["interleaving"]
    report = _plain(report)
    cache.set(key, report, REPORT_CACHE_SECONDS)
    return report


def _plain(value):
    """JSON-ready: dataclasses and tuples as dicts and lists, numpy numbers as Python ones, NaN and
    infinities (a rate of nothing) as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, bool) or value is None or isinstance(value, (str, datetime.date)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    return value
