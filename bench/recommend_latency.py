"""In-process latency of recommend_for_session: a 10-item session against a 40,000-item GRU4Rec
(or, with --kind hybrid, the 40,000-item hybrid of bench/recommend_setup.py), k=6, one thread
(TORCH_NUM_THREADS=1), beside the engine alone; the int8 candidate stage (candidates re-scored,
recall of its top C, exactness against fp32); the process RSS. Every figure is printed with the
1-minute load average (the machine is shared). Every line times a new question each call (a
session or product no call asked before: the model scores), except the lines that say "again"
(256 sessions, or the bench visit, asked over and over: the loaded model's answer cache answers).

    DATABASE_URL=postgres://... REDIS_URL=redis://... MODEL_DIR=... python bench/recommend_latency.py [rounds] [--kind hybrid] [--experiment]

--experiment: an A/B experiment of the two bench GRU4Rec versions runs on "Recommended for you"
while the rounds run (stopped at the end), and recommend_for_session(items, visit=...) is timed for
a visit of each arm beside the same call without a visit (the active model).
"""
import os
import random
import resource
import sys
import time
import uuid

from recommend_setup import bench_visit, ensure, hybrid_ensure  # noqa: I001  (sets up Django)

import numpy as np
import torch

from recommendations import artifacts, ranking, registry, serving


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timeit(fn, n=2000, warm=200):
    for _ in range(warm):
        fn()
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return {"p50_ms": np.percentile(out, 50) * 1e3, "p90_ms": np.percentile(out, 90) * 1e3,
            "p99_ms": np.percentile(out, 99) * 1e3}


def candidate_stage(eng, sessions):
    """Candidates re-scored per session, recall of the approximate top C, exact top-k mismatches."""
    cache = eng._serving()
    scorer = cache.scorer
    timed = ", ".join(f"{k} {v:.3f}" for k, v in getattr(cache, "timings", {}).items())
    print(f"int8 candidate stage timed at load: {timed or 'not timed'}; ONEDNN_MAX_CPU_ISA="
          f"{os.environ.get('ONEDNN_MAX_CPU_ISA')}")
    from recommendations.gru4rec import native

    k = native.kernel()
    print(f"native int8 kernel: {k.name if k else 'not available (python -m recommendations.gru4rec.native build)'}")
    if scorer is None:
        print("int8 candidate stage: not in use (fp32 scoring)")
        return
    print(f"int8 candidate stage: in use, kernel {scorer.kernel_name}")
    counts, recall, mismatch = [], {14: [], 50: [], 100: []}, 0
    for s in sessions:
        h = eng._hidden_one_cpu(s)
        counts.append(scorer.n_candidates(eng.output, h, 14))
        for c in recall:
            recall[c].append(scorer.candidate_recall(eng.output, h, 14, c))
        got, _ = eng.top_items(s, 14, exclude=s)
        full = eng._scores_of(h)
        full[s] = -torch.inf
        mismatch += got != torch.topk(full, 14).indices.tolist()
    print(f"int8 candidate stage: {scorer.nbytes / 2**20:.1f} MiB; items re-scored exactly per request "
          f"p50 {np.percentile(counts, 50):.0f}, p99 {np.percentile(counts, 99):.0f}, max {max(counts)}; "
          "top-14 recall of the approximate top C: "
          + ", ".join(f"C={c} {np.mean(v):.4f}" for c, v in recall.items())
          + f"; exact top-14 differs from fp32 scoring in {mismatch} of {len(sessions)} sessions")


