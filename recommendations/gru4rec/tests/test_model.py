"""Serving interface, ranking ties, checkpoints (round trip and refusals)."""
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from recommendations.gru4rec import CheckpointError, GRU4Rec
from recommendations.gru4rec.evaluation import evaluate
from recommendations.gru4rec.metrics import RankMetrics, target_ranks
from recommendations.gru4rec.params import parse_params
from recommendations.gru4rec.trainer import fit

from .conftest import events, rule_sessions


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    m, _ = fit(events(rule_sessions(80, seed=3)), "layers=8/6,batch_size=4,n_sample=3,n_epochs=1",
               seed=0, progress=False, log=lambda s: None)
    return m


def test_conservative_standard_median_ranks_with_ties():
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.5, 0.1]])
    target = torch.tensor([0])
    assert target_ranks(scores, target, "conservative").item() == 4  # ties count against the model
    assert target_ranks(scores, target, "standard").item() == 2
    assert target_ranks(scores, target, "median").item() == 3
    m = RankMetrics((1, 5))
    m.add(torch.tensor([1.0, 4.0, 7.0]))
    r = m.result()
    assert r["recall@1"] == pytest.approx(1 / 3) and r["recall@5"] == pytest.approx(2 / 3)
    assert r["mrr@5"] == pytest.approx((1 + 0.25) / 3)


def test_untrained_constant_scores_rank_last_conservatively():
    m = GRU4Rec(parse_params("layers=4"), list("abcd"))
    m.output.zero_()  # every item scores 0: conservative rank = n_items
    res = evaluate(m, events([list("abcd")]), cutoffs=(1, 4), ties="conservative")
    assert res["recall@1"] == 0.0 and res["recall@4"] == 1.0 and res["mrr@4"] == 0.25
    assert evaluate(m, events([list("abcd")]), cutoffs=(1,), ties="standard")["recall@1"] == 1.0


def test_recommend_skips_unknown_masks_seen_and_topk(model):
    rec = model.recommend(["zz", "a", "b", "yy"], k=3)
    assert rec.used == ["a", "b"] and rec.skipped == ["zz", "yy"]
    assert len(rec.item_ids) == 3 and not {"a", "b"} & set(rec.item_ids)
    assert rec.scores == sorted(rec.scores, reverse=True)
    full = model.score_sessions([[model.item_index["a"], model.item_index["b"]]])[0]
    best = [model.item_ids[i] for i in torch.argsort(full, descending=True).tolist() if model.item_ids[i] not in "ab"]
    assert rec.item_ids == best[:3]
    empty = model.recommend(["nope"], k=3)
    assert empty.item_ids == [] and empty.skipped == ["nope"] and empty.used == []
    assert len(model.recommend(["a"], k=100, exclude_seen=False).item_ids) == model.n_items


def test_batched_sessions_equal_single_sessions_and_stepwise(model):
    sessions = [[0, 1, 2], [3], [4, 5, 0, 1, 2], []]
    batch = model.score_sessions(sessions)
    for i, s in enumerate(sessions):
        assert torch.allclose(batch[i], model.score_sessions([s])[0], atol=1e-5)
    # the same as stepping the cell one item at a time
    with torch.inference_mode():
        h = model.zero_hidden(1)
        for item in sessions[2]:
            h = model.step(torch.tensor([item]), h)
        assert torch.allclose(model.scores(h[-1])[0], batch[2], atol=1e-5)
    assert model.final_hidden(sessions).shape == (4, 6)
    wy, by = model.output_vectors()
    assert wy.shape == (model.n_items, 6) and by.shape == (model.n_items,)
    h = model.final_hidden([sessions[0]]).numpy()
    np.testing.assert_allclose(h @ wy.T + by, batch[:1].numpy(), atol=1e-5)
    assert model.item_embeddings().shape == (model.n_items, 6)


def test_checkpoint_round_trip_identical_scores(model, tmp_path):
    model.meta["metrics"] = {"recall@20": 0.5}
    path = tmp_path / "m.safetensors"
    model.save(path)
    loaded = GRU4Rec.load(path)
    assert loaded.item_ids == model.item_ids and loaded.params == model.params
    assert loaded.meta["metrics"] == {"recall@20": 0.5} and loaded.meta["train_range"]["n_events"] > 0
    sessions = [[0, 1, 2], [5, 4]]
    assert torch.equal(loaded.score_sessions(sessions), model.score_sessions(sessions))
    assert loaded.recommend(["a", "c"]) == model.recommend(["a", "c"])
    # the file is safetensors: tensors + JSON header, nothing pickled
    raw = path.read_bytes()
    header = json.loads(raw[8 : 8 + struct.unpack("<Q", raw[:8])[0]])
    assert json.loads(header["__metadata__"]["gru4rec"])["format_version"] == 2


