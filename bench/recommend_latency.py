"""In-process latency of recommend_for_session: a 10-item session against a 40,000-item GRU4Rec,
k=6, one thread (TORCH_NUM_THREADS=1), beside the engine alone; plus the process RSS.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/recommend_latency.py
"""
import os
import random
import resource
import time

from recommend_setup import ensure  # noqa: I001  (sets up Django)

import numpy as np
import torch

from recommendations import serving, services


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


def main():
    rss0 = rss_mb()
    a, _ = ensure()
    services.model_activate(a)
    bundle = serving.model_reload()
    rss1 = rss_mb()
    print(f"model {bundle.version}: {bundle.n_items} items, loaded in {bundle.load_seconds * 1e3:.0f} ms, "
          f"torch threads {torch.get_num_threads()}")
    rng = random.Random(0)
    pks = [int(p) for p in bundle.index_pk]
    sessions = [rng.sample(pks, 10) for _ in range(256)]
    eng = bundle.engine
    it = iter(range(10**9))

    def engine_only():
        s = sessions[next(it) % 256]
        eng.recommend([bundle.item_ids[bundle.pk_index[p]] for p in s], k=6)

    def service():
        services.recommend_for_session(items=sessions[next(it) % 256], k=6)

    def service_explain():
        services.recommend_for_session(items=sessions[next(it) % 256], k=6, explain=True)

    def similar():
        services.similar_items(sessions[next(it) % 256][0], k=6)

    W = bundle.engine.output[:, :-1].contiguous()
    b = bundle.engine.output[:, -1].contiguous()
    h = torch.randn(1, W.shape[1])

    def bare():  # the floor: one 40k x H matvec + top-k, no GRU steps, no Python around it
        torch.topk(torch.addmm(b, h, W.t()), 14)

    for name, fn in [("calibration: bare matvec+topk", bare), ("engine.recommend (GRU4Rec alone)", engine_only), ("recommend_for_session", service),
                     ("recommend_for_session explain", service_explain), ("similar_items", similar)]:
        r = timeit(fn)
        print(f"{name:<36} p50 {r['p50_ms']:.3f} ms  p90 {r['p90_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms")
    with open("/proc/loadavg") as fh:
        print("load average:", fh.read().split()[0], "on", os.cpu_count(), "cores")
    print(f"RSS: {rss0:.0f} MB after Django+torch import, {rss1:.0f} MB with the model loaded, "
          f"{rss_mb():.0f} MB after the runs (embeddings for similar items included)")


if __name__ == "__main__":
    main()