def main():
    experiment = "--experiment" in sys.argv
    args = [a for a in sys.argv[1:] if not a.startswith(("--kind", "--experiment"))]
    kind = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--kind=")), None)
    if "--kind" in sys.argv:
        kind = sys.argv[sys.argv.index("--kind") + 1]
        args.remove(kind)
    kind = kind or "gru4rec"
    if kind not in ("gru4rec", "hybrid"):
        sys.exit(f"--kind: gru4rec or hybrid (got {kind!r})")
    rounds = int(args[0]) if args else 1
    rss0 = rss_mb()
    a, _ = ensure()
    visit = bench_visit()
    registry.model_activate(hybrid_ensure() if kind == "hybrid" else a)
    arm_visits = {}
    if experiment:
        from recommendations import experimenting  # why: only this option runs an experiment
        from recommendations.experiments.assignment import arm_for  # why: only this option runs an experiment
        from recommendations.models import Experiment

        for old in Experiment.objects.filter(status=Experiment.Status.RUNNING, surface="recommended"):
            experimenting.experiment_stop(old)
        b = ensure()[1]
        exp = experimenting.experiment_start(experimenting.experiment_create(
            name=f"bench {time.time():.0f}", surface="recommended",
            arms=[experimenting.ArmInput("a", a, 0.5), experimenting.ArmInput("b", b, 0.5)]))
        arms = list(exp.arms.order_by("id"))
        vrng = random.Random(1)
        while len(arm_visits) < 2:
            v = str(uuid.UUID(int=vrng.getrandbits(128), version=4))
            arm_visits.setdefault(arms[arm_for(v, exp.salt, [x.share for x in arms])].name, v)
    bundle = serving.model_reload()
    rss1 = rss_mb()
    print(f"model {bundle.version}: {bundle.n_items} items, loaded in {bundle.load_seconds * 1e3:.0f} ms, "
          f"torch threads {torch.get_num_threads()}")
    rng = random.Random(0)
    pks = [int(p) for p in bundle.index_pk]
    sessions = [rng.sample(pks, 10) for _ in range(256)]  # asked again and again: the answer cache answers
    # A new question every call: sessions and products no call asked before, so neither the answer
    # cache nor the engine's GRU-state cache answers (2,200 calls a line a round).
    fresh = iter([rng.sample(pks, 10) for _ in range(2200 * (5 + 2) * max(1, rounds))])
    fresh_products = iter(rng.sample(pks, min(len(pks), 2200 * max(1, rounds))) * 2)
    eng = bundle.engine
    gru = eng if kind == "gru4rec" else artifacts.model_load(a)  # the hybrid's GRU4Rec, for the calibration
    if kind == "gru4rec":
        candidate_stage(eng, [[bundle.pk_index[p] for p in s] for s in sessions[:200]])
    it = iter(range(10**9))

    def engine_only():
        s = next(fresh)
        if kind == "gru4rec":
            eng.recommend([bundle.item_ids[bundle.pk_index[p]] for p in s], k=6)
        else:
            idx = [bundle.pk_index[p] for p in s]
            eng.top_items(idx, 14, exclude=idx)

    def service():
        ranking.recommend_for_session(items=next(fresh), k=6)

    def service_again():
        ranking.recommend_for_session(items=sessions[next(it) % 256], k=6)

    def in_arm(name):
        def fn():
            ranking.recommend_for_session(items=next(fresh), k=6, visit=arm_visits[name])
        return fn

    def service_visit():  # + the visit's history from PostgreSQL (one query)
        ranking.recommend_for_session(session=visit, k=6)

    def service_explain():
        ranking.recommend_for_session(items=next(fresh), k=6, explain=True)

    def similar():
        ranking.similar_items(next(fresh_products), k=6)

    out = gru.output
    h = torch.randn(1, out.shape[1] - 1)

    def bare():  # the old floor: one fp32 40k x H mat-vec + top-k, no GRU steps, no Python around it
        torch.topk(torch.addmm(out[:, -1], h, out[:, :-1].t()), 14)

    for r in range(rounds):
        for name, fn in ([("calibration: fp32 matvec+topk", bare),
                         ("engine.recommend (GRU4Rec alone)" if kind == "gru4rec" else "engine.top_items (hybrid alone)",
                          engine_only),
                         ("recommend_for_session(items)", service),
                         ("recommend_for_session(items) again", service_again),
                         ("recommend_for_session(session=visit) again", service_visit),
                         ("recommend_for_session explain", service_explain), ("similar_items", similar)]
                         + [(f"experiment arm {n} (items, visit)", in_arm(n)) for n in sorted(arm_visits)]):
            res = timeit(fn)
            print(f"{name:<44} p50 {res['p50_ms']:.3f} ms  p90 {res['p90_ms']:.3f} ms  p99 {res['p99_ms']:.3f} ms"
                  f"   load {os.getloadavg()[0]:.2f}")
        if r + 1 < rounds:
            print("--")
    if experiment:
        experimenting.experiment_stop(exp)
        print(f"experiment {exp.pk} stopped; arm models held beside the active one: "
              f"{sorted(serving._state.arm_bundles)}; visits: {arm_visits}")
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()), "on", os.cpu_count(), "cores")
    print(f"RSS: {rss0:.0f} MB after Django+torch import, {rss1:.0f} MB with the model loaded, "
          f"{rss_mb():.0f} MB after the runs (embeddings for similar items included)")


if __name__ == "__main__":
    main()
