"""GRU4Rec memory on a large synthetic catalogue: peak RSS of data prep + one training epoch.

    .venv/bin/python bench/gru4rec_memory.py [--items 1000000] [--events 10000000] [--max-steps N]

Generates sessions (geometric lengths, mean ~4.5) over a Zipf-like catalogue, builds the item map,
the session-parallel plan for the whole epoch and the optimiser state, then trains (all steps,
or the first ``--max-steps`` when time is short: memory reaches its steady state after the
first step, since a step only allocates per-batch temporaries). Prints peak RSS and a JSON line.
Target: 1M items, 10M events, one epoch within 8 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from recommendations.gru4rec.iterator import encode_sessions  # noqa: E402
from recommendations.gru4rec.model import GRU4Rec  # noqa: E402
from recommendations.gru4rec.params import parse_params  # noqa: E402
from recommendations.gru4rec.trainer import Trainer, item_support  # noqa: E402


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # ru_maxrss is KiB on Linux


def synthetic(n_items: int, n_events: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lengths = rng.geometric(1 / 3.5, size=n_events // 3) + 1
    lengths = lengths[np.cumsum(lengths) <= n_events]
    n = int(lengths.sum())
    sess = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    items = (rng.pareto(1.2, size=n) * n_items / 50).astype(np.int64) % n_items
    items[: n_items] = np.arange(min(n_items, n))  # every item appears at least once
    time_ = sess * 30.0 + np.arange(n) % 7
    return pd.DataFrame({"SessionId": sess, "ItemId": items.astype(str), "Time": time_})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--params", default="loss=cross-entropy,layers=100,batch_size=32,n_sample=2048,"
                                       "momentum=0.2,learning_rate=0.2,logq=1,dropout_p_hidden=0.4")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    df = synthetic(args.items, args.events)
    t_gen = time.perf_counter() - t0
    rss_data = rss_gb()
    params = parse_params(args.params)
    item_ids = pd.unique(df["ItemId"])
    model = GRU4Rec(params, item_ids, seed=0)
    sessions = encode_sessions(df, model.item_index)
    del df
    trainer = Trainer(model, item_support(sessions, model.n_items), seed=0)
    rss_setup = rss_gb()
    t1 = time.perf_counter()
    hist = trainer.train(sessions, n_epochs=1, progress=True, max_steps=args.max_steps)
    out = {
        "items": model.n_items, "events": sessions.n_events, "sessions": sessions.n_sessions,
        "max_steps": args.max_steps, "params": params.to_string(),
        "generate_seconds": round(t_gen, 1), "train_seconds": round(time.perf_counter() - t1, 1),
        "events_per_second": round(hist[0]["events_per_second"]),
        "peak_rss_gb_after_data": round(rss_data, 3), "peak_rss_gb_after_setup": round(rss_setup, 3),
        "peak_rss_gb": round(rss_gb(), 3), "ok_within_8gb": rss_gb() <= 8.0,
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }
    print(f"peak RSS {out['peak_rss_gb']:.2f} GB ({model.n_items:,} items, {sessions.n_events:,} events)", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
