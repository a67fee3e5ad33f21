"""A growing session on the 40k-item bench GRU4Rec: the state kept after each session asked.

    DATABASE_URL=postgres://... REDIS_URL=redis://... MODEL_DIR=... python bench/gru4rec_state_cache.py

300 random sessions of 10 and of 30 items, one thread. For each length: p50 of the session's GRU
state computed from the start (nothing kept) and one step on (the session without its last item
asked before, as a shopper's previous page did), then the same for ``top_items`` (state + int8
scoring + exact re-scoring of the top 14). Two rounds each.
"""
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from recommend_setup import ensure  # noqa: E402  (sets up Django)

from recommendations import artifacts  # noqa: E402


def p50_ms(fn, cases) -> float:
    times = []
    for case in cases:
        t0 = time.perf_counter()
        fn(case)
        times.append(time.perf_counter() - t0)
    return float(np.percentile(times, 50)) * 1000


def main() -> None:
    torch.set_num_threads(1)
    model = artifacts.model_load(ensure()[0])
    model.serving_prepare()
    states = model._serving().states
    rng = np.random.default_rng(0)
    sessions = [rng.choice(model.n_items, 30, replace=False).tolist() for _ in range(300)]
    print(f"model {model.n_items} items, hidden {model.hidden_size}; load {os.getloadavg()[0]:.2f}")
    for length in (10, 30):
        for _ in range(2):
            row = {}
            for name, fn in (("state", lambda s: model._hidden_one_cpu(s[:length])),
                             ("top_items", lambda s: model.top_items(s[:length], 14, exclude=s[:length]))):
                states.clear()
                fresh = p50_ms(fn, sessions)
                states.clear()
                for s in sessions:
                    model._hidden_one_cpu(s[: length - 1])
                row[name] = (fresh, p50_ms(fn, sessions))
            print(f"{length}-item session p50: GRU state {row['state'][0]:.3f} ms from the start, "
                  f"{row['state'][1]:.3f} ms one step on; top_items {row['top_items'][0]:.3f} vs "
                  f"{row['top_items'][1]:.3f} ms")


if __name__ == "__main__":
    main()
