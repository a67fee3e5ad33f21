"""Accuracy of what the shop would serve, beside GRU4Rec and V-SKNN, on the shared splits.

    .venv/bin/python bench/quality.py [--split yoochoose-week retailrocket] [--timeout 600] [--threads 1]

For each split (../shared/data/splits/<split>/{train,test}.tsv; skipped with a message when
absent): GRU4Rec with the split's published settings (spec table), V-SKNN with its defaults, and
``tuning.select`` with ``--timeout`` seconds (every choice on validation days cut from train.tsv;
the winner retrained on all of train.tsv; test.tsv scored once). Prints one JSON line per split
(figures, wall times, load average), then the table with the issue's targets and pass/fail.
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

import torch  # noqa: E402

from recommendations.gru4rec.baselines import SessionKNN, evaluate_baseline  # noqa: E402
from recommendations.gru4rec.evaluation import evaluate  # noqa: E402
from recommendations.gru4rec.formats import read_events  # noqa: E402
from recommendations.gru4rec.trainer import fit  # noqa: E402
from recommendations.gru4rec.tuning import PUBLISHED, select  # noqa: E402

SPLITS = ROOT.parent / "shared" / "data" / "splits"
SETTINGS = {"yoochoose-week": PUBLISHED["rsc15"], "retailrocket": PUBLISHED["retailrocket"]}
# issue #16: the served model's Recall@20 and MRR@20 must each reach these on the test day
TARGETS = {"yoochoose-week": (0.7058, 0.3704), "retailrocket": (0.545, 0.241)}


def _r(m: dict) -> dict:
    return {"recall@20": round(float(m["recall@20"]), 4), "mrr@20": round(float(m["mrr@20"]), 4)}


def run_split(split: str, timeout: float, seed: int, valid_days: float, baselines: bool,
              splits: Path = SPLITS) -> dict | None:
    folder = splits / split
    if not (folder / "train.tsv").is_file() or not (folder / "test.tsv").is_file():
        print(f"skipped {split}: {folder}/train.tsv or test.tsv is absent (the splits live outside the repository)",
              file=sys.stderr)
        return None
    train, test = read_events(folder / "train.tsv"), read_events(folder / "test.tsv")
    row: dict = {"split": split, "threads": torch.get_num_threads(), "load_at_start": round(os.getloadavg()[0], 2)}
    if baselines:
        t0 = time.perf_counter()
        model, _ = fit(train, SETTINGS[split], seed=seed, progress=False, log=lambda m: None)
        row["gru4rec"] = {**_r(evaluate(model, test)), "seconds": round(time.perf_counter() - t0, 1)}
        t0 = time.perf_counter()
        knn = SessionKNN().fit(train)
        row["vsknn"] = {**_r(evaluate_baseline(knn, test)), "seconds": round(time.perf_counter() - t0, 1)}
    t0 = time.perf_counter()
    out = select(train, test, timeout=timeout, seed=seed, valid_days=valid_days, progress=False,
                 log=lambda m: print(f"[{split}] {m}", file=sys.stderr, flush=True))
    out.pop("model")
    row["served"] = {"kind": out["kind"], **_r(out["test"]), "params": out["params"],
                     "validation": _r(out["validation"]), "validation_by_kind": out["validation_by_kind"],
                     "trials": out["trials"], "pruned": out["pruned"], "seconds": out["seconds"],
                     "wall_seconds": round(time.perf_counter() - t0, 1)}
    r_min, m_min = TARGETS[split]
    row["targets"] = {"recall@20": r_min, "mrr@20": m_min}
    row["pass"] = row["served"]["recall@20"] >= r_min and row["served"]["mrr@20"] >= m_min
    row["load_at_end"] = round(os.getloadavg()[0], 2)
    return row


def table(rows: list[dict]) -> str:
    def cell(d):
        return f"{d['recall@20']:.4f} / {d['mrr@20']:.4f}" if d else "-"

    lines = ["| split | GRU4Rec (defaults) | V-SKNN | served (select: kind) | target | pass |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        s = r["served"]
        lines.append(f"| {r['split']} | {cell(r.get('gru4rec'))} | {cell(r.get('vsknn'))} | "
                     f"{cell(s)} ({s['kind']}) | >= {r['targets']['recall@20']} / {r['targets']['mrr@20']} | "
                     f"{'pass' if r['pass'] else 'FAIL'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--timeout", type=float, default=600.0, help="select's search budget in seconds")
    ap.add_argument("--valid-days", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-baselines", action="store_true", help="only the served column")
    ap.add_argument("--data", type=Path, default=SPLITS, help="folder of the <split>/{train,test}.tsv folders")
    args = ap.parse_args()
    if not args.timeout > 0:
        ap.error(f"--timeout must be > 0, got {args.timeout:g}")
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for split in args.split:
        row = run_split(split, args.timeout, args.seed, args.valid_days, not args.no_baselines, args.data)
        if row is not None:
            print(json.dumps(row), flush=True)
            rows.append(row)
    if rows:
        print(table(rows), flush=True)


if __name__ == "__main__":
    main()
