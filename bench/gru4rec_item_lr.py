"""How the default ``item_lr_scale`` was chosen: a grid on validation days carved from the
*training* part of each benchmark split (the test sets are not looked at).

    .venv/bin/python bench/gru4rec_item_lr.py [--split yoochoose-week retailrocket] [--scales 1 0.6 0.4 0.25 0.15 0.1] [--variants classic reference]

For each split, the last day (YOOCHOOSE week) or the last 2 days (RetailRocket) of train.tsv
become a validation set by the standard split rule; GRU4Rec trains on the rest with the
published settings and the given item learning-rate scale, and is evaluated on the validation
set. Prints one JSON line per (split, scale).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from gru4rec_accuracy import SETTINGS, SPLITS, read  # noqa: I001  (puts the repository on sys.path)

import torch

from recommendations.gru4rec.sessions import split_by_time
from recommendations.gru4rec.evaluation import evaluate
from recommendations.gru4rec.trainer import fit

VALIDATION_DAYS = {"yoochoose-week": 1, "retailrocket": 2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", nargs="+", default=list(SETTINGS))
    ap.add_argument("--scales", nargs="+", type=float, default=[1.0, 0.6, 0.4, 0.25, 0.15, 0.1])
    ap.add_argument("--variants", nargs="+", default=["classic"], help="gru_variant values to try")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not SPLITS.is_dir():
        sys.exit(f"skipped: {SPLITS} is absent (the benchmark splits live outside the repository)")
    if args.threads:
        torch.set_num_threads(args.threads)
    for split in args.split:
        train, valid = split_by_time(read(SPLITS / split / "train.tsv"), VALIDATION_DAYS[split])
        for variant, scale in ((v, s) for v in args.variants for s in args.scales):
            t0 = time.perf_counter()
            model, _ = fit(train, f"{SETTINGS[split]},item_lr_scale={scale},gru_variant={variant}", seed=args.seed,
                           progress=False, log=lambda _msg: None)
            res = evaluate(model, valid, cutoffs=(20,))
            print(json.dumps({
                "split": split, "item_lr_scale": scale, "gru_variant": variant, "train_events": len(train), "valid_events": len(valid),
                "recall@20": round(res["recall@20"], 4), "mrr@20": round(res["mrr@20"], 4),
                "seconds": round(time.perf_counter() - t0, 1), "loadavg_1min": round(os.getloadavg()[0], 2),
            }), flush=True)


if __name__ == "__main__":
    main()
