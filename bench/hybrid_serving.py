"""Hybrid (GRU4Rec + V-SKNN) serving latency: one live session (10 items) against a large
catalogue, on CPU, beside each part alone.

    .venv/bin/python bench/hybrid_serving.py [--items 40000] [--sessions 200000] [--calls 2000] [--threads 1]

The V-SKNN part is fitted on a synthetic log (``--sessions`` sessions of 2-8 items, item
popularity Zipf-like, as in a shop); the GRU4Rec part has random weights (hidden 100), as in
bench/gru4rec_serving.py (the int8 candidate stage answers as on a trained model, exactly).
Times ``Hybrid.top_items`` (both lists, fusion, top k, the session's items excluded) and the parts'
``top_items``; prints p50/p95/p99 in ms and a JSON line. Target: p50 <= 1 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from recommendations.gru4rec.baselines import SessionKNN  # noqa: E402
from recommendations.gru4rec.hybrid import Hybrid  # noqa: E402
from recommendations.gru4rec.model import GRU4Rec  # noqa: E402
from recommendations.gru4rec.params import GRU4RecParams  # noqa: E402


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1e3, q))


def synthetic_log(n_items: int, n_sessions: int, rng) -> pd.DataFrame:
    lengths = rng.integers(2, 9, size=n_sessions)
    n = int(lengths.sum())
    # Zipf-like popularity (exponent 1.1 over ranks) over the catalogue, every item at least once
    p = 1.0 / np.arange(1, n_items + 1) ** 1.1
    items = rng.choice(n_items, size=n, p=p / p.sum())
    items[:n_items] = rng.permutation(n_items)
    sess = np.repeat(np.arange(n_sessions), lengths)
    return pd.DataFrame({"SessionId": sess, "ItemId": [f"item{i}" for i in items],
                         "Time": sess * 60.0 + np.arange(n) % 9})


def timed(fn, sessions):
    for s in sessions[:50]:  # warm-up
        fn(s)
    lat = []
    for s in sessions:
        t0 = time.perf_counter()
        fn(s)
        lat.append(time.perf_counter() - t0)
    return {"p50": round(pct(lat, 50), 3), "p95": round(pct(lat, 95), 3), "p99": round(pct(lat, 99), 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=40_000)
    ap.add_argument("--sessions", type=int, default=200_000)
    ap.add_argument("--length", type=int, default=10)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--weight", type=float, default=0.7)
    ap.add_argument("--fusion", default="rrf")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    log = synthetic_log(args.items, args.sessions, rng)
    t0 = time.perf_counter()
    knn = SessionKNN().fit(log)
    fit_s = time.perf_counter() - t0
    gru = GRU4Rec(GRU4RecParams(layers=[100]), knn.item_ids, seed=0)
    hybrid = Hybrid(gru, knn, args.weight, args.fusion)
    int8 = hybrid.serving_prepare()
    # live sessions: items drawn like the log's (popular items are clicked more)
    p = 1.0 / np.arange(1, args.items + 1) ** 1.1
    clicks = rng.choice(args.items, size=(args.calls, args.length), p=p / p.sum())
    sessions = [[hybrid.item_index[f"item{i}"] for i in s] for s in clicks]
    k_of = hybrid.h2k
    out = {
        "items": args.items, "train_sessions": args.sessions, "session_length": args.length, "k": args.k,
        "weight": args.weight, "fusion": args.fusion, "depth": hybrid.depth, "threads": args.threads,
        "int8_stage": int8, "vsknn_fit_seconds": round(fit_s, 2), "loadavg_1min": round(os.getloadavg()[0], 2),
        "hybrid_ms": timed(lambda s: hybrid.top_items(s, args.k, exclude=s), sessions),
        "gru4rec_ms": timed(lambda s: gru.top_items(s, args.k, exclude=s), sessions),
        "gru4rec_depth_ms": timed(lambda s: gru.top_items(s, hybrid.depth + 1, exclude=s), sessions),
        "vsknn_ms": timed(lambda s: knn.top_items(k_of[s].tolist(), args.k, exclude=k_of[s].tolist()), sessions),
    }
    out["ok_p50_le_1ms"] = out["hybrid_ms"]["p50"] <= 1.0
    print(f"hybrid top_items: p50 {out['hybrid_ms']['p50']} ms, p99 {out['hybrid_ms']['p99']} ms "
          f"(GRU4Rec top {args.k}: {out['gru4rec_ms']['p50']} ms, top {hybrid.depth + 1}: "
          f"{out['gru4rec_depth_ms']['p50']} ms; V-SKNN: {out['vsknn_ms']['p50']} ms)", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
