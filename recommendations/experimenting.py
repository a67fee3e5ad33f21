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
import hashlib
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
from .experiments import assignment
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


def new_salt() -> str:
    """A fresh experiment salt (the admin's add form; ``experiment_create`` sets its own)."""
    return assignment.new_salt()


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
    for field_name, value, low, high in (("alpha", alpha, 0.0, 0.5), ("power", power, 0.5, 0.99),
                                         ("mde", mde, 0.0, 10.0), ("baseline_rate", baseline_rate, 0.0, 0.999)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low < float(value) <= high):
            errors[field_name].append(f"Must be a number above {low} and at most {high}, got {value!r}.")
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
    from .experiments import stats  # why: scipy and statsmodels load for a report, never in a web worker's start

    arms = list(experiment.arms.all())
    needed, versions = memory_needed_mb(experiment)
    try:  # the MDE is relative to the expected control CTR; the sample size wants the absolute lift
        per_arm = stats.sample_size(experiment.baseline_rate, experiment.baseline_rate * experiment.mde,
                                    alpha=experiment.alpha, power=experiment.power)
    except ValueError as exc:
        per_arm = None
        logger.info("experiment %s: no sample size: %s", experiment.pk, exc)
    return {
        "test": "mixture sequential probability ratio test (always-valid p-values: staff may look every day)",
        "alpha": experiment.alpha, "power": experiment.power, "mde": experiment.mde,
        "baseline_rate": experiment.baseline_rate, "impressions_per_arm": per_arm,
        "sample_size_note": ("impressions per arm a fixed-horizon test needs for a relative CTR lift of the MDE; "
                             "the sequential test may stop earlier when the effect is larger"),
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
        arms = [ArmInput(a.name, a.model_version, a.share, a.is_control)
                for a in experiment.arms.select_related("model_version")]
        errors = _design_errors(name=experiment.name, surface=experiment.surface, mode=experiment.mode, arms=arms,
                                alpha=experiment.alpha, power=experiment.power, mde=experiment.mde,
                                baseline_rate=experiment.baseline_rate)
        if errors:
            raise ExperimentRefused(f"experiment {experiment.pk} cannot start: " + "; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in errors.items()))
        if not experiment.salt:
            experiment.salt = assignment.new_salt()
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
                experiment.save(update_fields=["status", "started_at", "started_by", "memory_estimate_mb", "salt"])
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
@dataclass
class Observed:
    """What counts of an experiment, read once (the looks of the report cut it by time):
    the first trusted impression and click of each (arm, visit, product), the first credited
    add-to-cart of each (arm, visit), and the orders of each (arm, visit) after its first impression."""

    arms: list[int]
    impressions: dict[tuple[int, int, int], datetime.datetime]
    clicks: dict[tuple[int, int, int], datetime.datetime]
    carts: dict[tuple[int, int], datetime.datetime]
    orders: list[tuple[int, int, datetime.datetime, float]]


def observed_read(experiment: Experiment) -> Observed:
    """The experiment's events: trusted, non-staff, since its start (until its stop), with the
    source of one of its arms (kept by the events API only with that arm's served-item token)."""
    arms = list(experiment.arms.order_by("id").values_list("pk", flat=True))
    by_source = {arm_source(experiment.surface, experiment.pk, pk): pk for pk in arms}
    found = Observed(arms, {}, {}, {}, [])
    if experiment.started_at is None:
        return found
    base = Event.objects.filter(trusted=True, is_staff=False, timestamp__gte=experiment.started_at)
    if experiment.stopped_at is not None:
        base = base.filter(timestamp__lte=experiment.stopped_at)
    served = (base.filter(source__in=list(by_source), event_type__in=[EventType.IMPRESSION, EventType.CLICK])
              .values_list("source", "event_type", "visit_id", "product_id", "timestamp"))
    for source, event_type, visit, product, ts in served.iterator(chunk_size=5000):
        target = found.impressions if event_type == EventType.IMPRESSION else found.clicks
        key = (by_source[source], visit, product)
        if key not in target or ts < target[key]:
            target[key] = ts
    shown: dict[tuple[int, int], dict[int, datetime.datetime]] = defaultdict(dict)  # (visit, product) -> arm -> ts
    first_seen: dict[tuple[int, int], datetime.datetime] = {}  # (arm, visit) -> first impression
    for (arm, visit, product), ts in found.impressions.items():
        shown[(visit, product)][arm] = ts
        if (arm, visit) not in first_seen or ts < first_seen[(arm, visit)]:
            first_seen[(arm, visit)] = ts
    visits = sorted({visit for _arm, visit in first_seen})
    for start in range(0, len(visits), 5000):
        carts = (base.filter(event_type=EventType.ADD_TO_CART, visit_id__in=visits[start:start + 5000])
                 .values_list("visit_id", "product_id", "timestamp"))
        for visit, product, ts in carts.iterator(chunk_size=5000):
            for arm, shown_at in shown.get((visit, product), {}).items():
                if shown_at <= ts and ((arm, visit) not in found.carts or ts < found.carts[(arm, visit)]):
                    found.carts[(arm, visit)] = ts
    if experiment.mode == Experiment.Mode.AB and visits and _ORDER_SOURCE is not None:
        for visit, created, total in _ORDER_SOURCE(visits):
            if experiment.stopped_at is not None and created > experiment.stopped_at:
                continue
            for arm in arms:
                seen = first_seen.get((arm, visit))
                if seen is not None and seen <= created:
                    found.orders.append((arm, visit, created, float(total)))
    return found


def totals_at(observed: Observed, cutoff: datetime.datetime | None = None) -> dict[int, dict]:
    """Per arm, what was known at ``cutoff`` (None: everything): the fields of ``stats.ArmTotals``
    (visits with an impression; impressions and clicks, each (visit, product) once, a click only
    for a product the arm showed that visit; visits with a credited add-to-cart, with an order;
    revenue and the per-visit sums of squares) plus the interleaving clicks per visit."""
    def known(ts):
        return cutoff is None or ts <= cutoff

    per_visit: dict[int, dict[int, list]] = {arm: defaultdict(lambda: [0, 0, 0.0]) for arm in observed.arms}
    for (arm, visit, _product), ts in observed.impressions.items():
        if known(ts):
            per_visit[arm][visit][0] += 1
    for (arm, visit, product), ts in observed.clicks.items():
        shown_at = observed.impressions.get((arm, visit, product))
        if known(ts) and shown_at is not None and known(shown_at):
            per_visit[arm][visit][1] += 1
    revenue: dict[int, dict[int, float]] = {arm: defaultdict(float) for arm in observed.arms}
    for arm, visit, created, total in observed.orders:
        if known(created):
            revenue[arm][visit] += total
    out = {}
    for arm in observed.arms:
        rows = per_visit[arm]
        rev = revenue[arm]
        out[arm] = dict(
            visits=len(rows),
            impressions=sum(r[0] for r in rows.values()),
            clicks=sum(r[1] for r in rows.values()),
            add_to_carts=sum(1 for (a, v), ts in observed.carts.items() if a == arm and known(ts) and v in rows),
            orders=sum(1 for v in rev if v in rows),
            revenue=round(sum(t for v, t in rev.items() if v in rows), 2),
            revenue_sq=round(sum(t * t for v, t in rev.items() if v in rows), 4),
            impressions_sq=sum(r[0] * r[0] for r in rows.values()),
            clicks_sq=sum(r[1] * r[1] for r in rows.values()),
            clicks_impressions=sum(r[0] * r[1] for r in rows.values()),
        )
    return out


def interleaving_outcomes(observed: Observed) -> dict:
    """Interleaving: per visit, the arm whose contributed items got more clicks wins (a tie else)."""
    if len(observed.arms) != 2:
        return {"wins_a": 0, "wins_b": 0, "ties": 0}
    a, b = observed.arms
    clicks: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for (_arm, visit, _product) in observed.impressions:
        clicks.setdefault(visit, [0, 0])
    for (arm, visit, product) in observed.clicks:
        if (arm, visit, product) in observed.impressions:
            clicks[visit][0 if arm == a else 1] += 1
    out = {"wins_a": 0, "wins_b": 0, "ties": 0}
    for ca, cb in clicks.values():
        out["wins_a" if ca > cb else "wins_b" if cb > ca else "ties"] += 1
    return out


# -------------------------------------------------------------------------------- reporting
LOOKS_MAX = 90


def _look_days(experiment: Experiment) -> list[datetime.date]:
    if experiment.started_at is None:
        return []
    first = _day(experiment.started_at)
    last = _day(experiment.stopped_at or timezone.now())
    days = [first + datetime.timedelta(days=i) for i in range((last - first).days + 1)]
    return days[-LOOKS_MAX:]


def _day(ts: datetime.datetime) -> datetime.date:
    return ts.astimezone(datetime.timezone.utc).date()


def _day_end(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time.max, tzinfo=datetime.timezone.utc)


def _statistics(experiment: Experiment, arms: list[ExperimentArm], observed: Observed) -> dict:
    """The statistics, look by look (one a day since the start, the last one now): each arm's
    ``arm_report`` against control carries the previous look's, so its always-valid p-value is the
    running minimum over the daily looks, as the mSPRT allows. The one caller of ``experiments.stats``."""
    from .experiments import stats  # why: scipy and statsmodels load for a report, never in a web worker's start

    control = next((a for a in arms if a.is_control), arms[0])
    reports: dict[int, dict | None] = {a.pk: None for a in arms}
    inter = None
    series = []
    for day in _look_days(experiment):
        totals = totals_at(observed, _day_end(day))
        look = {"day": day.isoformat(), "arms": {}}
        for a in arms:
            reports[a.pk] = stats.arm_report(stats.ArmTotals(**totals[control.pk]), stats.ArmTotals(**totals[a.pk]),
                                             alpha=experiment.alpha, previous=reports[a.pk])
            look["arms"][a.pk] = {**totals[a.pk], "p_ctr": reports[a.pk]["ctr"]["p_value"],
                                  "p_conversion": reports[a.pk]["conversion"]["p_value"]}
        series.append(look)
    totals = totals_at(observed)
    out = {"control": control.pk, "totals": totals, "series": series, "srm": None, "interleaving": None}
    out["per_arm"] = {a.pk: reports[a.pk] if reports[a.pk] is not None else stats.arm_report(
        stats.ArmTotals(**totals[control.pk]), stats.ArmTotals(**totals[a.pk]), alpha=experiment.alpha)
        for a in arms}
    if experiment.mode == Experiment.Mode.AB:
        out["srm"] = stats.srm([totals[a.pk]["visits"] for a in arms], [a.share for a in arms])
    else:
        outcome = interleaving_outcomes(observed)
        for day in _look_days(experiment):  # the same daily looks for the interleaving test
            cut = Observed(observed.arms, {k: t for k, t in observed.impressions.items() if t <= _day_end(day)},
                           {k: t for k, t in observed.clicks.items() if t <= _day_end(day)}, {}, [])
            o = interleaving_outcomes(cut)
            inter = stats.interleaving_report(o["wins_a"], o["wins_b"], o["ties"], alpha=experiment.alpha,
                                              previous=inter)
        out["interleaving"] = inter or stats.interleaving_report(outcome["wins_a"], outcome["wins_b"],
                                                                 outcome["ties"], alpha=experiment.alpha)
    return out


def experiment_report(experiment: Experiment, fresh: bool = False) -> dict:
    """Everything the results page, the API and the command show: per arm totals with rates and
    95% confidence intervals, the difference to control with its always-valid p-value, the SRM
    check, interleaving wins, and the daily looks for the charts. Cached ``REPORT_CACHE_SECONDS``
    (one scan of the experiment's events) unless ``fresh``."""
    # The key names this experiment, not just its id: a database restored from a backup (or
    # SQLite's test rollbacks) gives an id out again, and the new experiment must not be answered
    # with the old one's cached report. The salt is secret: only a digest of it goes into the key.
    identity = hashlib.sha256(f"{experiment.salt}|{experiment.started_at}|{experiment.stopped_at}".encode()).hexdigest()[:16]
    key = f"experiment-report:{experiment.pk}:{identity}:{experiment.status}"
    if not fresh:
        cached = cache.get(key)
        if cached is not None:
            return cached
    arms = list(experiment.arms.select_related("model_version").order_by("id"))
    observed = observed_read(experiment)
    s = _statistics(experiment, arms, observed) if arms else None
    report = {
        "experiment": experiment.pk, "name": experiment.name, "surface": experiment.surface,
        "mode": experiment.mode, "status": experiment.status,
        "started_at": experiment.started_at, "stopped_at": experiment.stopped_at,
        "winner": experiment.winner_id, "alpha": experiment.alpha,
        "arms": [{"id": a.pk, "name": a.name, "is_control": a.is_control, "share": a.share,
                  "model_version": a.model_version.version if a.model_version_id else None,
                  "source": arm_source(experiment.surface, experiment.pk, a.pk),
                  **s["totals"][a.pk], "stats": s["per_arm"][a.pk]} for a in arms] if s else [],
        "interleaving": interleaving_outcomes(observed) if experiment.mode == Experiment.Mode.INTERLEAVING else None,
        "interleaving_stats": s["interleaving"] if s else None,
        "srm": s["srm"] if s else None,
        "days": [{"day": look["day"], "arms": {a.name: look["arms"][a.pk] for a in arms}}
                 for look in s["series"]] if s else [],
    }
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
