"""ANN candidate retrieval at catalogue scale: index build time and memory, recall@20 of the ANN
top-20 against the exact top-20, and per-request latency of the serving path.

    .venv/bin/python bench/ann_retrieval.py                    # 1,000,000 items, hidden 100
    .venv/bin/python bench/ann_retrieval.py --items 200000 --queries 500

The model is generated (recommendations/clusters/synthetic.py): structured Wy (categories >
topics > items) and a popularity bias By, with a GRU whose hidden state follows the session's
items, so queries are the hidden states of 10-item sessions, not random vectors (random vectors
are reported too, for contrast). One request = GRU over a 10-item session + ANN search + drop
seen items + top-20, one request at a time on one thread (the serving setting TORCH_NUM_THREADS=1).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from recommendations.clusters import retrieval, synthetic  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def exact_all(Wy, By, h, k, chunk=50):
    out = []
    for s in range(0, len(h), chunk):
        out.append(retrieval.exact_topk(Wy, By, h[s : s + chunk], k)[1])
    return np.vstack(out)


def percentiles(ms):
    a = np.asarray(ms)
    return f"p50 {np.percentile(a, 50):.2f} ms, p95 {np.percentile(a, 95):.2f} ms, p99 {np.percentile(a, 99):.2f} ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--nprobe", type=int, nargs="*", default=None, help="nprobe values to sweep (default: around the chosen one)")
    ap.add_argument("--build-threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import faiss

    print(f"machine: {os.cpu_count()} cores (shared), torch {torch.__version__}, faiss {faiss.__version__}")
    t0 = time.perf_counter()
    syn = synthetic.structured_output(args.items, hidden=args.hidden, seed=args.seed)
    model = synthetic.structured_gru4rec(syn)
    print(f"generated model: {args.items:,} items x hidden {args.hidden} in {time.perf_counter() - t0:.1f} s "
          f"({int(syn.topic.max()) + 1} topics, {int(syn.category.max()) + 1} categories)")

    faiss.omp_set_num_threads(args.build_threads)
    params = retrieval.index_params(args.items)
    rss0 = rss_mib()
    t0 = time.perf_counter()
    index = retrieval.build_ip_index(syn.Wy, syn.By, **params)
    build_s = time.perf_counter() - t0
    rss1 = rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        size = retrieval.index_write(index, Path(tmp) / "bench.faiss")
        t0 = time.perf_counter()
        retrieval.index_read(Path(tmp) / "bench.faiss")
        read_s = time.perf_counter() - t0
    print(f"index IVF{params['nlist']},Flat (inner product over [Wy | By]): built in {build_s:.1f} s on "
          f"{args.build_threads} threads; file {size / 2**20:.0f} MiB, RSS +{rss1 - rss0:.0f} MiB "
          f"(vectors alone {args.items * (args.hidden + 1) * 4 / 2**20:.0f} MiB); read back in {read_s:.2f} s")

    sessions = synthetic.sessions_sample(syn, args.queries, length=10, seed=args.seed + 1)
    torch.set_num_threads(args.build_threads)
    h = model.final_hidden(sessions).numpy()
    t0 = time.perf_counter()
    exact_ids = exact_all(syn.Wy, syn.By, h, args.k)
    exact_s = time.perf_counter() - t0
    rng = np.random.default_rng(args.seed + 2)
    h_rand = rng.uniform(-1, 1, h.shape).astype(np.float32)
    exact_rand = exact_all(syn.Wy, syn.By, h_rand, args.k)
    print(f"exact top-{args.k} of {args.queries} queries (batched, {args.build_threads} threads): {exact_s:.1f} s")

    chosen = params["nprobe"]
    sweep = args.nprobe or sorted({max(1, chosen // 4), max(1, chosen // 2), chosen, chosen * 2})
    print(f"recall@{args.k} of ANN top-{args.k} against exact top-{args.k} ({args.queries} queries):")
    for nprobe in sweep:
        retrieval.set_nprobe(index, nprobe)
        t0 = time.perf_counter()
        ids = retrieval.search(index, h, args.k)[1]
        dt = time.perf_counter() - t0
        rec = retrieval.recall_at(ids, exact_ids)
        rec_rand = retrieval.recall_at(retrieval.search(index, h_rand, args.k)[1], exact_rand)
        mark = "  <- default" if nprobe == chosen else ""
        print(f"  nprobe {nprobe:4d}: session hidden states {rec:.4f}, random vectors {rec_rand:.4f}; "
              f"batched search {1000 * dt / args.queries:.3f} ms/query{mark}")
    retrieval.set_nprobe(index, chosen)

    # Per request, one at a time, one thread: the serving path.
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    unavailable = np.zeros(args.items, dtype=np.float32)
    n_req = min(args.queries, 1000)
    for s in sessions[:20]:  # warm-up
        retrieval.session_topk(model, index, s, args.k, True, unavailable)
    total_ms, total_cpu_ms = [], []
    for s in sessions[:n_req]:
        t0, c0 = time.perf_counter(), time.thread_time()
        out, _ = retrieval.session_topk(model, index, s, args.k, True, unavailable)
        total_ms.append(1000 * (time.perf_counter() - t0))
        total_cpu_ms.append(1000 * (time.thread_time() - c0))
        assert len(out) == args.k
    gru_ms, ann_ms = [], []
    for s in sessions[:n_req]:
        t0 = time.perf_counter()
        with torch.inference_mode():
            hh = model.final_hidden([s])
        t1 = time.perf_counter()
        retrieval.search(index, hh, args.k + len(s) + 16)
        gru_ms.append(1000 * (t1 - t0))
        ann_ms.append(1000 * (time.perf_counter() - t1))
    print(f"per request, 1 thread, {n_req} sessions of 10 items (GRU + ANN search + drop seen + top-{args.k}), "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores:")
    print(f"  total, wall clock  {percentiles(total_ms)}")
    print(f"  total, CPU time    {percentiles(total_cpu_ms)}  (wall minus time spent waiting for a core)")
    print(f"  GRU alone, wall    {percentiles(gru_ms)}")
    print(f"  search alone, wall {percentiles(ann_ms)}")
    exact_req = []
    with torch.inference_mode():
        for s in sessions[:50]:
            t0 = time.perf_counter()
            scores = model.score_sessions([s])[0]
            scores[torch.as_tensor(s)] = -torch.inf
            torch.topk(scores, args.k)
            exact_req.append(1000 * (time.perf_counter() - t0))
    print(f"  for contrast, exact scoring of all {args.items:,} items per request: {percentiles(exact_req)}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
