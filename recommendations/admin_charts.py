"""The data of the model registry's admin charts, shaped for ``static/recommendations/admin-charts.js``
(Chart.js, served from the shop's own static files): a chart is ``{"type", "labels", "datasets":
[{"label", "data", "kind"?, "axis"?}], "y": {"title", "percent"?}, "y2"?: {...}}``."""
from __future__ import annotations

import datetime

from django.utils import timezone

from . import engine
from .models import ModelVersion

ONLINE_DAYS = 30
BASELINE_NAMES = {"popularity": "popularity", "itemknn": "item-kNN"}
OFFLINE_VERSIONS = 10


def _baseline(mv: ModelVersion, name: str, metric: str) -> float | None:
    value = (((mv.metrics or {}).get("baselines") or {}).get(name) or {}).get(metric)
    return None if value is None else round(float(value), 4)


def offline_charts(versions: list[ModelVersion]) -> list[dict]:
    """Recall@20 and MRR@20 of the latest versions beside the baselines trained on the same data
    (popularity, item-kNN), oldest first: is each version worth more than the simple answers?"""
    versions = list(reversed(versions[:OFFLINE_VERSIONS]))
    charts = []
    for metric, title in (("recall@20", "Recall@20"), ("mrr@20", "MRR@20")):
        charts.append({
            "id": f"offline-{metric.replace('@', '-')}",
            "title": f"{title} on the held-out day",
            "type": "bar",
            "labels": [mv.version for mv in versions],
            "datasets": [
                {"label": "model", "data": [mv.metric(metric) for mv in versions]},
                {"label": "popularity baseline", "data": [_baseline(mv, "popularity", metric) for mv in versions]},
                {"label": "item-kNN baseline", "data": [_baseline(mv, "itemknn", metric) for mv in versions]},
            ],
            "y": {"title": title},
        })
    return charts


def _days(since: datetime.date, until: datetime.date) -> list[datetime.date]:
    return [since + datetime.timedelta(days=i) for i in range((until - since).days + 1)]


def online_since() -> datetime.datetime:
    today = timezone.now().astimezone(datetime.timezone.utc).date()
    start = today - datetime.timedelta(days=ONLINE_DAYS - 1)
    return datetime.datetime.combine(start, datetime.time.min, tzinfo=datetime.timezone.utc)


def online_ctr_chart(outcomes: dict[str, dict], since: datetime.datetime) -> dict:
    """The daily click-through rate of each version that was served in the window (``outcomes`` may
    hold older days too: only the window's are read)."""
    days = _days(since.date(), timezone.now().astimezone(datetime.timezone.utc).date())
    datasets = []
    for version, o in outcomes.items():
        by_day = {row["day"]: row for row in o["days"] if row["day"] >= since.date()}
        if not by_day:
            continue
        datasets.append({"label": version, "kind": "line", "data": [
            (by_day[d]["clicks"] / by_day[d]["impressions"]) if d in by_day and by_day[d]["impressions"] else None
            for d in days]})
    return {"id": "online-ctr", "title": f"Click-through rate per day (last {ONLINE_DAYS} days)", "type": "line",
            "labels": [d.isoformat() for d in days], "datasets": datasets, "y": {"title": "CTR", "percent": True}}


def version_online_charts(outcome: dict, since: datetime.datetime) -> list[dict]:
    """One version's day by day: served impressions with the CTR, and what followed a click (clicks,
    add-to-cart, orders: tens of times fewer than impressions, so on an axis of their own)."""
    days = _days(since.date(), timezone.now().astimezone(datetime.timezone.utc).date())
    by_day = {row["day"]: row for row in outcome["days"]}
    row = lambda d, k: by_day[d][k] if d in by_day else 0  # noqa: E731
    labels = [d.isoformat() for d in days]
    return [
        {"id": "version-served", "title": f"Served impressions and CTR per day (last {ONLINE_DAYS} days)",
         "type": "bar", "labels": labels,
         "datasets": [
             {"label": "impressions", "data": [row(d, "impressions") for d in days]},
             {"label": "CTR", "kind": "line", "axis": "y2", "data": [
                 (row(d, "clicks") / row(d, "impressions")) if row(d, "impressions") else None for d in days]},
         ],
         "y": {"title": "impressions"}, "y2": {"title": "CTR", "percent": True}},
        {"id": "version-outcomes", "title": f"Clicks, add-to-cart and orders per day (last {ONLINE_DAYS} days)",
         "type": "bar", "labels": labels,
         "datasets": [{"label": label, "data": [row(d, key) for d in days]}
                      for label, key in (("clicks", "clicks"), ("add to cart", "add_to_cart"), ("orders", "orders"))],
         "y": {"title": "count"}},
    ]


