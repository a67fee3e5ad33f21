"""Experiments on the scripted shopper population (recommendations/experiments/simulation.py):
(a) the power of the A/B test for a stated effect, by visit budget, (b) the A/A false-positive rate
with daily looks, (c) the median visits to a correct decision, A/B against team-draft
interleaving, for the same effect. The last stdout line is a JSON object with every figure.

    nice .venv/bin/python bench/experiments_sim.py [--runs 200] [--aa-runs 200] \\
        [--interleaving-runs 200] [--base-ctr 0.05] [--lift 0.10] [--seed 17]

Defaults: CTR 5% against 5.5% (relative +10%), 10 recommendations per visit, shoppers' click
propensity Gamma(1) (mean 1), 1,000 visits a day with a look every day, at most 100,000 visits,
alpha 0.05, the package's default mixing tau (10% of the pooled rate; 0.025 on the interleaving win share).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recommendations.experiments.simulation import Shoppers, simulate, summary  # noqa: E402
from recommendations.experiments.stats import sample_size  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="A/B runs with a better arm")
    parser.add_argument("--aa-runs", type=int, default=200, help="A/B runs with identical arms")
    parser.add_argument("--interleaving-runs", type=int, default=200)
    parser.add_argument("--interleaving-aa-runs", type=int, default=0,
                        help="interleaving runs with identical arms (slow: every visit to max)")
    parser.add_argument("--base-ctr", type=float, default=0.05)
    parser.add_argument("--lift", type=float, default=0.10, help="relative margin of the better arm")
    parser.add_argument("--k", type=int, default=10, help="recommendations per visit")
    parser.add_argument("--propensity-shape", type=float, default=1.0,
                        help="Gamma shape of the per-visit click propensity (0: identical shoppers)")
    parser.add_argument("--overlap", type=float, default=0.0,
                        help="share of the worse arm's list the better arm also recommends")
    parser.add_argument("--visits-per-day", type=int, default=1000)
    parser.add_argument("--max-visits", type=int, default=100_000)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)
    try:
        args.shoppers = Shoppers(base_ctr=args.base_ctr, lift=args.lift, k=args.k,
                                 propensity_shape=args.propensity_shape, overlap=args.overlap)
    except ValueError as error:
        parser.error(str(error))
    for name in ("runs", "aa_runs", "interleaving_runs", "interleaving_aa_runs"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0")
    return args


def budget_power(results, better, budgets):
    """Share of runs that decided for the better arm within each visit budget (a run stops at its
    first significant look, so one batch of runs gives the whole curve)."""
    return {budget: sum(r.decision == better and r.visits <= budget for r in results) / len(results)
            for budget in budgets}


def fmt(value):
    return "never (fewer than half decided right)" if value is None else f"{value:,.0f}"


def main(argv=None):
    args = parse_args(argv)
    shoppers = args.shoppers
    options = {"visits_per_day": args.visits_per_day, "max_visits": args.max_visits,
               "alpha": args.alpha}
    figures = {"settings": {key: value for key, value in vars(args).items() if key != "shoppers"}}
    high = shoppers.base_ctr * (1 + shoppers.lift)
    print(f"Shoppers: CTR {shoppers.base_ctr:.2%} vs {high:.2%} (relative {shoppers.lift:+.0%}), "
          f"k={shoppers.k}, propensity Gamma({shoppers.propensity_shape:g}), overlap {shoppers.overlap:g}; "
          f"{args.visits_per_day:,} visits/day, a look a day, at most {args.max_visits:,} visits, "
          f"alpha {args.alpha:g}, seed {args.seed}")
    try:
        fixed = sample_size(shoppers.base_ctr, high - shoppers.base_ctr, args.alpha, 0.8)
        fixed_visits = 2 * fixed / shoppers.k
        print(f"Fixed-horizon plan (statsmodels, 80% power, impressions independent): {fixed:,} "
              f"impressions per arm = {fixed_visits:,.0f} visits in all")
        figures["fixed_horizon_visits"] = fixed_visits
    except ValueError as error:
        print(f"Fixed-horizon plan: {error}")
        fixed_visits = None

    if args.runs:
        started = time.monotonic()
        results = simulate("ab", shoppers, 1, args.runs, args.seed, **options)
        stats = summary(results, 1)
        budgets = sorted({b for b in (5_000, 10_000, 15_000, 20_000, 30_000, 50_000, args.max_visits)
                          if b <= args.max_visits})
        curve = budget_power(results, 1, budgets)
        print(f"(a) A/B power over {args.runs} runs: {stats['correct']:.1%} decide for the better "
              f"arm within {args.max_visits:,} visits, {stats['wrong']:.1%} for the worse "
              f"[{time.monotonic() - started:.0f} s]")
        print("    power by budget: " + ", ".join(f"{b:,}: {p:.1%}" for b, p in curve.items()))
        figures["ab"] = {**stats, "power_by_budget": curve}

    if args.aa_runs:
        started = time.monotonic()
        aa = summary(simulate("ab", shoppers, None, args.aa_runs, args.seed + 1, **options), None)
        print(f"(b) A/A false positives over {args.aa_runs} runs, "
              f"{args.max_visits // args.visits_per_day} daily looks each: "
              f"{aa['false_positive_rate']:.1%} declared a winner (alpha {args.alpha:g}) "
              f"[{time.monotonic() - started:.0f} s]")
        figures["aa"] = aa

    if args.interleaving_runs:
        started = time.monotonic()
        inter = summary(simulate("interleaving", shoppers, 1, args.interleaving_runs,
                                 args.seed + 2, **options), 1)
        print(f"    interleaving over {args.interleaving_runs} runs: {inter['correct']:.1%} decide "
              f"for the better arm, {inter['wrong']:.1%} for the worse "
              f"[{time.monotonic() - started:.0f} s]")
        figures["interleaving"] = inter
    if args.runs and args.interleaving_runs:
        ab_median, inter_median = figures["ab"]["median"], figures["interleaving"]["median"]
        print(f"(c) median visits to a correct decision: A/B {fmt(ab_median)} "
              f"(quartiles {fmt(figures['ab']['q25'])}-{fmt(figures['ab']['q75'])}), "
              f"interleaving {fmt(inter_median)} (quartiles {fmt(figures['interleaving']['q25'])}-"
              f"{fmt(figures['interleaving']['q75'])})"
              + (f"; A/B needs {ab_median / inter_median:.1f}x the visits"
                 if ab_median and inter_median else ""))

    if args.interleaving_aa_runs:
        started = time.monotonic()
        inter_aa = summary(simulate("interleaving", shoppers, None, args.interleaving_aa_runs,
                                    args.seed + 3, **options), None)
        print(f"    interleaving A/A false positives over {args.interleaving_aa_runs} runs: "
              f"{inter_aa['false_positive_rate']:.1%} [{time.monotonic() - started:.0f} s]")
        figures["interleaving_aa"] = inter_aa
    print(json.dumps(figures, default=str))


if __name__ == "__main__":
    main()
