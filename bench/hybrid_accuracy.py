"""Hybrid (GRU4Rec + V-SKNN) accuracy on the shared splits, step by step as ``fit_hybrid`` does it,
with the trained models kept so that other fusion grids can be tried without training again.

    .venv/bin/python bench/hybrid_accuracy.py --split retailrocket [--cache /tmp/hybrid-bench] [--threads 2]
        [--fusions rrf minmax] [--weights 0 0.05 ... 1]

1. cut the last day off train.tsv (``sessions.split_by_time``), train GRU4Rec (published settings
   of bench/gru4rec_accuracy.py, seed 0) and V-SKNN (defaults) on the rest; 2. choose weight and
   fusion there (``hybrid_weight_fit``, ``metrics.objective``); 3. train both on all of train.tsv,
   evaluate the hybrid with that choice and each part on test.tsv. test.tsv is read only in step 3.
Models go to ``--cache/<split>/{valid,final}`` (reused when present). Prints a JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402

from gru4rec_accuracy import SETTINGS, SPLITS  # noqa: E402
from recommendations.gru4rec.baselines import SessionKNN, evaluate_baseline, load_baseline  # noqa: E402
from recommendations.gru4rec.evaluation import evaluate  # noqa: E402
from recommendations.gru4rec.formats import read_events  # noqa: E402
from recommendations.gru4rec.hybrid import FUSIONS, Hybrid, evaluate_hybrid, hybrid_weight_fit  # noqa: E402
from recommendations.gru4rec.model import GRU4Rec  # noqa: E402
from recommendations.gru4rec.sessions import split_by_time  # noqa: E402
from recommendations.gru4rec.trainer import fit  # noqa: E402


def models(train, params: str, folder: Path, log) -> tuple[GRU4Rec, SessionKNN, float]:
    """Trained GRU4Rec and V-SKNN on ``train``, from ``folder`` when it holds them."""
    gru_path, knn_path = folder / "gru4rec.safetensors", folder / "vsknn"
    t0 = time.perf_counter()
    if gru_path.is_file() and knn_path.is_dir():
        log(f"reusing {folder}")
        return GRU4Rec.load(gru_path), load_baseline(knn_path), 0.0
    gru, _ = fit(train, params, seed=0, progress=False)
    knn = SessionKNN().fit(train)
    folder.mkdir(parents=True, exist_ok=True)
    gru.save(gru_path)
    knn.save(knn_path)
    return gru, knn, time.perf_counter() - t0


def r(m: dict) -> dict:
    return {k: round(v, 4) for k, v in m.items() if k in ("recall@20", "mrr@20")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", required=True, choices=sorted(SETTINGS))
    ap.add_argument("--cache", default="/tmp/hybrid-bench")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fusions", nargs="+", default=list(FUSIONS))
    ap.add_argument("--weights", type=float, nargs="+")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    folder = SPLITS / args.split
    train = read_events(folder / "train.tsv")
    tr, va = split_by_time(train, days=1)
    cache = Path(args.cache) / args.split
    gru_v, knn_v, valid_train_s = models(tr, SETTINGS[args.split], cache / "valid", log)
    t0 = time.perf_counter()
    chosen = hybrid_weight_fit(gru_v, knn_v, va, weights=args.weights, fusions=tuple(args.fusions))
    fit_s = time.perf_counter() - t0
    log(f"chosen: {chosen['fusion']} {chosen['fusion_params']} weight {chosen['weight']} -> {r(chosen['metrics'])}")
    gru, knn, final_train_s = models(train, SETTINGS[args.split], cache / "final", log)
    test = read_events(folder / "test.tsv")
    hybrid = Hybrid(gru, knn, chosen["weight"], chosen["fusion"], **chosen["fusion_params"])
    h = evaluate_hybrid(hybrid, test)
    out = {
        "split": args.split, "threads": args.threads, "loadavg_1min": round(os.getloadavg()[0], 2),
        "chosen": {k: chosen[k] for k in ("weight", "fusion", "fusion_params")},
        "validation": {"hybrid": r(chosen["metrics"]), "objective": round(chosen["objective"], 4),
                       "events": len(va), "transitions": chosen["metrics"]["n_events"]},
        "test": {"hybrid": r(h), "gru4rec": r(evaluate(gru, test)), "vsknn": r(evaluate_baseline(knn, test)),
                 "hybrid_all": {k: round(v, 4) for k, v in h.items() if "@" in k}},
        "seconds": {"train_valid_models": round(valid_train_s, 1), "weight_fit": round(fit_s, 1),
                    "train_final_models": round(final_train_s, 1), "evaluate_hybrid": round(h["eval_seconds"], 1)},
        "grid": [{**g, "objective": round(g["objective"], 4), "recall@20": round(g["recall@20"], 4),
                  "mrr@20": round(g["mrr@20"], 4)} for g in chosen["grid"]],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
