"""The scoring kernels of one-session serving alone: one state against the catalogue's output matrix
(``--items`` x ``--hidden``, K padded to a multiple of 4), each timed with the matrix hot (the same
call repeated) and evicted (``--evict`` MiB streamed through the caches before every call, as
between a busy web worker's requests):

- fp32: ``torch.mv`` over ``[Wy | By]`` (what the int8 stage replaces);
- int8 torch: ``torch._int_mm`` (oneDNN; fast where the CPU has VNNI or AMX), the int32 sums only;
- int8 native sums / scores: the engine's own kernel (``recommendations/gru4rec/native``), the int32
  sums, and the sums with the fp32 scaling fused in (what the serving cache uses).

Which one serving keeps is chosen per machine when a model loads (``timings`` of the serving cache);
this prints what each costs here, so that choice can be checked.

    .venv/bin/python bench/int8_kernels.py [--items 40000] [--hidden 100] [--calls 300] [--evict 64]
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
import torch  # noqa: E402

from recommendations.gru4rec import candidates, native  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=40_000)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--evict", type=int, default=64, help="MiB streamed before each evicted call")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows, k = -(-args.items // 64) * 64, -(-args.hidden // 4) * 4
    rng = np.random.default_rng(0)
    q8 = rng.integers(-127, 128, (rows, k), dtype=np.int8)
    a = rng.integers(-127, 128, k, dtype=np.int8)
    scale, bias = rng.random(rows, dtype=np.float32), rng.random(rows, dtype=np.float32)
    w = torch.from_numpy(rng.standard_normal((args.items, args.hidden + 1), dtype=np.float32))
    h = torch.from_numpy(rng.standard_normal(args.hidden + 1, dtype=np.float32))
    q8_t, a_t = torch.from_numpy(q8).t(), torch.from_numpy(a).view(1, k)
    junk = np.zeros((args.evict << 20) // 8)

    def timed(fn, evict: bool) -> float:
        out = []
        for _ in range(args.calls):
            if evict:
                np.add(junk, 1.0, out=junk)
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return round(float(np.median(out)) * 1e3, 4)

    kernels = {"fp32": lambda: torch.mv(w, h)}
    if candidates._kernel() is not None:
        kernels[candidates.KERNEL_TORCH] = lambda: torch._int_mm(a_t, q8_t)
    kern = native.kernel()
    if kern is not None:
        qb = native.blocked(q8)
        sums, score = np.empty(rows, np.int32), np.empty(rows, np.float32)
        kernels[f"{kern.name} sums"] = lambda: kern.sums(qb, a, rows, k, sums)
        kernels[f"{kern.name} scores"] = lambda: kern.scores(qb, a, scale, bias, 0.5, rows, k, sums, score)
    out = {"items": args.items, "hidden": args.hidden, "calls": args.calls, "evict_mib": args.evict,
           "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"), "native": kern.name if kern else None,
           "loadavg_1min": round(os.getloadavg()[0], 2), "p50_ms": {}}
    for name, fn in kernels.items():
        fn()
        hot, cold = timed(fn, False), timed(fn, True)
        out["p50_ms"][name] = {"hot": hot, "evicted": cold}
        print(f"{name:28s} p50 hot {hot:.3f} ms   evicted {cold:.3f} ms", file=sys.stderr)
    if kern is None:
        print("native kernel: not built (python -m recommendations.gru4rec.native build)", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
