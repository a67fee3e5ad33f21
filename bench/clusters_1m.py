"""Clustering a 1M-item catalogue: MiniBatchKMeans time and memory, and the quality check.

    .venv/bin/python bench/clusters_1m.py                 # 1,000,000 items, hidden 100, k = 707
    .venv/bin/python bench/clusters_1m.py --items 200000 --k 300

The embeddings are generated (recommendations/clusters/synthetic.py) with a known category per
item, so the quality figure of ``manage.py cluster_items`` (share of a cluster's items in its
dominant category, against random clusters of the same sizes) can be computed at this scale.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from recommendations.clusters import clustering, synthetic  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--k", type=int, default=None, help="clusters (default: sqrt(n/2), at most 1000)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import sklearn
    from threadpoolctl import threadpool_info

    blas = {i.get("internal_api") for i in threadpool_info()}
    print(f"machine: {os.cpu_count()} cores (shared), scikit-learn {sklearn.__version__}, BLAS {sorted(blas)}")
    t0 = time.perf_counter()
    syn = synthetic.structured_output(args.items, hidden=args.hidden, seed=args.seed)
    n_cat = int(syn.category.max()) + 1
    print(f"generated embeddings: {args.items:,} x {args.hidden} in {time.perf_counter() - t0:.1f} s "
          f"({int(syn.topic.max()) + 1} topics, {n_cat} categories)")
    k = args.k or clustering.default_k(args.items)
    res = clustering.kmeans_fit(syn.Wy, k, seed=args.seed)
    sizes = np.bincount(res.labels, minlength=k)
    print(f"MiniBatchKMeans k={k}, batch 4096, n_init 1 (k-means++ on 3 batches), max_iter 20 (early stop): {res.seconds:.1f} s "
          f"({res.n_iter} passes), inertia {res.inertia:.1f}")
    print(f"cluster sizes: min {sizes.min()}, median {int(np.median(sizes))}, max {sizes.max()}, empty {(sizes == 0).sum()}")
    t0 = time.perf_counter()
    _, share, sz = clustering.dominant_shares(res.labels, syn.category, k)
    d = clustering.weighted_share(share, sz)
    r = clustering.random_baseline_share(res.labels, syn.category, k, seed=args.seed)
    print(f"quality: {100 * d:.1f}% of items in their cluster's dominant category; random clusters of equal "
          f"sizes {100 * r:.1f}% ({time.perf_counter() - t0:.1f} s)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
