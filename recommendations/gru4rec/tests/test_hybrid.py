"""The GRU4Rec + V-SKNN hybrid: fusion arithmetic, serving = evaluation, the weight fit, files."""
import gc
import json
import math
import weakref

import numpy as np
import pytest
import torch

from recommendations.gru4rec.baselines import SessionKNN, evaluate_baseline
from recommendations.gru4rec.checkpoint import CheckpointError
from recommendations.gru4rec.evaluation import evaluate
from recommendations.gru4rec.hybrid import (
    Hybrid,
    _batches,
    _Lists,
    _test_sessions,
    evaluate_hybrid,
    fit_hybrid,
    fusion_params,
    hybrid_weight_fit,
    list_parts,
    row_parts,
)
from recommendations.gru4rec.metrics import objective
from recommendations.gru4rec.trainer import fit

from .conftest import events
from .logs import last_json

PARAMS = "loss=cross-entropy,layers=16,batch_size=8,n_sample=0,learning_rate=0.1,momentum=0.1,n_epochs=3"


def noisy_sessions(n, seed, letters="abcdefghij"):
    """Items a-j, mostly the next letter, sometimes a random one: both models rank many items."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        cur = int(rng.integers(len(letters)))
        s = [letters[cur]]
        for _ in range(int(rng.integers(1, 6))):
            cur = (cur + 1) % len(letters) if rng.random() < 0.7 else int(rng.integers(len(letters)))
            s.append(letters[cur])
        out.append(s)
    return out


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    train = events(noisy_sessions(300, seed=0))
    gru, _ = fit(train, PARAMS, progress=False, seed=0)
    knn = SessionKNN(k=50, sample_size=100).fit(train)
    return gru, knn, events(noisy_sessions(60, seed=1))


# ------------------------------------------------------------------------------ fusion arithmetic
def test_objective_is_the_geometric_mean_of_recall_and_mrr_at_20():
    assert objective({"recall@20": 0.64, "mrr@20": 0.25}) == pytest.approx(0.4)
    assert objective({"recall@20": 0.9, "mrr@20": 0.0}) == 0.0
    with pytest.raises(KeyError):
        objective({"recall@10": 0.5})


def test_rrf_parts_share_ranks_on_ties_and_stop_at_depth():
    p = fusion_params("rrf", c=1, depth=3)
    vals = torch.tensor([[5.0, 3.0, 3.0, 1.0]])
    idxs = torch.tensor([[7, 2, 4, 9]])
    rows, items, parts = list_parts(vals, idxs, "rrf", p, positive_only=False)
    # lo = the 4th score (1.0): items above it listed; ranks 1, 2, 2 -> (c+1)/(c+rank)
    assert items.tolist() == [7, 2, 4] and rows.tolist() == [0, 0, 0]
    assert parts.tolist() == [1.0, 2.0 / 3.0, 2.0 / 3.0]
    # a tie at the (depth+1)-th score is outside the list
    vals = torch.tensor([[5.0, 3.0, 1.0, 1.0]])
    _, items, parts = list_parts(vals, idxs, "rrf", p, positive_only=False)
    assert items.tolist() == [7, 2] and parts.tolist() == [1.0, 2.0 / 3.0]


def test_minmax_parts_and_short_lists():
    p = fusion_params("minmax", depth=2)
    _, items, parts = list_parts(torch.tensor([[4.0, 2.0, 0.0]]), torch.tensor([[1, 2, 3]]), "minmax", p, False)
    assert items.tolist() == [1, 2] and parts.tolist() == [1.0, 0.5]  # (s - 0) / (4 - 0)
    # fewer than depth + 1 candidates: lo = lowest - (best - lowest) / depth = 2 - 1 = 1
    _, items, parts = list_parts(torch.tensor([[4.0, 2.0, -math.inf]]), torch.tensor([[1, 2, 3]]), "minmax", p, False)
    assert items.tolist() == [1, 2] and parts.tolist() == [1.0, 1.0 / 3.0]
    # V-SKNN: only positive scores are listed and lo is at least 0
    _, items, parts = list_parts(torch.tensor([[3.0, 0.0, 0.0]]), torch.tensor([[5, 6, 7]]), "minmax", p, True)
    assert items.tolist() == [5] and parts.tolist() == [1.0]


@pytest.mark.parametrize("fusion", ["rrf", "minmax"])
@pytest.mark.parametrize("positive_only", [False, True])
def test_the_serving_twin_computes_the_same_parts(fusion, positive_only):
    rng = np.random.default_rng(0)
    p = fusion_params(fusion, depth=5)
    for trial in range(200):
        t = int(rng.integers(1, 7))  # up to depth + 1 scores; some rows short, with ties and zeros
        vals = np.sort(rng.integers(-2, 5, size=t).astype(np.float64))[::-1].copy()
        if trial % 3 == 0:
            vals[int(rng.integers(t)):] = -math.inf
        vals = np.sort(vals)[::-1].copy()
        idxs = rng.permutation(50)[:t]
        _, items, parts = list_parts(torch.from_numpy(vals).view(1, -1), torch.from_numpy(idxs).view(1, -1), fusion, p,
                                     positive_only)
        r_items, r_parts = row_parts(vals, idxs, fusion, p, positive_only)
        assert r_items.tolist() == items.tolist()
        assert r_parts.tolist() == parts.tolist()


def test_fusion_params_are_validated():
    assert fusion_params("rrf") == {"depth": 100, "c": 60.0}
    for bad in [dict(fusion="borda"), dict(fusion="rrf", c=-1), dict(fusion="rrf", depth=0),
                dict(fusion="minmax", c=5), dict(fusion="rrf", depth="x")]:
        with pytest.raises(ValueError):
            fusion_params(**bad)


# ------------------------------------------------------------------------------ serving
def test_weight_0_and_1_reproduce_each_model(models):
    gru, knn, _ = models
    idx_h = [0, 3, 1]
    h0 = Hybrid(gru, knn, 0.0)
    pos, _ = h0.top_items(idx_h, 5)
    assert pos == gru.top_items(idx_h, 5)[0]
    h1 = Hybrid(gru, knn, 1.0, "minmax")
    k_idx = [int(h1.h2k[i]) for i in idx_h]
    pos, vals = h1.top_items(idx_h, 10)
    kpos, kvals = knn.top_items(k_idx, 10)
    # same items, same order of scores (equal kNN scores may come back in another order)
    assert sorted(pos) == sorted(h1.k2h[kpos].tolist())
    # fewer than depth + 1 voted items: lo = max(0, lowest - (best - lowest) / depth)
    all_k = sorted((v for v in knn.score_sessions([k_idx])[0] if v > 0), reverse=True)
    lo = max(0.0, all_k[-1] - (all_k[0] - all_k[-1]) / 100)
    assert vals == pytest.approx([(v - lo) / (kvals[0] - lo) for v in kvals])


def test_fused_scores_are_the_weighted_sum_of_independently_computed_parts(models):
    gru, knn, _ = models
    h = Hybrid(gru, knn, 0.3, "rrf", c=2, depth=4)
    idx = [2, 5]
    g_pos, g_val = gru.top_items(idx, gru.n_items)
    k_scores = knn.score_sessions([[int(h.h2k[i]) for i in idx]])[0]

    def rrf(scores):  # by hand: items above the 5th score, rank = 1 + #higher, (c+1)/(c+rank)
        s = sorted(scores.values(), reverse=True)
        lo = s[4] if len(s) > 4 else -math.inf
        return {i: 3.0 / (2.0 + 1 + sum(x > v for x in s)) for i, v in scores.items() if v > lo}

    g = rrf(dict(zip(g_pos, g_val)))
    k = rrf({int(h.k2h[j]): float(v) for j, v in enumerate(k_scores) if v > 0})
    expected = {i: 0.3 * k.get(i, 0.0) + 0.7 * g.get(i, 0.0) for i in set(g) | set(k)}
    pos, vals = h.top_items(idx, 20)
    assert set(pos) == set(expected)
    assert vals == pytest.approx([expected[i] for i in pos])
    assert vals == sorted(vals, reverse=True)
    shares = h.contributions(idx, pos)
    for i, sh in zip(pos, shares):
        assert sh["gru4rec"] + sh["vsknn"] == pytest.approx(1.0)
        assert sh["vsknn"] == pytest.approx(0.3 * k.get(i, 0.0) / expected[i])


def test_exclude_and_mask_never_come_back_and_free_their_place(models):
    gru, knn, _ = models
    h = Hybrid(gru, knn, 0.5, "rrf", c=1, depth=3)
    idx = [0, 1]
    full, _ = h.top_items(idx, 10)
    mask = torch.zeros(h.n_items)
    mask[full[0]] = -math.inf
    got, _ = h.top_items(idx, 10, exclude=[full[1]], mask=mask)
    assert full[0] not in got and full[1] not in got
    assert len(got) >= 1 and got[0] in full[2:] + [i for i in range(h.n_items) if i not in full]
    assert h.top_items([], 5) == ([], []) and h.top_items(idx, 0) == ([], [])
    with pytest.raises(ValueError):
        h.top_items([h.n_items], 3)


def test_contributions_of_a_request_just_answered_score_neither_model_again(models, monkeypatch):
    """The shop asks top_items then contributions of the same request (every storefront block): the
    parts are kept, and recomputed whenever what they came from changes."""
    gru, knn, _ = models
    h = Hybrid(gru, knn, 0.4, "rrf", c=2, depth=4)
    calls = []
    for model, name in ((h.gru, "top_items"), (h.knn, "votes")):
        real = getattr(model, name)
        monkeypatch.setattr(model, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    fresh = Hybrid(gru, knn, 0.4, "rrf", c=2, depth=4)
    fresh._parts_memo = type(h._parts_memo)(0)  # keeps nothing: every call computes its parts

    def both(model, idx, exclude=None, mask=None):
        pos, vals = model.top_items(idx, 10, exclude=exclude, mask=mask)
        return pos, vals, model.contributions(idx, pos, exclude=exclude, mask=mask)

    def check(idx, exclude, mask, scored):
        """h answers and explains as a model that keeps nothing; scoring both models once, or never."""
        expected = both(fresh, idx, exclude, mask)
        calls.clear()
        assert both(h, idx, exclude, mask) == expected
        assert calls == (["top_items", "votes"] if scored else [])
        return expected

    mask = torch.zeros(h.n_items)
    for idx, exclude in (([2, 5], None), ([2, 5], [2, 5]), ([3], [3])):
        check(idx, exclude, mask, scored=True)
    first = check([2, 5], [2, 5], mask, scored=False)[0][0]  # asked again
    mask[first] = -math.inf  # in place: the version counter moves
    assert first not in check([2, 5], [2, 5], mask, scored=True)[0]
    check([2, 5], [2, 5], torch.zeros(h.n_items), scored=True)  # another mask
    check([2, 5], [2, 5], None, scored=True)  # no mask
    check([2, 5], [2, 5], mask, scored=True)
    h.fusion_params = fusion_params("rrf", c=5, depth=4)  # other parameters: other parts
    fresh.fusion_params = dict(h.fusion_params)
    check([2, 5], [2, 5], mask, scored=True)
    old_cache = weakref.ref(gru._serving())
    with torch.no_grad():  # a weight changed in place: GRU4Rec's serving cache is rebuilt, so are the parts
        gru.output[:, 0] += 0.5
    try:
        check([2, 5], [2, 5], mask, scored=True)
        gc.collect()
        assert old_cache() is None  # the kept parts do not hold the replaced cache alive
    finally:
        with torch.no_grad():
            gru.output[:, 0] -= 0.5


def test_catalogue_is_the_union_and_items_one_model_lacks_still_rank():
    torch.set_num_threads(1)
    base = noisy_sessions(200, seed=3)
    gru, _ = fit(events(base), PARAMS, progress=False, seed=0)
    knn = SessionKNN().fit(events(base + [["x", "y"], ["x", "y", "a"], ["y", "x"]]))
    h = Hybrid(gru, knn, 0.5)
    assert h.n_items == gru.n_items + 2 and h.item_ids[-2:] == ["x", "y"]
    x = h.item_index["x"]
    pos, _ = h.top_items([x], 5)
    assert h.item_index["y"] in pos  # only V-SKNN knows x and y
    shares = h.contributions([x], pos)
    assert shares[pos.index(h.item_index["y"])] == {"gru4rec": 0.0, "vsknn": 1.0}
    sim, _ = h.similar(x, 3)
    assert sim[0] == h.item_index["y"]
    gsim, gval = h.similar(0, 3)
    assert (gsim, gval) == gru.similar(0, 3)


# ------------------------------------------------------------------------------ evaluation
def test_evaluation_at_weight_0_and_1_equals_each_model_alone(models):
    gru, knn, test = models
    g = evaluate(gru, test)
    e0 = evaluate_hybrid(Hybrid(gru, knn, 0.0), test)
    k = evaluate_baseline(knn, test)
    e1 = evaluate_hybrid(Hybrid(gru, knn, 1.0, "minmax"), test)
    for key in ("recall@1", "recall@5", "recall@20", "mrr@5", "mrr@20"):
        assert e0[key] == pytest.approx(g[key], abs=1e-12)
        assert e1[key] == pytest.approx(k[key], abs=1e-12)
    assert e0["n_events"] == g["n_events"] and e1["n_sessions"] == k["n_sessions"]


@pytest.mark.parametrize("ties", ["standard", "median"])
def test_other_tie_rules_match_each_model_alone_too(models, ties):
    gru, knn, test = models
    g, k = evaluate(gru, test, ties=ties), evaluate_baseline(knn, test, ties=ties)
    e0 = evaluate_hybrid(Hybrid(gru, knn, 0.0), test, ties=ties)
    e1 = evaluate_hybrid(Hybrid(gru, knn, 1.0), test, ties=ties)
    for key in ("recall@1", "recall@5", "recall@20", "mrr@20"):
        assert e0[key] == pytest.approx(g[key], abs=1e-12)
        assert e1[key] == pytest.approx(k[key], abs=1e-12)
    with pytest.raises(ValueError, match="ties"):
        evaluate_hybrid(Hybrid(gru, knn, 0.5), test, ties="optimistic")


@pytest.mark.parametrize("fusion, extra", [("rrf", {"c": 3}), ("minmax", {})])
def test_evaluation_ranks_like_serving(models, fusion, extra):
    """Every test transition: the target's conservative rank from top_items' fused scores (the
    serving path) equals the one evaluate_hybrid's batches give."""
    gru, knn, test = models
    h = Hybrid(gru, knn, 0.4, fusion, depth=6, **extra)
    sessions = _test_sessions(h, test)
    got = []
    for g, k, targets, has_gru in _batches(h, sessions):
        got.append(_Lists(h, g, k, targets, has_gru, fusion, h.fusion_params).ranks(h.weight))
    got = torch.cat(got).tolist()
    expected = []
    ordered = sorted(sessions, key=len)  # _batches: sessions by length, 64 at a time, step by step
    for a in range(0, len(ordered), 64):
        chunk = ordered[a : a + 64]
        for t in range(1, max(map(len, chunk))):
            for s in chunk:
                if len(s) > t:
                    pos, vals = h.top_items(s[:t].tolist(), h.n_items)
                    ft = dict(zip(pos, vals)).get(int(s[t]), 0.0)
                    expected.append(sum(v >= ft for v in vals) if ft > 0 else h.n_items)
    assert len(got) == len(expected) > 100
    assert got == expected


