"""A web worker serving an experiment: its RSS against EXPERIMENT_MEMORY_BUDGET_MB and the
recommendation latency with the experiment running, beside the same worker without one.

Three 40,000-item GRU4Rec versions (random weights, bench/recommend_setup.py): ``bench-40k-a`` is
active in every case. Each case runs in a fresh process (a worker's start, shop/wsgi.py's warm-up,
then requests), one thread (TORCH_NUM_THREADS=1):

    none          no experiment: the active model only
    ab-2models    A/B between bench-40k-a (the active one) and bench-40k-b: two models held
    ab-3models    A/B between bench-40k-b and bench-40k-c: three models held (the active one too)
    interleaving  team-draft interleaving of bench-40k-b and bench-40k-c: both arms score every request

Per request: ``ranking.recommend_for_session`` of a random 10-item session for a new visit id each time
(so the visits spread over the arms), k=6. Printed: RSS after warm-up and after the requests, the
estimate of ``experimenting.memory_needed_mb`` and the budget, the arm models' load time (hot
reload), p50/p90/p99 per request, and the 1-minute load average (the machine is shared).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shop_expdj_bench REDIS_URL=redis://127.0.0.1:6379/11 \
    MODEL_DIR=$PWD/var/bench-models python bench/experiment_memory.py [requests]
"""
import json
import os
import subprocess
import sys
import time
import uuid

CASES = ("none", "ab-2models", "ab-3models", "interleaving")


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def setup() -> None:
    """Create the versions and the bench visit (idempotent), in this process."""
    from recommend_setup import GRU4Rec, PARAMS, N_ITEMS, ensure, parse_params, registry  # noqa: I001
    from recommendations.models import ModelVersion

    ensure()
    if not ModelVersion.objects.filter(version="bench-40k-c").exists():
        ids = [f"bench-{i}" for i in range(N_ITEMS)]
        registry.model_version_register(kind="gru4rec", model=GRU4Rec(parse_params(PARAMS), ids, seed=2),
                                        version="bench-40k-c", parameters={"params": PARAMS}, metrics={"model": {}})
    registry.model_activate(ModelVersion.objects.get(version="bench-40k-a"))


def prepare(case: str):
    """Stop every experiment, then start the case's (in the database, before the worker starts)."""
    from recommendations import experimenting
    from recommendations.models import Experiment, ModelVersion

    for e in Experiment.objects.filter(status="running"):
        experimenting.experiment_stop(e)
    if case == "none":
        return None
    mv = {v: ModelVersion.objects.get(version=v) for v in ("bench-40k-a", "bench-40k-b", "bench-40k-c")}
    arms = (("a", mv["bench-40k-a"]), ("b", mv["bench-40k-b"])) if case == "ab-2models" else \
        (("b", mv["bench-40k-b"]), ("c", mv["bench-40k-c"]))
    e = experimenting.experiment_create(
        name=f"bench {case}", surface="recommended", mode="interleaving" if case == "interleaving" else "ab",
        arms=[experimenting.ArmInput(n, m, 0.5) for n, m in arms])
    return experimenting.experiment_start(e)


def worker(case: str, n: int) -> dict:
    """One fresh worker: warm up as shop/wsgi.py does, then ``n`` requests."""
    import numpy as np

    from recommend_setup import bench_visit  # noqa: I001  (sets up Django)
    from recommendations import ranking, serving
    from recommendations.selectors import session_product_ids

    before = rss_mb()
    t0 = time.perf_counter()
    serving.warm_up()
    warm_s = time.perf_counter() - t0
    items = session_product_ids(bench_visit())
    # a different 10-item session per request (the same one each time would measure the engine's caches)
    from catalog.models import Product

    pks = list(Product.objects.filter(external_id__startswith="bench-").values_list("pk", flat=True)[:40_000])
    rng = np.random.default_rng(0)
    sessions = [[int(x) for x in rng.choice(pks, 10, replace=False)] for _ in range(n + 200)]
    after_warm = rss_mb()
    arms_loaded = serving.arm_versions_loaded()
    load_s = {v: round(serving.bundle_for(v).load_seconds, 3) for v in arms_loaded}
    seen: dict = {}
    times = np.empty(n)
    for i in range(-200, n):
        t = time.perf_counter()
        result = ranking.recommend_for_session(items=sessions[i + 200], k=6, visit=str(uuid.uuid4()))
        if i >= 0:
            times[i] = time.perf_counter() - t
            arm = f"{(result.experiment or {}).get('arm')}/{result.strategy}"
            seen[arm] = seen.get(arm, 0) + 1
    return {"case": case, "rss_start_mb": round(before, 1), "rss_warm_mb": round(after_warm, 1),
            "rss_end_mb": round(rss_mb(), 1), "warm_up_s": round(warm_s, 2), "arm_models": arms_loaded,
            "arm_load_s": load_s, "served": seen, "session_items": len(items),
            "p50_ms": round(float(np.percentile(times, 50)) * 1e3, 2),
            "p90_ms": round(float(np.percentile(times, 90)) * 1e3, 2),
            "p99_ms": round(float(np.percentile(times, 99)) * 1e3, 2),
            "load_avg_1m": os.getloadavg()[0]}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    os.environ.setdefault("TORCH_NUM_THREADS", "1")
    if len(sys.argv) > 2 and sys.argv[2] == "--worker":
        print(json.dumps(worker(sys.argv[3], n)))
        return
    import recommend_setup  # noqa: F401  (sets up Django)
    from django.conf import settings

    from recommendations import experimenting

    setup()
    rows = []
    for case in CASES:
        e = prepare(case)
        estimate = experimenting.memory_needed_mb(e)[0] if e is not None else None
        out = subprocess.run([sys.executable, __file__, str(n), "--worker", case], capture_output=True, text=True,
                             check=True, cwd=os.path.dirname(os.path.abspath(__file__)))
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["estimate_mb"] = None if estimate is None else round(estimate, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    prepare("none")
    base = rows[0]["rss_warm_mb"]
    print(f"\nbudget EXPERIMENT_MEMORY_BUDGET_MB = {settings.EXPERIMENT_MEMORY_BUDGET_MB:g} MB (the models' estimate)")
    print(f"{'case':<13} {'RSS warm':>9} {'RSS end':>8} {'+ vs none':>9} {'estimate':>9} {'arm load s':>12} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'load':>5}")
    for r in rows:
        print(f"{r['case']:<13} {r['rss_warm_mb']:>9.0f} {r['rss_end_mb']:>8.0f} {r['rss_warm_mb'] - base:>+9.0f} "
              f"{'-' if r['estimate_mb'] is None else format(r['estimate_mb'], '.0f'):>9} "
              f"{','.join(str(s) for s in r['arm_load_s'].values()) or '-':>12} "
              f"{r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['load_avg_1m']:>5.2f}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
