"""Shared by the recommendation benchmarks: a 40,000-item catalogue, two registered GRU4Rec
versions of that size (random weights: serving cost does not depend on what the weights learnt)
and a visit with a 10-item history (the GET /api/recommendations/?session=... case). A missing
PostgreSQL database is created and migrated first.

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


if __name__ == "__main__":
    for mv in ensure():
        print(mv.version, mv.artifact, mv.n_items)
    print("visit", bench_visit())
