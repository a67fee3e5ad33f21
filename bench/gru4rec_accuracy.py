"""GRU4Rec accuracy and speed on the benchmark splits, beside the baselines.

    .venv/bin/python bench/gru4rec_accuracy.py [--split yoochoose-week retailrocket] [--epochs 10] [--threads 2]

Reads ../shared/data/splits/<split>/{train,test}.tsv (relative to the repository root), trains
with the published settings (spec table), evaluates Recall/MRR@{1,5,10,20} (conservative ties)
and prints one JSON line per split with the figures, the reference and the pass/fail checks.
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

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from recommendations.gru4rec import baselines as bl  # noqa: E402
from recommendations.gru4rec.evaluation import evaluate  # noqa: E402
from recommendations.gru4rec.formats import read_events  # noqa: E402
from recommendations.gru4rec.trainer import fit  # noqa: E402

SPLITS = ROOT.parent / "shared" / "data" / "splits"
SETTINGS = {
    "yoochoose-week": "loss=cross-entropy,layers=100,batch_size=32,dropout_p_embed=0.0,dropout_p_hidden=0.4,"
                      "learning_rate=0.2,momentum=0.2,sample_alpha=0.5,elu_param=0,logq=1,"
                      "n_sample=2048,constrained_embedding=True,n_epochs=10",
    "retailrocket": "loss=bpr-max,layers=224,batch_size=80,dropout_p_embed=0.5,dropout_p_hidden=0.05,"
                    "learning_rate=0.05,momentum=0.4,sample_alpha=0.4,bpreg=1.95,elu_param=0.5,logq=0,"
                    "n_sample=2048,constrained_embedding=True,n_epochs=10",
}
REFERENCE = {  # measured by the reference implementation on these splits (issue 5), 2 CPU cores
    "yoochoose-week": {"recall@20": 0.695, "mrr@20": 0.361, "train_seconds": 184, "events_per_second": 8500},
    "retailrocket": {"recall@20": 0.439, "mrr@20": 0.195, "train_seconds": 23, "events_per_second": 9200},
}


def read(path: Path) -> pd.DataFrame:
    # The engine's reader: the same frame (int64 sessions, str items, float seconds, file order) as
    # the plain read_csv this used to be, checked on both splits.
    return read_events(path)


def baselines(train, test, cutoffs):
    """Popularity / ItemKNN / V-SKNN beside GRU4Rec."""
    out = {}
    for name, cls in (("pop", bl.Popularity), ("itemknn", bl.ItemKNN), ("vsknn", bl.SessionKNN)):
        t0 = time.perf_counter()
        model = cls().fit(train)
        res = bl.evaluate_baseline(model, test, cutoffs=cutoffs)
        out[name] = {k: round(float(v), 4) for k, v in res.items() if k.startswith(("recall@20", "mrr@20"))}
        out[name]["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", nargs="+", default=list(SETTINGS))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--save", help="folder for the trained checkpoints")
    ap.add_argument("--item-lr-scale", type=float, default=None,
                    help="override the engine's item_lr_scale (1.0 = the spec's update taken literally)")
    ap.add_argument("--gru-variant", choices=["classic", "reference"], default=None,
                    help="override the engine's gru_variant (the GRU cell)")
    args = ap.parse_args()
    if not SPLITS.is_dir():
        sys.exit(f"skipped: {SPLITS} is absent (the benchmark splits live outside the repository)")
    if args.threads:
        torch.set_num_threads(args.threads)
    cutoffs = (1, 5, 10, 20)
    for split in args.split:
        train, test = read(SPLITS / split / "train.tsv"), read(SPLITS / split / "test.tsv")
        params = SETTINGS[split].replace("n_epochs=10", f"n_epochs={args.epochs}")
        if args.item_lr_scale is not None:
            params += f",item_lr_scale={args.item_lr_scale}"
        if args.gru_variant is not None:
            params += f",gru_variant={args.gru_variant}"
        load = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        model, history = fit(train, params, seed=args.seed, progress=False)
        item_lr_scale = model.params.item_lr_scale
        train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
        res = evaluate(model, test, cutoffs=cutoffs)
        ref = REFERENCE[split]
        eps = len(train) * args.epochs / train_s
        row = {
            "split": split, "epochs": args.epochs, "threads": torch.get_num_threads(), "item_lr_scale": item_lr_scale,
            "gru_variant": model.params.gru_variant,
            "loadavg_1min_at_start": round(load, 2), "loadavg_1min_at_end": round(os.getloadavg()[0], 2),
            **{k: round(v, 4) for k, v in res.items() if k.startswith(("recall", "mrr"))},
            "n_test_transitions": res["n_events"], "eval_seconds": round(res["eval_seconds"], 3),
            "train_seconds": round(train_s, 1), "events_per_second": round(eps),
            # CPU seconds of this process: on a shared machine wall time includes waiting for a core
            "train_cpu_seconds": round(train_cpu, 1), "events_per_cpu_second": round(len(train) * args.epochs / train_cpu),
            "epoch_seconds": [round(h["seconds"], 1) for h in history],
            "reference": ref,
            "accuracy_ok": res["recall@20"] >= 0.99 * ref["recall@20"] and res["mrr@20"] >= 0.99 * ref["mrr@20"],
            "speed_ok": eps >= 1.5 * ref["events_per_second"],
        }
        if not args.no_baselines:
            row["baselines"] = baselines(train, test, cutoffs)
        if args.save:
            Path(args.save).mkdir(parents=True, exist_ok=True)
            model.meta["metrics"] = {k: v for k, v in res.items() if k.startswith(("recall", "mrr"))}
            model.save(Path(args.save) / f"gru4rec-{split}.safetensors")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
