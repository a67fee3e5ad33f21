"""ANN retrieval against exact scoring on a small generated model (no Django)."""
import numpy as np
import torch

from recommendations.clusters import retrieval, synthetic


def _setup(n=5000, hidden=32):
    syn = synthetic.structured_output(n, hidden=hidden, seed=3)
    model = synthetic.structured_gru4rec(syn)
    hidden_states = model.final_hidden(synthetic.sessions_sample(syn, 200, length=10, seed=4))
    return syn, model, hidden_states


def test_folded_inner_product_is_the_model_score():
    syn, model, h = _setup(n=500)
    x = retrieval.fold(syn.Wy, syn.By)
    q = retrieval.queries(h)
    assert x.shape == (500, 33) and q.shape == (200, 33)
    np.testing.assert_allclose(q @ x.T, model.scores(h).numpy(), rtol=1e-4, atol=1e-4)


def test_exact_topk_matches_torch_topk():
    syn, model, h = _setup(n=500)
    scores, ids = retrieval.exact_topk(syn.Wy, syn.By, h, 20)
    top = torch.topk(model.scores(h), 20)
    np.testing.assert_allclose(scores, top.values.numpy(), rtol=1e-5, atol=1e-5)
    assert retrieval.recall_at(ids, top.indices.numpy()) == 1.0


def test_ann_top20_agrees_with_exact(tmp_path):
    syn, model, h = _setup()
    params = retrieval.index_params(5000)
    assert params == {"nlist": 125, "nprobe": 16}
    index = retrieval.build_ip_index(syn.Wy, syn.By)
    exact_s, exact_i = retrieval.exact_topk(syn.Wy, syn.By, h, 20)
    ann_s, ann_i = retrieval.search(index, h, 20)
    assert retrieval.recall_at(ann_i, exact_i) >= 0.95
    # IVF-Flat scores are exact for the items it returns
    found = ann_i[0] >= 0
    np.testing.assert_allclose(ann_s[0][found], (h[0].numpy() @ syn.Wy[ann_i[0][found]].T) + syn.By[ann_i[0][found]],
                               rtol=1e-4, atol=1e-4)
    # written and read back (faiss format, no pickle): the same answers
    size = retrieval.index_write(index, tmp_path / "x.faiss")
    assert size > syn.Wy.nbytes
    again = retrieval.index_read(tmp_path / "x.faiss")
    np.testing.assert_array_equal(retrieval.search(again, h, 20)[1], ann_i)


def test_more_probes_never_lose_recall():
    syn, model, h = _setup()
    index = retrieval.build_ip_index(syn.Wy, syn.By)
    _, exact_i = retrieval.exact_topk(syn.Wy, syn.By, h, 20)
    recalls = []
    for nprobe in (1, 16, 125):
        retrieval.set_nprobe(index, nprobe)
        recalls.append(retrieval.recall_at(retrieval.search(index, h, 20)[1], exact_i))
    assert recalls == sorted(recalls) and recalls[-1] == 1.0
