"""Shared by the recommendation benchmarks: a 40,000-item catalogue, two registered GRU4Rec
versions of that size (random weights: serving cost does not depend on what the weights learnt),
on demand a hybrid of that size (the first GRU4Rec fused with a V-SKNN fitted on synthetic sessions
over the 40,000 items: :func:`hybrid_ensure`), and a visit with a 10-item history (the
GET /api/recommendations/?session=... case). A missing PostgreSQL database is created and migrated first.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shop_h6_bench REDIS_URL=redis://127.0.0.1:6379/6 \
    MODEL_DIR=$PWD/var/bench-models python bench/recommend_setup.py   # idempotent
"""
import os
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

import django  # noqa: E402

django.setup()

from catalog.services import product_stubs_ensure  # noqa: E402
from recommendations import artifacts, registry  # noqa: E402
from recommendations.gru4rec.model import GRU4Rec  # noqa: E402
from recommendations.gru4rec.params import parse_params  # noqa: E402
from recommendations.models import ModelVersion  # noqa: E402

N_ITEMS = int(os.environ.get("BENCH_ITEMS", 40_000))
PARAMS = "loss=cross-entropy,layers=100"
VERSIONS = ("bench-40k-a", "bench-40k-b")
HYBRID_VERSION = "bench-40k-hybrid"
# The V-SKNN of the hybrid: synthetic sessions over the catalogue, popularity Zipf-like (a few items
# in many sessions, most in few), as a shop's log is; the shop's default V-SKNN settings.
KNN_SESSIONS = int(os.environ.get("BENCH_KNN_SESSIONS", 100_000))


def database_ensure() -> None:
    """Create the bench database when the server does not have it, and migrate it."""
    from django.core.management import call_command
    from django.db import connection
    from django.db.utils import OperationalError

    try:
        connection.ensure_connection()
    except OperationalError:
        if connection.vendor != "postgresql":
            raise
        with connection._nodb_cursor() as cursor:  # what Django's test runner uses to create databases
            cursor.execute(f"CREATE DATABASE {connection.ops.quote_name(connection.settings_dict['NAME'])}")
    call_command("migrate", interactive=False, verbosity=0)


def ensure() -> list[ModelVersion]:
    database_ensure()
    ids = [f"bench-{i}" for i in range(N_ITEMS)]
    product_stubs_ensure(ids)
    out = []
    for seed, name in enumerate(VERSIONS):
        mv = ModelVersion.objects.filter(version=name).first()
        if mv is None or not artifacts.exists(mv.artifact):
            ModelVersion.objects.filter(version=name).delete()
            model = GRU4Rec(parse_params(PARAMS), ids, seed=seed)
            mv = registry.model_version_register(kind="gru4rec", model=model, version=name,
                                                 parameters={"params": PARAMS}, metrics={"model": {}})
        out.append(mv)
    return out


def hybrid_ensure() -> ModelVersion:
    """The 40k-item hybrid version (registered once): GRU4Rec ``bench-40k-a`` with a V-SKNN fitted
    on KNN_SESSIONS synthetic sessions (2-12 items each, 30 days), weight 0.5, RRF fusion."""
    import numpy as np
    import pandas as pd

    from recommendations import training
    from recommendations.gru4rec.baselines import SessionKNN
    from recommendations.gru4rec.hybrid import Hybrid

    a = ensure()[0]
    mv = ModelVersion.objects.filter(version=HYBRID_VERSION).first()
    if mv is not None and artifacts.exists(mv.artifact):
        return mv
    ModelVersion.objects.filter(version=HYBRID_VERSION).delete()
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 13, KNN_SESSIONS)
    n = int(lengths.sum())
    items = np.minimum(rng.zipf(1.3, n) - 1, N_ITEMS - 1)
    items = rng.permutation(N_ITEMS)[items]  # popular items spread over the catalogue
    sessions = np.repeat(np.arange(KNN_SESSIONS), lengths)
    start = np.repeat(rng.uniform(0, 30 * 86400, KNN_SESSIONS), lengths)
    df = pd.DataFrame({"SessionId": sessions, "ItemId": [f"bench-{i}" for i in items],
                       "Time": start + np.arange(n) % 13 * 30.0})
    knn = SessionKNN(**training.VSKNN_PARAMS).fit(df)
    gru = artifacts.model_load(a)
    model = Hybrid(gru, knn, 0.5, fusion="rrf")
    return registry.model_version_register(kind="hybrid", model=model, version=HYBRID_VERSION,
                                           parameters={"weight": 0.5, "fusion": "rrf"}, metrics={"model": {}})


def bench_visit(n_items: int = 10) -> str:
    """The uuid of a visit that viewed ``n_items`` bench products (recorded once)."""
    from catalog.models import Product
    from tracking.selectors import session_history
    from tracking.services import events_record_for_api

    visit = uuid.uuid5(uuid.NAMESPACE_URL, f"shop-bench-visit-{n_items}")
    if len(session_history(str(visit))) < n_items:
        ext = [f"bench-{i}" for i in range(100, 100 + n_items)]
        pk = dict(Product.objects.filter(external_id__in=ext).values_list("external_id", "pk"))
        events_record_for_api(visit, [{"type": "view", "product": pk[e]} for e in ext])
    return str(visit)


def bench_visits(count: int, n_items: int = 10) -> list[str]:
    """``count`` visits (created once, seeded), each with its own ``n_items`` views of random bench
    products: the GET /api/recommendations/?session=... case where each request asks a question
    no process has answered yet (the model scores; its answer cache cannot help)."""
    from datetime import timedelta

    from django.utils import timezone

    from catalog.models import Product
    from tracking.db import events_insert
    from tracking.models import Visit

    uuids = [uuid.uuid5(uuid.NAMESPACE_URL, f"shop-bench-visits-{n_items}-{i}") for i in range(count)]
    have = set(Visit.objects.filter(uuid__in=uuids).values_list("uuid", flat=True))
    todo = [u for u in uuids if u not in have]
    if todo:
        import numpy as np

        pks = np.array(sorted(Product.objects.filter(external_id__startswith="bench-").values_list("pk", flat=True)))
        rng = np.random.default_rng(len(have))
        now = timezone.now()
        for start in range(0, len(todo), 2000):
            chunk = Visit.objects.bulk_create([Visit(uuid=u, started=now, last_seen=now) for u in todo[start:start + 2000]])
            rows = []
            for v in chunk:
                for j, pk in enumerate(rng.choice(pks, n_items, replace=False)):
                    rows.append((v.pk, "view", int(pk), "", None, "", None, now - timedelta(seconds=n_items - j),
                                 None, False, True))
            events_insert(rows)
    return [str(u) for u in uuids]


if __name__ == "__main__":
    for mv in ensure() + ([hybrid_ensure()] if "--hybrid" in sys.argv else []):
        print(mv.version, mv.artifact, mv.n_items)
    print("visit", bench_visit())
