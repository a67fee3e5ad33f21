"""Accuracy and speed of the baselines (Popularity, ItemKNN, V-SKNN) on the shared benchmark splits,
with the GRU4Rec evaluation protocol. The last stdout line is a JSON object with every figure.

    .venv/bin/python bench/baselines.py [--data ../shared/data] [--splits yoochoose-week,retailrocket]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recommendations.gru4rec.baselines import ItemKNN, Popularity, SessionKNN, evaluate_baseline  # noqa: E402
from recommendations.gru4rec.formats import read_events  # noqa: E402

CUTOFFS = (1, 5, 10, 20)
# Figures reported for these splits (Recall@20, MRR@20), for comparison.
REFERENCE = {("yoochoose-week", "sknn"): (0.673, 0.348), ("retailrocket", "sknn"): (0.504, 0.201)}


def models():
    return [("popularity", Popularity()), ("itemknn", ItemKNN()), ("sknn", SessionKNN())]


def recommend_ms(model, test, n=200) -> float:
    """Mean milliseconds of one ``recommend`` for test-session prefixes (up to 10 items)."""
    sessions = [g.ItemId.tolist()[:10] for _, g in test.groupby("SessionId", sort=False)][:n]
    model.recommend(sessions[0], k=10)
    t = time.perf_counter()
    for s in sessions:
        model.recommend(s, k=10)
    return (time.perf_counter() - t) / len(sessions) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--splits", default="yoochoose-week,retailrocket")
    args = ap.parse_args()
    results = {}
    for split in args.splits.split(","):
        folder = Path(args.data) / "splits" / split
        if not folder.exists():
            print(f"{split}: skipped, {folder} not found")
            continue
        train, test = read_events(folder / "train.tsv"), read_events(folder / "test.tsv")
        print(f"\n{split}: train {len(train):,} events, test {len(test):,} events")
        header = " ".join(f"{f'R@{c}':>7}" for c in CUTOFFS) + " " + " ".join(f"{f'MRR@{c}':>7}" for c in CUTOFFS)
        print(f"{'model':<11}{header} {'fit s':>7} {'eval s':>7} {'rec ms':>7}")
        for name, model in models():
            t = time.perf_counter()
            model.fit(train)
            fit_s = time.perf_counter() - t
            t = time.perf_counter()
            r = evaluate_baseline(model, test, cutoffs=CUTOFFS, ties="conservative")
            eval_s = time.perf_counter() - t
            ms = recommend_ms(model, test)
            row = {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}
            row.update(fit_s=round(fit_s, 2), eval_s=round(eval_s, 2), recommend_ms=round(ms, 2), params=model.params())
            if (split, name) in REFERENCE:
                row["reference_recall@20_mrr@20"] = REFERENCE[(split, name)]
            results[f"{split}/{name}"] = row
            cells = " ".join(f"{r[f'recall@{c}']:7.4f}" for c in CUTOFFS) + " " + " ".join(f"{r[f'mrr@{c}']:7.4f}" for c in CUTOFFS)
            print(f"{name:<11}{cells} {fit_s:7.2f} {eval_s:7.2f} {ms:7.2f}")
    print(json.dumps({"bench": "baselines", "ties": "conservative", "results": results}))


if __name__ == "__main__":
    main()