def version_offline_chart(mv: ModelVersion) -> dict:
    """One version's offline metrics at every cutoff beside the baselines and the model active when
    it was trained, all on the same held-out day."""
    names = [f"{m}@{c}" for m in ("recall", "mrr") for c in engine.CUTOFFS]
    metrics = mv.metrics or {}
    rows = [("this model", metrics.get("model") or {})]
    rows += [(f"{BASELINE_NAMES.get(k, k)} baseline", v or {}) for k, v in (metrics.get("baselines") or {}).items()]
    if metrics.get("active"):
        rows.append((f"active then ({metrics['active']['version']})", metrics["active"].get("metrics") or {}))
    return {
        "id": "version-offline", "title": "Offline metrics on the held-out day", "type": "bar", "labels": names,
        "datasets": [{"label": label, "data": [None if m.get(n) is None else round(float(m[n]), 4) for n in names]}
                     for label, m in rows],
        "y": {"title": "score"},
    }


def loss_chart(curve: dict) -> dict:
    """GRU4Rec's mean training loss per finished epoch, and the running epoch's loss so far."""
    epochs = (curve or {}).get("epochs") or []
    current = (curve or {}).get("current") or {}
    n = max([current.get("n_epochs") or 0] + [e["epoch"] for e in epochs])
    finished = {e["epoch"]: e["loss"] for e in epochs}
    running = [None] * n
    if current and current.get("fraction", 1.0) < 1.0 and 1 <= current.get("epoch", 0) <= n:
        running[current["epoch"] - 1] = current["loss"]
    return {
        "id": "training-loss", "title": "Training loss per epoch", "type": "line",
        "labels": [f"epoch {i}" for i in range(1, n + 1)],
        "datasets": [{"label": "mean loss (finished epochs)", "data": [finished.get(i) for i in range(1, n + 1)]},
                     {"label": "running epoch, so far", "data": running, "kind": "point"}],
        "y": {"title": "loss"},
    }


def tuning_chart(trials) -> dict:
    """A tuning run's objective (sqrt(Recall@20 * MRR@20) on validation) by trial: completed and
    pruned trials as points (a pruned trial's value is its last reported one, when it has one),
    and the best completed objective so far as a line."""
    trials = sorted(trials, key=lambda t: t.number)
    completed, pruned, best_line = [], [], []
    best = None
    for t in trials:
        value = None if t.objective is None else round(float(t.objective), 4)
        completed.append(value if t.state == "complete" else None)
        pruned.append(value if t.state == "pruned" else None)
        if t.state == "complete" and value is not None and (best is None or value > best):
            best = value
        best_line.append(best)
    return {
        "id": "tuning-objective", "title": "Objective by trial: sqrt(Recall@20 x MRR@20) on the validation days",
        "type": "line", "labels": [f"{t.number} {t.kind}" for t in trials],
        "datasets": [{"label": "completed", "data": completed, "kind": "point"},
                     {"label": "pruned", "data": pruned, "kind": "point"},
                     {"label": "best so far", "data": best_line}],
        "y": {"title": "objective"},
    }


def experiment_charts(report: dict) -> list[dict]:
    """An experiment's daily looks (recommendations.experimenting.experiment_report): each arm's
    cumulative CTR and conversion, the always-valid p-value of each arm's CTR difference to
    control (it only falls: the running minimum over the looks), and the visits so far."""
    looks = report.get("days") or []
    labels = [look["day"] for look in looks]
    arms = [a["name"] for a in report.get("arms") or []]
    control = next((a["name"] for a in report.get("arms") or [] if a["is_control"]), arms[0] if arms else None)

    def series(arm, fn):
        return [fn(look["arms"].get(arm) or {}) for look in looks]

    def ratio(num, den):
        return lambda row: (row.get(num, 0) / row[den]) if row.get(den) else None

    charts = [
        {"id": "experiment-ctr", "title": "Click-through rate so far, per arm", "type": "line", "labels": labels,
         "datasets": [{"label": arm, "data": series(arm, ratio("clicks", "impressions"))} for arm in arms],
         "y": {"title": "CTR", "percent": True}},
        {"id": "experiment-visits", "title": "Visits so far, per arm", "type": "bar", "labels": labels,
         "datasets": [{"label": arm, "data": series(arm, lambda row: row.get("visits", 0))} for arm in arms],
         "y": {"title": "visits"}},
        {"id": "experiment-p", "title": "Always-valid p-value of the CTR difference to control", "type": "line",
         "labels": labels,
         "datasets": [{"label": arm, "data": series(arm, lambda row: row.get("p_ctr"))} for arm in arms if arm != control]
         + [{"label": f"alpha {report.get('alpha', 0.05):g}", "data": [report.get("alpha", 0.05)] * len(looks)}],
         "y": {"title": "p-value"}},
    ]
    if report.get("mode") == "ab":
        charts.insert(1, {"id": "experiment-conversion", "title": "Conversion so far (visits with an order), per arm",
                          "type": "line", "labels": labels,
                          "datasets": [{"label": arm, "data": series(arm, ratio("orders", "visits"))} for arm in arms],
                          "y": {"title": "conversion", "percent": True}})
    return charts
