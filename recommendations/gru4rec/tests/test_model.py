"""Serving interface, ranking ties, checkpoints (round trip and refusals)."""
import json
import struct

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


@pytest.mark.parametrize("spec", ["constrained_embedding=False,embedding=5", "constrained_embedding=False"])
def test_other_input_modes_round_trip(spec, tmp_path):
    m, _ = fit(events(rule_sessions(30)), spec + ",layers=6,batch_size=4,n_sample=2,n_epochs=1",
               progress=False, log=lambda s: None)
    m.save(tmp_path / "m.safetensors")
    loaded = GRU4Rec.load(tmp_path / "m.safetensors")
    assert torch.equal(loaded.score_sessions([[0, 1]]), m.score_sessions([[0, 1]]))
    assert loaded.item_embeddings().shape[0] == m.n_items


@pytest.mark.parametrize("spec", ["layers=6", "layers=5/4,constrained_embedding=False,embedding=3",
                                  "layers=4,constrained_embedding=False,embedding=0"])
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