def test_weight_fit_picks_the_best_objective_of_its_grid(models):
    gru, knn, valid = models
    out = hybrid_weight_fit(gru, knn, valid, weights=[0.0, 0.5, 1.0], fusions=("rrf", "minmax"),
                            fusion_grid={"rrf": [{"c": 5}], "minmax": [{}]})
    assert len(out["grid"]) == 6
    best = max(out["grid"], key=lambda g: g["objective"])
    assert out["objective"] == best["objective"] and out["weight"] == best["weight"]
    assert out["fusion"] == best["fusion"] and out["fusion_params"] == best["fusion_params"]
    chosen = Hybrid(gru, knn, out["weight"], out["fusion"], **out["fusion_params"])
    again = evaluate_hybrid(chosen, valid)
    assert again["recall@20"] == pytest.approx(out["metrics"]["recall@20"])
    assert again["mrr@20"] == pytest.approx(out["metrics"]["mrr@20"])
    g0 = next(g for g in out["grid"] if g["weight"] == 0.0 and g["fusion"] == "rrf")
    assert g0["mrr@20"] == pytest.approx(evaluate(gru, valid)["mrr@20"])
    with pytest.raises(ValueError):
        hybrid_weight_fit(gru, knn, valid, weights=[1.5])


def test_fit_hybrid_chooses_on_the_cut_off_days_then_retrains_on_all():
    torch.set_num_threads(1)
    sessions = noisy_sessions(300, seed=5)
    train = events(sessions)  # sessions one minute apart: a 5-hour log, the last fifth is validation
    model, info = fit_hybrid(train, PARAMS, {"k": 20, "sample_size": 50}, weights=[0.0, 1.0], fusions=("rrf",))
    assert isinstance(model, Hybrid) and model.weight == info["weight"] and model.fusion == "rrf"
    assert model.gru.meta["train_range"]["n_events"] == len(train)  # retrained on all of it
    assert model.knn.params()["k"] == 20
    assert {g["weight"] for g in info["grid"]} == {0.0, 1.0}
    assert info["metrics"]["n_events"] > 0 and model.meta["fit"]["weight"] == info["weight"]
    with pytest.raises(ValueError):
        fit_hybrid(train, PARAMS, {"k": 5, "similarity": "nope"})


