"""Demo recommender for `make demo`: realistic generated browsing sessions over the catalogue (or a
real event file from ``DEMO_DATA``), a small model trained in well under two minutes, activated."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings

from catalog.models import Product
from catalog.services import product_stubs_ensure
from tracking.models import Event
from tracking.services import events_import, popularity_refresh

from .engine import events_read
from .gru4rec.formats import write_tsv
from .models import ModelVersion, TrainingRun
from .training import training_run_now

logger = logging.getLogger(__name__)

DEMO_PARAMS = (
    "loss=cross-entropy,layers=64,batch_size=32,dropout_p_embed=0.0,dropout_p_hidden=0.2,"
    "learning_rate=0.1,momentum=0.1,n_sample=256,sample_alpha=0.5,logq=1.0,n_epochs=4"
)


def sessions_generate(
    products: list[tuple[str, int | None]],
    n_sessions: int = 6000,
    days: int = 8,
    seed: int = 7,
    start: float = 1_700_000_000.0,
) -> pd.DataFrame:
    """Browsing sessions ``SessionId, ItemId, Time`` over ``products`` ((external id, category id)).

    Structure a recommender can learn and a shop shows: items have Zipf popularity; a session
    starts at a popular item and mostly moves to that item's "natural next" item (accessory,
    next model in a line), else to a popular item of the same category, sometimes elsewhere.
    """
    rng = np.random.default_rng(seed)
    ids = np.array([p[0] for p in products], dtype=object)
    cats = np.array([-1 if p[1] is None else p[1] for p in products])
    n = len(ids)
    if n < 2:
        raise ValueError("need at least two products to generate sessions")
    pop = 1.0 / np.arange(1, n + 1) ** 0.9
    pop = pop[rng.permutation(n)]
    pop /= pop.sum()
    by_cat = {c: np.flatnonzero(cats == c) for c in np.unique(cats)}
    successor = np.empty(n, dtype=np.int64)
    for c, members in by_cat.items():
        order = rng.permutation(members)
        successor[order] = np.roll(order, -1)  # a cycle through the category
    # some cross-category "complements" (phone -> headphones)
    cross = rng.random(n) < 0.2
    successor[cross] = rng.integers(0, n, cross.sum())
    rows_s, rows_i, rows_t = [], [], []
    span = days * 86400.0
    starts = np.sort(rng.uniform(0, span - 3600, n_sessions)) + start
    for s in range(n_sessions):
        length = min(2 + rng.geometric(0.25), 30)
        item = rng.choice(n, p=pop)
        t = starts[s]
        for _ in range(length):
            rows_s.append(s + 1)
            rows_i.append(ids[item])
            rows_t.append(t)
            t += float(rng.uniform(10, 120))
            u = rng.random()
            if u < 0.6:
                item = successor[item]
            elif u < 0.9:
                members = by_cat[cats[item]]
                w = pop[members] / pop[members].sum()
                item = members[rng.choice(len(members), p=w)]
            else:
                item = rng.choice(n, p=pop)
    return pd.DataFrame({"SessionId": rows_s, "ItemId": pd.Series(rows_i, dtype=str), "Time": np.floor(rows_t)})


def _events_exist() -> bool:
    try:
        return Event.objects.exists()
    except Exception:
        return False


def _import_events(path: Path, reference=None) -> None:
    """Load the event file into tracking (popularity, history) when tracking can import, then count
    popularity back from ``reference`` (a real log's last event: its shoppers are years old)."""
    try:
        events_import(str(path))
    except Exception:
        logger.exception("tracking could not import %s; training from the file only", path)
        return
    _popularity_refresh(reference)


def _popularity_refresh(reference=None) -> None:
    try:  # popular items for the first visit, without waiting for beat's refresh
        popularity_refresh(now=reference)
    except Exception:
        logger.exception("popularity refresh after the demo import failed")


def _data_end(times: pd.Series):
    """The moment just after a log's last event (``Time`` in unix seconds), for popularity windows."""
    from datetime import datetime, timedelta, timezone

    if not len(times):
        return None
    return datetime.fromtimestamp(float(times.max()), tz=timezone.utc) + timedelta(seconds=1)


def demo_model_ensure(stdout=None, n_sessions: int = 3000, data_path: str | None = None,
                      progress: bool | None = None) -> dict:
    """Make sure a model is active: nothing to do when one is; else train one from ``data_path``
    (default ``DEMO_DATA``), the shop's events, or generated sessions, and activate it. With an
    event file the popular lists are (re)computed up to its last event on every run. Progress bars
    only when ``progress`` (default: ``stdout`` is a terminal). Returns a summary."""
    def say(msg):
        if stdout is not None:
            stdout.write(msg)

    if progress is None:
        progress = bool(stdout is not None and getattr(stdout, "isatty", lambda: False)())
    data_path = settings.DEMO_DATA if data_path is None else data_path
    active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    events = None
    if data_path:
        events = events_read(data_path)
    if active is not None:
        if events is not None:  # a second run: the clock moved on, the data did not
            _popularity_refresh(_data_end(events["Time"]))
        say(f"recommendations: model {active.version} is active")
        return {"active": active.version, "trained": False}
    if data_path:
        say(f"recommendations: importing {data_path}")
        try:
            product_stubs_ensure(events["ItemId"].unique())
        except Exception:
            logger.exception("could not create catalogue stubs for %s", data_path)
        _import_events(Path(data_path), _data_end(events["Time"]))
    elif not _events_exist():
        products = list(Product.objects.filter(is_active=True).values_list("external_id", "category_id"))
        if len(products) < 2:
            say("recommendations: no catalogue yet, no model trained")
            return {"active": None, "trained": False}
        path = Path(settings.VAR_DIR) / "demo-sessions.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        # the last 8 days up to now, so tracking's popularity windows (1/7/30 days) see them
        start = time.time() - 8 * 86400
        write_tsv(sessions_generate(products, n_sessions=n_sessions, days=8, start=start), path)
        say(f"recommendations: generated {n_sessions} browsing sessions over {len(products)} products -> {path}")
        _import_events(path)
        data_path = str(path)
    say("recommendations: training a demo model (GRU4Rec and V-SKNN)...")
    run = training_run_now(params=DEMO_PARAMS, activate=True, data_path=data_path, progress=progress)
    if run.status != TrainingRun.Status.SUCCEEDED:
        say(f"recommendations: training failed: {run.error}")
        return {"active": None, "trained": False, "error": run.error}
    say(f"recommendations: {run.result.get('decision')}; active: {run.result.get('best')}")
    for kind, m in (run.result.get("metrics") or {}).items():
        say(f"  {kind}: recall@20 {m.get('recall@20', 0):.3f}, mrr@20 {m.get('mrr@20', 0):.3f}")
    return {"active": run.result.get("best"), "trained": True, "run": run.pk}
