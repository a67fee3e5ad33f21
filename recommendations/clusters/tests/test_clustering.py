"""Pure functions: k-means wrapper, quality figure, diversity cap."""
import numpy as np

from recommendations.clusters.clustering import (
    default_k, diversify, dominant_shares, kmeans_fit, random_baseline_share, weighted_share,
)


def test_diversify_exact_results():
    ranked = [10, 11, 12, 13, 14, 15]
    scores = [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    labels = np.full(20, -1)
    labels[[10, 11, 12]] = 0
    labels[[13, 14]] = 1
    labels[15] = 2
    assert diversify(ranked, scores, labels, k=3, cap_per_cluster=1) == ([10, 13, 15], [6.0, 3.0, 1.0])
    assert diversify(ranked, scores, labels, k=4, cap_per_cluster=2) == ([10, 11, 13, 14], [6.0, 5.0, 3.0, 2.0])
    # Not enough diversity: the skipped items fill up after the diverse ones, in rank order.
    assert diversify(ranked, scores, labels, k=5, cap_per_cluster=1) == ([10, 13, 15, 11, 12], [6.0, 3.0, 1.0, 5.0, 4.0])
    assert diversify(ranked, scores, labels, k=5, cap_per_cluster=1, fill=False) == ([10, 13, 15], [6.0, 3.0, 1.0])
    # No cap: plain top-k.
    assert diversify(ranked, scores, labels, k=2, cap_per_cluster=None) == ([10, 11], [6.0, 5.0])


def test_diversify_accepts_a_mapping():
    cluster_of = {10: 0, 11: 0, 12: 1}
    assert diversify([10, 11, 12], [3.0, 2.0, 1.0], cluster_of, k=2, cap_per_cluster=1) == ([10, 12], [3.0, 1.0])


def test_diversify_items_without_cluster_are_not_capped():
    labels = np.array([-1, -1, -1, 0, 0])
    assert diversify([0, 1, 2, 3, 4], [5, 4, 3, 2, 1], labels, k=4, cap_per_cluster=1) == ([0, 1, 2, 3], [5, 4, 3, 2])


def test_dominant_shares_and_random_baseline():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    cats = np.array([7, 7, 7, 8, 9, 9, -1, -1])
    dom, share, sizes = dominant_shares(labels, cats, 3)
    assert dom.tolist() == [7, 9, -1]
    assert share.tolist() == [0.75, 1.0, 0.0]
    assert sizes.tolist() == [4, 4, 0]
    assert weighted_share(share, sizes) == (0.75 * 4 + 1.0 * 4) / 8
    assert 0 < random_baseline_share(labels, cats, 3, seed=1) <= 1


def test_kmeans_recovers_separated_blobs():
    rng = np.random.default_rng(0)
    centres = np.eye(8, dtype=np.float32)[:4] * 5
    truth = np.repeat(np.arange(4), 50)
    x = centres[truth] + rng.normal(0, 0.1, (200, 8)).astype(np.float32)
    res = kmeans_fit(x, 4, seed=0)
    # every blob maps to one cluster and vice versa
    pairs = set(zip(truth.tolist(), res.labels.tolist()))
    assert len(pairs) == 4 and len({c for _, c in pairs}) == 4
    assert res.centroids.shape == (4, 8) and res.labels.dtype == np.int32


def test_default_k():
    assert default_k(10) == 2
    assert default_k(600) == 17
    assert default_k(1_000_000) == 707
    assert default_k(10_000_000) == 1000