# ------------------------------------------------------------------------------ files
def test_save_load_round_trip_and_bad_folders(models, tmp_path):
    gru, knn, _ = models
    h = Hybrid(gru, knn, 0.6, "rrf", c=7, depth=5)
    h.save(tmp_path / "h")
    back = Hybrid.load(tmp_path / "h")
    assert back.params() == h.params() and back.item_ids == h.item_ids
    assert back.top_items([1, 2], 6) == h.top_items([1, 2], 6)
    assert back.serving_prepare() is False  # 10 items: no int8 stage
    with pytest.raises(CheckpointError, match="no such"):
        Hybrid.load(tmp_path / "missing")
    meta = json.loads((tmp_path / "h" / "hybrid.json").read_text())
    for change, fragment in [({"weight": 2}, "weight"), ({"fusion": "x"}, "fusion"), ({"format_version": 9}, "version"),
                             ({"fusion_params": {"c": "a"}}, "c must")]:
        (tmp_path / "h" / "hybrid.json").write_text(json.dumps({**meta, **change}))
        with pytest.raises(CheckpointError, match=fragment):
            Hybrid.load(tmp_path / "h")
    (tmp_path / "h" / "hybrid.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        Hybrid.load(tmp_path / "h")
    (tmp_path / "h" / "hybrid.json").write_text(json.dumps(meta))
    (tmp_path / "h" / "vsknn" / "meta.json").write_text("{}")
    with pytest.raises(CheckpointError, match="V-SKNN"):
        Hybrid.load(tmp_path / "h")


def test_constructor_checks_its_arguments(models):
    gru, knn, _ = models
    with pytest.raises(ValueError, match="weight"):
        Hybrid(gru, knn, -0.1)
    with pytest.raises(ValueError, match="SessionKNN"):
        Hybrid(gru, gru, 0.5)
    with pytest.raises(ValueError, match="unknown parameter"):
        Hybrid(gru, knn, 0.5, "minmax", c=3)
    h = Hybrid(gru, knn, 0.25, "minmax", depth=7)
    assert h.kind == "hybrid" and h.params()["depth"] == 7 and h.params()["vsknn"]["k"] == 50
    assert h.params()["gru4rec"] == gru.params.to_string()


# ------------------------------------------------------------------------------ command line

def test_cli_train_evaluate_inspect_a_hybrid(tmp_path, capsys):
    from recommendations.gru4rec.__main__ import main

    train, test = tmp_path / "train.tsv", tmp_path / "test.tsv"
    events(noisy_sessions(300, seed=0)).to_csv(train, sep="\t", index=False)
    events(noisy_sessions(60, seed=1)).to_csv(test, sep="\t", index=False)
    folder = tmp_path / "h"
    assert main(["train", str(train), "--model", "hybrid", "-p", PARAMS, "--knn-params", "k=50,sample_size=100",
                 "--weight", "0.4", "--fusion", "rrf", "--fusion-params", "c=3,depth=6", "--test", str(test),
                 "--save", str(folder), "-q"]) == 0
    out = last_json(capsys)
    assert out["model"] == "hybrid" and out["weight"] == 0.4 and out["fusion_params"] == {"depth": 6, "c": 3.0}
    assert out["params"]["vsknn"]["k"] == 50 and "validation" not in out and "events_per_second" not in out
    # the same numbers as the library on the same models
    h = Hybrid.load(folder)
    lib = evaluate_hybrid(h, events(noisy_sessions(60, seed=1)))
    assert out["recall@20"] == round(lib["recall@20"], 6) and out["mrr@20"] == round(lib["mrr@20"], 6)
    assert main(["evaluate", str(folder), str(test), "-m", "5", "20"]) == 0
    ev = last_json(capsys)
    assert ev["model"] == "hybrid" and ev["recall@20"] == out["recall@20"] and "mrr@5" in ev
    assert main(["inspect", str(folder)]) == 0
    info = last_json(capsys)
    assert info["model"] == "hybrid" and info["n_items"] == 10 and info["params"]["weight"] == 0.4
    assert info["metrics"]["recall@20"] == pytest.approx(lib["recall@20"])


def test_cli_hybrid_fits_the_weight_on_the_training_days(tmp_path, capsys):
    from recommendations.gru4rec.__main__ import main

    train = tmp_path / "train.tsv"
    events(noisy_sessions(300, seed=0)).to_csv(train, sep="\t", index=False)
    assert main(["train", str(train), "--model", "hybrid", "-p", PARAMS, "-q"]) == 0
    out = last_json(capsys)
    assert 0.0 <= out["weight"] <= 1.0 and out["fusion"] in ("rrf", "minmax")
    v = out["validation"]
    assert v["objective"] == pytest.approx((v["recall@20"] * v["mrr@20"]) ** 0.5, abs=1e-6)
    assert set(v["valid_gru4rec"]) == {"recall@20", "mrr@20"}


@pytest.mark.parametrize("extra, fragment", [
    (["--knn-params", "k=abc"], "k='abc'"),
    (["--knn-params", "neighbours=5"], "neighbours=5"),
    (["--knn-params", "similarity=nope"], "similarity"),
    (["--weight", "0.5"], "--weight and --fusion"),
    (["--weight", "1.5", "--fusion", "rrf"], "weight must be in [0, 1]"),
    (["--weight", "0.5", "--fusion", "minmax", "--fusion-params", "c=3"], "unknown parameter"),
])
def test_cli_bad_hybrid_options_are_clear_errors(tmp_path, capsys, extra, fragment):
    from recommendations.gru4rec.__main__ import main

    train = tmp_path / "train.tsv"
    events(noisy_sessions(30, seed=0)).to_csv(train, sep="\t", index=False)
    assert main(["train", str(train), "--model", "hybrid", "-p", "layers=4,n_epochs=1", "-q", *extra]) == 2
    assert fragment in last_json(capsys)["error"]


def test_cli_hybrid_options_need_the_hybrid_and_a_broken_folder_is_a_checkpoint_error(tmp_path, capsys):
    from recommendations.gru4rec.__main__ import main

    train = tmp_path / "train.tsv"
    events(noisy_sessions(30, seed=0)).to_csv(train, sep="\t", index=False)
    assert main(["train", str(train), "--weight", "0.5", "--fusion", "rrf", "-p", "layers=4"]) == 2
    assert "--weight applies to --model hybrid" in last_json(capsys)["error"]
    assert main(["train", str(train), "--model", "vsknn", "--knn-params", "k=7"]) == 0
    assert last_json(capsys)["model"] == "vsknn"
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "hybrid.json").write_text("{broken")
    assert main(["evaluate", str(tmp_path / "h"), str(train)]) == 2
    assert last_json(capsys)["type"] == "CheckpointError"