def test_truncated_corrupt_and_foreign_files_are_refused(model, tmp_path):
    path = tmp_path / "m.safetensors"
    model.save(path)
    raw = path.read_bytes()
    cases = {
        "truncated": raw[: len(raw) // 2],
        "tiny": raw[:5],
        "empty": b"",
        "flipped": raw[:-10] + bytes([raw[-10] ^ 0xFF]) + raw[-9:],
        "garbage": b"\x00" * 100,
        "pickle": b"\x80\x04\x95" + b"x" * 50,
    }
    for name, data in cases.items():
        bad = tmp_path / f"{name}.safetensors"
        bad.write_bytes(data)
        with pytest.raises(CheckpointError):
            GRU4Rec.load(bad)
    with pytest.raises(CheckpointError, match="no such"):
        GRU4Rec.load(tmp_path / "missing.safetensors")


def _rewrite(path, out, edit_meta=None, edit_tensors=None):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["gru4rec"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if edit_meta:
        edit_meta(meta)
    if edit_tensors:
        edit_tensors(tensors, meta)
    save_file(tensors, str(out), metadata={"gru4rec": json.dumps(meta)})


def test_mismatched_version_and_shapes_are_refused(model, tmp_path):
    from recommendations.gru4rec.checkpoint import _digest

    path = tmp_path / "m.safetensors"
    model.save(path)
    _rewrite(path, tmp_path / "v1.safetensors", edit_meta=lambda m: m.update(format_version=1))
    with pytest.raises(CheckpointError, match="version"):
        GRU4Rec.load(tmp_path / "v1.safetensors")

    def more_layers(meta):
        meta["params"]["layers"] = [8, 7]
    _rewrite(path, tmp_path / "layers.safetensors", edit_meta=more_layers)
    with pytest.raises(CheckpointError, match="do not match"):
        GRU4Rec.load(tmp_path / "layers.safetensors")

    def fewer_items(meta):
        meta["item_ids"] = meta["item_ids"][:-1]
    _rewrite(path, tmp_path / "items.safetensors", edit_meta=fewer_items)
    with pytest.raises(CheckpointError):
        GRU4Rec.load(tmp_path / "items.safetensors")

    def bigger_output(tensors, meta):  # self-consistent file whose weights don't fit the params
        tensors["output"] = torch.zeros(tensors["output"].shape[0], 3)
        meta["shapes"]["output"] = list(tensors["output"].shape)
        meta["sha256"] = _digest(tensors)
    _rewrite(path, tmp_path / "shape.safetensors", edit_tensors=bigger_output)
    with pytest.raises(CheckpointError, match="do not match"):
        GRU4Rec.load(tmp_path / "shape.safetensors")


@pytest.mark.parametrize("spec", ["constrained_embedding=False,embedding=5", "constrained_embedding=False",
                                  "gru_variant=reference", "gru_variant=classic"])
def test_other_input_modes_round_trip(spec, tmp_path):
    m, _ = fit(events(rule_sessions(30)), spec + ",layers=6,batch_size=4,n_sample=2,n_epochs=1",
               progress=False, log=lambda s: None)
    m.save(tmp_path / "m.safetensors")
    loaded = GRU4Rec.load(tmp_path / "m.safetensors")
    assert torch.equal(loaded.score_sessions([[0, 1]]), m.score_sessions([[0, 1]]))
    assert loaded.item_embeddings().shape[0] == m.n_items
    assert loaded.params == m.params
    if m.params.gru_variant == "reference":  # the trained hidden bias is saved and used
        assert float(m.dense["gru.0.b_hh"][12:].abs().sum()) > 0


@pytest.mark.parametrize("spec", ["layers=6", "layers=5/4,constrained_embedding=False,embedding=3",
                                  "layers=4,constrained_embedding=False,embedding=0",
                                  "layers=5/4,gru_variant=reference"])
def test_single_session_fast_path_matches_batched_scores(spec):
    from recommendations.gru4rec.params import parse_params

    m = GRU4Rec(parse_params(spec), [f"i{j}" for j in range(30)], seed=4)
    with torch.no_grad():
        for t in m.dense.values():
            t.add_(torch.randn(t.shape, generator=torch.Generator().manual_seed(1)) * 0.3)
    idx = [3, 7, 3, 12, 0]
    assert torch.allclose(m._scores_one_cpu(idx), m.score_sessions([idx])[0], atol=1e-5)
    rec = m.recommend([f"i{j}" for j in idx], k=5)
    expected = m.score_sessions([idx])[0].clone()
    expected[idx] = -torch.inf
    assert rec.item_ids == [f"i{j}" for j in torch.topk(expected, 5).indices.tolist()]


@pytest.mark.parametrize("spec", ["layers=6", "layers=5/4,constrained_embedding=False,embedding=3",
                                  "layers=4,constrained_embedding=False,embedding=0",
                                  "layers=5/4,gru_variant=reference"])
def test_a_growing_session_takes_one_gru_step_and_the_same_state(spec, monkeypatch):
    """Serving keeps the state after each session asked: the same session plus one item is one
    step from it, the same session again no work, and either is bit for bit the state computed
    from the first item (every path runs the same one-item step), so an answer never depends on
    what the process was asked before."""
    from recommendations.gru4rec.params import parse_params

    m = GRU4Rec(parse_params(spec), [f"i{j}" for j in range(30)], seed=4)
    with torch.no_grad():
        for t in m.dense.values():
            t.add_(torch.randn(t.shape, generator=torch.Generator().manual_seed(1)) * 0.3)
    steps = []
    step = m._step_cpu
    monkeypatch.setattr(m, "_step_cpu", lambda *a: steps.append(a[2]) or step(*a))
    session = [3, 7, 3, 12, 0, 29, 5]
    grown = [m._hidden_one_cpu(session[: n + 1]).copy() for n in range(len(session))]
    assert steps == session  # one step per request as the session grows
    steps.clear()
    assert np.array_equal(m._hidden_one_cpu(session), grown[-1]) and steps == []  # asked again: no work
    for n in range(len(session)):  # each prefix from the start (nothing kept): the same bits
        m._serving().states.clear()
        assert np.array_equal(m._hidden_one_cpu(session[: n + 1]), grown[n]), n
    assert len(steps) == sum(range(1, len(session) + 1))
    torch.testing.assert_close(m._scores_one_cpu(session), m.score_sessions([session])[0], atol=1e-5, rtol=0)
    with torch.no_grad():  # new weights: the kept states go with the old serving cache
        m.dense["gru.0.b_ih"].add_(0.5)
    assert not np.allclose(m._hidden_one_cpu(session), grown[-1])
    torch.testing.assert_close(m._scores_one_cpu(session), m.score_sessions([session])[0], atol=1e-5, rtol=0)


def test_serving_cache_follows_weight_changes():
    from recommendations.gru4rec.params import parse_params
    from recommendations.gru4rec.trainer import Trainer

    m = GRU4Rec(parse_params("layers=4,n_sample=3,batch_size=2"), [f"i{j}" for j in range(10)], seed=0)
    before = m._scores_one_cpu([1, 2]).clone()
    with torch.no_grad():
        m.output[:, -1] += 1.0  # in place
    assert torch.allclose(m._scores_one_cpu([1, 2]), before + 1.0, atol=1e-5)
    tr = Trainer(m, np.ones(10), seed=0)  # the trainer writes rows through numpy views
    with torch.no_grad():
        tr.step(torch.tensor([1, 2]), torch.tensor([3, 4]), torch.ones(2, 1), m.zero_hidden(2))
    assert torch.allclose(m._scores_one_cpu([1, 2]), m.score_sessions([[1, 2]])[0], atol=1e-5)


# ------------------------------------------------------------------ int8 candidate stage (serving)
def cluster_sessions(n_items: int, n_sessions: int, seed: int = 0) -> list[list[str]]:
    """Sessions that walk forward inside blocks of 20 items: a structure a model can learn."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_sessions):
        block = int(rng.integers(n_items // 20)) * 20
        start, n = int(rng.integers(20)), int(rng.integers(2, 8))
        out.append([f"i{block + (start + k) % 20}" for k in range(n)])
    return out


@pytest.fixture(scope="module")
def model_600():
    torch.set_num_threads(1)
    m, _ = fit(events(cluster_sessions(600, 3000)), "layers=32,batch_size=32,n_sample=64,n_epochs=3,loss=cross-entropy",
               seed=0, progress=False, log=lambda s: None)
    return m


def _exact_top(m, idx, n, exclude=None, mask=None):
    scores = m._scores_one_cpu(idx)
    if mask is not None:
        scores = scores + mask
    if exclude:
        scores[exclude] = -torch.inf
    top = torch.topk(scores, n)
    return top.indices.tolist(), top.values.tolist(), scores


def _same_ranking(got, want, scores):
    """Equal, except where tied scores (within fp32 re-scoring noise) swap places."""
    return got == want or np.allclose(scores[got].numpy(), scores[want].numpy(), rtol=1e-6, atol=1e-6)


def serving_requests(m, trials: int = 150, seed: int = 1):
    """Random one-session requests (item indices, n, exclude or None, mask or None): sessions of 1
    to 10 items, n up to 29, every second one excluding its items, every third masking 60 items."""
    rng = np.random.default_rng(seed)
    mask = torch.zeros(m.n_items)
    mask[torch.from_numpy(rng.choice(m.n_items, 60, replace=False))] = -torch.inf
    for trial in range(trials):
        idx = rng.choice(m.n_items, int(rng.integers(1, 11))).tolist()
        yield idx, int(rng.integers(1, 30)), idx if trial % 2 else None, mask if trial % 3 == 0 else None


def _force_int8(m, monkeypatch):
    """The int8 stage with torch's kernel for a small model, whatever its speed on this machine
    (600 items: fp32 is faster); the native kernel, where built, has its own tests (test_native.py)."""
    monkeypatch.setattr(m, "SERVE_INT8_MIN_ITEMS", 0)
    monkeypatch.setattr(m, "SERVE_INT8_TIMED", False)
    monkeypatch.setenv("GRU4REC_NATIVE", "0")


def test_int8_stage_is_used_only_where_it_is_faster_than_fp32(model_600, monkeypatch):
    """Timed when the serving cache is built: a slow kernel (as oneDNN's AMX dispatch was, at twice
    the fp32 cost) leaves fp32 scoring; a fast one is used; the answer is the same either way."""
    from recommendations.gru4rec import candidates

    m = model_600
    monkeypatch.setattr(m, "SERVE_INT8_MIN_ITEMS", 0)
    monkeypatch.setenv("GRU4REC_NATIVE", "0")  # torch's kernel only (test_native.py: the three-way choice)
    want = m.top_items([5, 6, 7], 8)
    real_kernel, real_scores = candidates._kernel(), m._scores_of

    def slow_kernel(a, b):
        time.sleep(0.003)
        return real_kernel(a, b)

    def slow_scores(h):
        time.sleep(0.003)
        return real_scores(h)

    monkeypatch.setattr(candidates, "_kernel", lambda: slow_kernel)
    m._serve_cache = None
    assert not m.serving_prepare()
    timings = m._serving().timings
    assert timings["int8_torch_ms"] > 3.0 > timings["fp32_ms"] and m._serving().path == "fp32"
    assert m.top_items([5, 6, 7], 8) == want
    monkeypatch.setattr(candidates, "_kernel", lambda: real_kernel)
    monkeypatch.setattr(m, "_scores_of", slow_scores)
    m._serve_cache = None
    assert m.serving_prepare()  # now fp32 is the slow one
    assert m._serving().timings["fp32_ms"] > 3.0 > m._serving().timings["int8_torch_ms"]
    assert m._serving().path == "int8 torch"
    assert m.top_items([5, 6, 7], 8)[0] == want[0]
    monkeypatch.setattr(m, "SERVE_INT8_TIMED", False)
    monkeypatch.setattr(candidates, "_kernel", lambda: slow_kernel)
    m._serve_cache = None
    assert m.serving_prepare() and m._serving().timings == {}  # untimed: used when it passes its self-check
    monkeypatch.undo()
    m._serve_cache = None


def test_engine_caps_onednn_below_amx_unless_the_operator_chose(tmp_path):
    """oneDNN's AMX int8 kernel re-packs the weights on every call (2x the fp32 cost, 4x the
    AVX512-VNNI kernel): the engine caps oneDNN's ISA on import; an operator's setting wins."""
    code = "import os, recommendations.gru4rec; print(os.environ['ONEDNN_MAX_CPU_ISA'])"
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    root = str(Path(__file__).resolve().parents[3])
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "AVX512_CORE_BF16"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "ONEDNN_MAX_CPU_ISA": "AVX2"}, cwd=root,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "AVX2"


def test_int8_candidates_give_the_exact_fp32_top_n(model_600, monkeypatch):
    m = model_600
    _force_int8(m, monkeypatch)
    m._serve_cache = None
    assert m.serving_prepare() and m.n_items == 600
    scorer = m._serving().scorer
    assert scorer.q8.dtype == torch.int8 and scorer.k % 4 == 0 and scorer.q8.shape[0] % 64 == 0
    answered = 0
    for trial, (idx, n, exclude, use_mask) in enumerate(serving_requests(m)):
        h = m._hidden_one_cpu(idx)
        answered += scorer.top(m.output, h, n, exclude, use_mask) is not None
        got, values = m.top_items(idx, n, exclude=exclude, mask=use_mask)
        want, want_values, scores = _exact_top(m, idx, n, exclude, use_mask)
        assert _same_ranking(got, want, scores), trial
        np.testing.assert_allclose(values, want_values, rtol=1e-5, atol=1e-6)
        if use_mask is not None:
            assert not set(got) & set(torch.nonzero(use_mask).view(-1).tolist())
    assert answered == 150  # the candidate stage answered every time (no fp32 fallback)


def test_int8_error_bound_holds_for_every_item(model_600):
    from recommendations.gru4rec.candidates import Int8Scorer

    scorer = Int8Scorer(model_600.output)
    assert scorer.ok
    n = model_600.n_items
    gen = torch.Generator().manual_seed(3)
    for trial in range(40):
        h = (torch.rand(scorer.hidden, generator=gen) * 2 - 1).numpy()
        if trial % 4 == 1:
            h[: len(h) // 2] *= 1e-3  # a state with a few large and many tiny entries
        score, c = scorer._approx(h)
        exact = model_600._scores_of(h).numpy()
        err = np.abs(exact - score[:n])
        bound = scorer.scale[:n].numpy() * c
        assert (err <= bound + 1e-6).all()
        assert err.max() > 0  # it is an approximation: the re-scoring is what makes it exact
        below = score[:n] < exact.max()
        assert (err[below] <= scorer._margin(c, float(exact.max()))).all()


def test_recommend_through_int8_equals_fp32(model_600, monkeypatch):
    m = model_600
    items = ["i41", "i42", "i43"]
    fp32 = m.recommend(items, k=10)
    _force_int8(m, monkeypatch)
    m._serve_cache = None
    assert m.serving_prepare()
    int8 = m.recommend(items, k=10)
    assert int8.item_ids == fp32.item_ids and not set(items) & set(int8.item_ids)
    np.testing.assert_allclose(int8.scores, fp32.scores, rtol=1e-5)
    assert int8.item_ids[0] == "i44"  # the next item of the walk: a trained model, not noise


def test_int8_stage_falls_back_to_fp32_when_it_cannot_answer(model_600, monkeypatch):
    from recommendations.gru4rec import candidates

    m = model_600
    _force_int8(m, monkeypatch)
    idx = [5, 6]
    want, _, _ = _exact_top(m, idx, 8)
    # fewer rankable items than asked: only those come back, best first
    mask = torch.full((m.n_items,), -torch.inf)
    mask[[1, 2, 3]] = 0.0
    got, values = m.top_items(idx, 8, mask=mask)
    assert sorted(got) == [1, 2, 3] and values == sorted(values, reverse=True)
    # the kernel missing (another torch build) or wrong: the self-check refuses it, fp32 answers
    for kernel in (lambda: None, lambda: (lambda a, b: torch.zeros(1, b.shape[1], dtype=torch.int32)),
                   lambda: (lambda a, b: torch._int_mm(a, b).clamp(-(2**15), 2**15 - 1))):  # a saturating kernel
        monkeypatch.setattr(candidates, "_kernel", kernel)
        m._serve_cache = None
        assert not m.serving_prepare()
        assert m.top_items(idx, 8)[0] == want
    monkeypatch.undo()
    m._serve_cache = None


def test_int8_cache_follows_weight_changes(model_600, monkeypatch):
    m = model_600
    _force_int8(m, monkeypatch)
    m._serve_cache = None
    before = m._serving().scorer
    saved = m.output.clone()
    try:
        with torch.no_grad():
            m.output[7, -1] += 100.0  # item 7 now wins everywhere
        assert m._serving().scorer is not before
        assert m.top_items([1, 2], 1)[0] == [7]
    finally:
        with torch.no_grad():
            m.output.copy_(saved)
        m._serve_cache = None
