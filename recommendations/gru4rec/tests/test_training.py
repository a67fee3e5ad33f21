"""Training step gradients, sampling distribution, dropout, determinism, NaN stop and learning."""
import numpy as np
import pytest
import torch

from recommendations.gru4rec.evaluation import evaluate
from recommendations.gru4rec.iterator import encode_sessions
from recommendations.gru4rec.model import GRU4Rec
from recommendations.gru4rec.params import parse_params
from recommendations.gru4rec.trainer import ADAGRAD_EPS, Trainer, TrainingDiverged, fit, item_support

from .conftest import events, rule_sessions


def test_gru_cell_reference_variant_by_hand():
    """gru_variant=reference: n = tanh(W_n x + b_in + r * (U_n h + b_hn)), the hidden bias used
    (only its candidate part), on tiny tensors against values computed by hand with math."""
    import math

    p = parse_params("layers=2,constrained_embedding=True,gru_variant=reference")
    m = GRU4Rec(p, ["a", "b", "c"], seed=1)
    with torch.no_grad():
        m.output[:, :2] = torch.tensor([[0.5, -1.0], [0.2, 0.3], [1.0, 1.0]])
        m.dense["gru.0.W_ih"].copy_(torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                                                  [-0.1, 0.0, 0.1, -0.2, 0.2, -0.3]]))
        m.dense["gru.0.W_hh"].copy_(torch.tensor([[0.3, -0.2, 0.1, 0.0, 0.7, -0.4],
                                                  [0.2, 0.1, -0.3, 0.4, 0.25, 0.6]]))
        m.dense["gru.0.b_ih"].copy_(torch.tensor([0.05, -0.05, 0.1, 0.0, 0.2, -0.1]))
        m.dense["gru.0.b_hh"].copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.3, -0.6]))
        h = torch.tensor([[0.4, -0.8]])
        ours = m.step(torch.tensor([0]), [h])[0][0].tolist()
    x, hv = [0.5, -1.0], [0.4, -0.8]
    Wi, Wh = m.dense["gru.0.W_ih"].tolist(), m.dense["gru.0.W_hh"].tolist()
    bi, bh = m.dense["gru.0.b_ih"].tolist(), m.dense["gru.0.b_hh"].tolist()
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    gx = [sum(x[d] * Wi[d][c] for d in range(2)) + bi[c] for c in range(6)]
    gh = [sum(hv[d] * Wh[d][c] for d in range(2)) for c in range(6)]
    r = [sig(gx[k] + gh[k]) for k in range(2)]
    z = [sig(gx[2 + k] + gh[2 + k]) for k in range(2)]
    n = [math.tanh(gx[4 + k] + r[k] * (gh[4 + k] + bh[4 + k])) for k in range(2)]
    by_hand = [(1 - z[k]) * n[k] + z[k] * hv[k] for k in range(2)]
    assert ours == pytest.approx(by_hand, abs=1e-6)
    # the classic cell differs on the same weights (r before U, no hidden bias)
    n_classic = [math.tanh(gx[4 + k] + sum(r[d] * hv[d] * Wh[d][4 + k] for d in range(2))) for k in range(2)]
    classic = [(1 - z[k]) * n_classic[k] + z[k] * hv[k] for k in range(2)]
    assert abs(by_hand[0] - classic[0]) > 1e-3
    # serving's numpy path and the batched path agree for this cell
    assert torch.allclose(m._scores_one_cpu([0, 2, 1]), m.score_sessions([[0, 2, 1]])[0], atol=1e-5)


def test_gru_cell_is_the_classic_gru():
    """The GRU4Rec paper's GRU: reset gate applied to h before U (candidate tanh(W x + U (r * h) + b)),
    one bias per gate (b_ih; b_hh is unused and stays zero)."""
    p = parse_params("layers=6,constrained_embedding=True")
    m = GRU4Rec(p, list("abcdefgh"), seed=1)
    with torch.no_grad():
        m.dense["gru.0.b_ih"].copy_(torch.randn(18))
        x = torch.tensor([0, 3, 5])
        h = torch.randn(3, 6)
        ours = m.step(x, [h])[0]
        e = m.output[x, :6].double()
        W, U, b = (m.dense[k].double() for k in ("gru.0.W_ih", "gru.0.W_hh", "gru.0.b_ih"))
        hd = h.double()
        r = torch.sigmoid(e @ W[:, :6] + hd @ U[:, :6] + b[:6])
        z = torch.sigmoid(e @ W[:, 6:12] + hd @ U[:, 6:12] + b[6:12])
        n = torch.tanh(e @ W[:, 12:] + (r * hd) @ U[:, 12:] + b[12:])
        ref = (1 - z) * n + z * hd
    assert torch.allclose(ours.double(), ref, atol=1e-5)


def _autograd_reference(m: GRU4Rec, p, x, y, keep, hidden, samples, log_q, masks=None):
    """The same step in float64 with autograd: returns grads of every weight. The loss is the sum
    over the rows divided by the configured batch_size (spec); ``masks`` = (embedding mask or
    None, [hidden mask or None per layer]) applies fixed dropout masks."""
    W = {k: v.detach().double().clone().requires_grad_() for k, v in m.tensors().items()}
    hsize = m.hidden_size
    mask_e, masks_h = masks if masks is not None else (None, [None] * len(p.layers))
    if m.input_mode == "shared":
        inp = W["output"][x, :hsize]
    else:
        inp = W["embedding"][x]
    if mask_e is not None:
        inp = inp * mask_e.double()
    for layer, size in enumerate(p.layers):
        h0 = hidden[layer].double() * keep.double()
        if layer == 0 and m.input_mode == "onehot":
            gi = inp + W["gru.0.b_ih"]
        else:
            gi = inp @ W[f"gru.{layer}.W_ih"] + W[f"gru.{layer}.b_ih"]
        U = W[f"gru.{layer}.W_hh"]
        r = torch.sigmoid(gi[:, :size] + h0 @ U[:, :size])
        z = torch.sigmoid(gi[:, size:2 * size] + h0 @ U[:, size:2 * size])
        if p.gru_variant == "reference":
            n = torch.tanh(gi[:, 2 * size:] + r * (h0 @ U[:, 2 * size:] + W[f"gru.{layer}.b_hh"][2 * size:]))
        else:
            n = torch.tanh(gi[:, 2 * size:] + (r * h0) @ U[:, 2 * size:])
        inp = (1 - z) * n + z * h0
        if masks_h[layer] is not None:
            inp = inp * masks_h[layer].double()
    sel = torch.cat([y, samples])
    scores = inp @ W["output"][sel, :hsize].t() + W["output"][sel, hsize]
    from .test_losses import ref_bpr_max, ref_cross_entropy
    if p.loss == "cross-entropy":
        loss = ref_cross_entropy(scores, log_q.double(), p.logq)
    else:
        loss = ref_bpr_max(scores, p.elu_param, p.bpreg)
    (loss * x.shape[0] / p.batch_size).backward()  # the references give the mean over the rows
    return {k: v.grad if v.grad is not None else torch.zeros_like(v) for k, v in W.items()}


@pytest.mark.parametrize("spec", [
    "loss=cross-entropy,layers=5,logq=1,constrained_embedding=True",
    "loss=bpr-max,layers=4/3,elu_param=0.5,bpreg=1.5,constrained_embedding=True",
    "loss=cross-entropy,layers=4,constrained_embedding=False,embedding=3",
    "loss=bpr-max,layers=3/4,constrained_embedding=False,embedding=0,elu_param=0",
    "loss=cross-entropy,layers=5,logq=1,constrained_embedding=True,gru_variant=reference",
    "loss=bpr-max,layers=4/3,elu_param=0.5,bpreg=1.5,constrained_embedding=True,gru_variant=reference",
    "loss=bpr-max,layers=3/4,constrained_embedding=False,embedding=0,elu_param=0,gru_variant=reference",
])
def test_training_step_gradients_and_sparse_update(spec):
    """Hand-written backward == autograd; first Adagrad step moves exactly the batch's rows, the
    item rows at learning_rate * item_lr_scale."""
    p = parse_params(spec + ",batch_size=4,n_sample=3,learning_rate=0.1,momentum=0,item_lr_scale=0.3")
    items = [str(i) for i in range(20)]
    m = GRU4Rec(p, items, seed=3)
    support = np.arange(1, 21, dtype=np.float64)
    tr = Trainer(m, support, seed=0)
    samples = torch.tensor([7, 3, 11])
    tr.next_samples = lambda: samples
    x, y = torch.tensor([1, 2, 3, 1]), torch.tensor([4, 2, 9, 5])
    keep = torch.tensor([[1.0], [0.0], [1.0], [1.0]])
    hidden = [torch.randn(4, s, generator=torch.Generator().manual_seed(5)) for s in p.layers]
    log_q = torch.cat([tr.log_pop[y], tr.log_sample_q[samples]])
    before = {k: v.clone() for k, v in m.tensors().items()}
    ref = _autograd_reference(m, p, x, y, keep, hidden, samples, log_q)
    loss, new_hidden = tr.step(x, y, keep, hidden)
    for name in m.dense:
        assert torch.allclose(tr.grads[name].double(), ref[name], atol=1e-5), name
    # first step with momentum 0: delta = -lr * g / sqrt(g^2 + eps), only on touched rows
    for name in ("output", "embedding"):
        if name not in ref:
            continue
        g = ref[name]
        expected = -0.1 * 0.3 * g / torch.sqrt(g * g + ADAGRAD_EPS)
        delta = (m.tensors()[name] - before[name]).double()
        assert torch.allclose(delta, expected, atol=1e-4), name
        touched = set((torch.cat([y, samples, x]) if name == "output" else x).tolist())
        untouched = [i for i in range(20) if i not in touched]
        assert torch.equal(m.tensors()[name][untouched], before[name][untouched])


def test_sampling_follows_support_power_alpha():
    p = parse_params("n_sample=100,sample_alpha=0.5,layers=4")
    support = np.array([1, 4, 9, 16, 25, 100, 0, 2], dtype=np.float64)
    m = GRU4Rec(p, [str(i) for i in range(8)])
    tr = Trainer(m, support, seed=0, sample_block=20_000)
    draws = torch.cat([tr.next_samples() for _ in range(1000)]).numpy()  # 100k, several blocks
    counts = np.bincount(draws, minlength=8)
    probs = support**0.5 / (support**0.5).sum()
    assert counts[6] == 0  # zero support is never drawn
    nz = probs > 0
    expected = probs[nz] * len(draws)
    chi2 = float(((counts[nz] - expected) ** 2 / expected).sum())
    dof = int(nz.sum()) - 1
    assert chi2 < dof + 4 * np.sqrt(2 * dof), chi2  # far beyond the 99.9% quantile only if wrong
    # uniform when alpha = 0
    tr0 = Trainer(GRU4Rec(parse_params("n_sample=50,sample_alpha=0,layers=4"), [str(i) for i in range(8)]),
                  support, seed=1, sample_block=10_000)
    c0 = np.bincount(torch.cat([tr0.next_samples() for _ in range(400)]).numpy(), minlength=8)
    assert c0.min() > 2000


def test_dropout_masks_scale_and_rate():
    m = GRU4Rec(parse_params("layers=4"), ["a", "b"])
    tr = Trainer(m, np.ones(2), seed=0)
    mask = tr._dropout_mask((200, 500), 0.3)
    assert abs(float((mask == 0).float().mean()) - 0.3) < 0.01
    values = sorted(torch.unique(mask).tolist())
    assert values[0] == 0.0 and values[1] == pytest.approx(1 / 0.7) and len(values) == 2


def test_training_is_deterministic_with_seed():
    df = events(rule_sessions(60, seed=1))
    spec = "layers=8,batch_size=4,n_sample=4,n_epochs=2,dropout_p_hidden=0.2,dropout_p_embed=0.1,momentum=0.2"
    m1, h1 = fit(df, spec, seed=7, progress=False, log=lambda s: None)
    m2, h2 = fit(df, spec, seed=7, progress=False, log=lambda s: None)
    m3, _ = fit(df, spec, seed=8, progress=False, log=lambda s: None)
    assert [h["loss"] for h in h1] == [h["loss"] for h in h2]
    assert torch.equal(m1.output, m2.output) and torch.equal(m1.dense_flat, m2.dense_flat)
    assert not torch.equal(m1.output, m3.output)


def test_nan_loss_stops_with_a_clear_error():
    df = events(rule_sessions(40, seed=2))
    m = GRU4Rec(parse_params("layers=4,batch_size=4,n_sample=2"), list("abcdef"))
    m.output[0, 0] = float("nan")
    tr = Trainer(m, np.ones(6), seed=0)
    with pytest.raises(TrainingDiverged, match="learning_rate"):
        tr.train(encode_sessions(df, m.item_index), n_epochs=1, progress=False, log=lambda s: None)


@pytest.mark.parametrize("spec", [
    "loss=cross-entropy,logq=0",
    "loss=bpr-max,bpreg=1.0,elu_param=0.5",
])
def test_learns_a_fixed_next_item_rule(spec):
    """Items a-f, next item fixed (a->b->...->f->a): Recall@1 >= 0.95 on held-out sessions."""
    train = events(rule_sessions(300, seed=0))
    test = events(rule_sessions(60, seed=1))
    params = spec + ",layers=16,batch_size=8,n_sample=0,learning_rate=0.1,momentum=0.1,n_epochs=4"
    model, history = fit(train, params, seed=0, progress=False, log=lambda s: None)
    assert history[-1]["loss"] < history[0]["loss"]
    res = evaluate(model, test, cutoffs=(1, 5))
    assert res["recall@1"] >= 0.95, res
    rec = model.recommend(["c"], k=1)
    assert rec.item_ids == ["d"]


def test_repeated_rows_summed_once_per_step_and_input_only_bias_untouched():
    """Targets repeated, samples repeated and equal to targets, inputs that are also output rows:
    every occurrence's gradient reaches the row (summed before Adagrad), the accumulator and the
    momentum are updated once per row, and a row used only as an input leaves its bias By alone."""
    p = parse_params("loss=bpr-max,layers=4,elu_param=0.5,bpreg=1.0,constrained_embedding=True,batch_size=4,"
                     "n_sample=5,learning_rate=0.1,momentum=0.5,dropout_p_embed=0,dropout_p_hidden=0,item_lr_scale=0.4")
    m = GRU4Rec(p, [str(i) for i in range(12)], seed=2)
    tr = Trainer(m, np.arange(1, 13, dtype=np.float64), seed=0)
    steps = [  # (x, y, samples)
        (torch.tensor([1, 1, 3, 4]), torch.tensor([4, 2, 4, 5]), torch.tensor([9, 9, 4, 2, 4])),
        (torch.tensor([9, 2, 9, 6]), torch.tensor([3, 3, 7, 5]), torch.tensor([5, 7, 7, 3, 8])),
    ]
    keep = torch.ones(4, 1)
    hidden = [torch.zeros(4, 4)]
    acc = torch.zeros(12, 5, dtype=torch.float64)
    vel = torch.zeros(12, 5, dtype=torch.float64)
    w = m.output.double().clone()
    for x, y, smp in steps:
        tr.next_samples = lambda smp=smp: smp
        g = _autograd_reference(m, p, x, y, keep, hidden, smp, None)["output"]
        touched = sorted(set(torch.cat([x, y, smp]).tolist()))
        out_rows = set(torch.cat([y, smp]).tolist())
        for r in touched:
            cols = slice(None) if r in out_rows else slice(0, 4)  # an input-only row: Wy part only
            acc[r, cols] += g[r, cols] ** 2
            vel[r, cols] = 0.5 * vel[r, cols] - 0.04 * g[r, cols] / torch.sqrt(acc[r, cols] + ADAGRAD_EPS)
            w[r, cols] += vel[r, cols]
        _, hidden = tr.step(x, y, keep, hidden)
        assert torch.allclose(m.output.double(), w, atol=1e-5)
    assert torch.allclose(tr.out_opt.acc.double(), acc, atol=1e-6)
    assert torch.allclose(tr.out_opt.vel.double(), vel, atol=1e-5)
    assert 9 not in set(torch.cat([steps[1][1], steps[1][2]]).tolist()) and vel[9, 4] != 0  # the case is exercised


@pytest.mark.parametrize("spec", [
    "loss=cross-entropy,layers=6,logq=1,constrained_embedding=True,dropout_p_embed=0.2,dropout_p_hidden=0.3",
    "loss=bpr-max,layers=5/4,elu_param=0.5,bpreg=1.0,constrained_embedding=True,dropout_p_hidden=0.2",
    "loss=bpr-max,layers=4,constrained_embedding=False,embedding=3,elu_param=0",
    "loss=cross-entropy,layers=4,constrained_embedding=False,embedding=0",
    "loss=bpr-max,layers=5/4,elu_param=0.5,bpreg=1.0,constrained_embedding=True,dropout_p_hidden=0.2,"
    "dropout_p_embed=0.1,gru_variant=reference",
])
def test_gpu_step_path_matches_the_cpu_path(spec):
    """The sync-free step a GPU runs (scratch-matrix merge of repeated rows, no data-dependent
    shapes) gives the same weights and optimiser state as the CPU step, here run on the CPU:
    repeated targets, samples equal to targets, inputs that are output rows, momentum, dropout."""
    p = parse_params(spec + ",batch_size=4,n_sample=5,learning_rate=0.1,momentum=0.4,item_lr_scale=0.5")
    items = [str(i) for i in range(15)]
    support = np.arange(1, 16, dtype=np.float64)
    runs = []
    for gpu_path in (False, True):
        m = GRU4Rec(p, items, seed=4)
        tr = Trainer(m, support, seed=1)
        if gpu_path:
            tr.out_opt.scratch = torch.zeros_like(tr.out_opt.weight)
            if tr.emb_opt is not None:
                tr.emb_opt.scratch = torch.zeros_like(tr.emb_opt.weight)
        gen = torch.Generator().manual_seed(9)
        hidden = m.zero_hidden(4)
        for _ in range(6):
            x = torch.randint(0, 15, (4,), generator=gen)
            y = torch.randint(0, 15, (4,), generator=gen)
            smp = torch.cat([y[:2], torch.randint(0, 15, (3,), generator=gen)])
            keep = (torch.rand(4, 1, generator=gen) > 0.3).float()
            tr.next_samples = lambda smp=smp: smp
            step = tr._step_scratch if gpu_path else tr._step_unique
            _, hidden = step(x, y, keep, hidden)
        runs.append((m.tensors(), tr.out_opt.state, tr.emb_opt.state if tr.emb_opt is not None else None))
    (w_cpu, s_cpu, e_cpu), (w_gpu, s_gpu, e_gpu) = runs
    for name in w_cpu:
        assert torch.allclose(w_cpu[name], w_gpu[name], atol=1e-5), name
    assert torch.allclose(s_cpu, s_gpu, atol=1e-5)
    if e_cpu is not None:
        assert torch.allclose(e_cpu, e_gpu, atol=1e-5)


@pytest.mark.parametrize("variant", ["classic", "reference"])
def test_last_batch_of_one_row_gets_1_over_batch_size_of_the_mean_gradient(variant):
    """A shrinking batch (1 row left, batch_size 4): the step's loss and dense gradients are 1/4
    of those of the mean over the rows present (the pre-correction rule)."""
    p = parse_params(f"loss=bpr-max,layers=4,elu_param=0.5,bpreg=1.0,batch_size=4,n_sample=3,"
                     f"learning_rate=0.1,gru_variant={variant}")
    m = GRU4Rec(p, [str(i) for i in range(12)], seed=2)
    tr = Trainer(m, np.arange(1, 13, dtype=np.float64), seed=0)
    samples = torch.tensor([7, 3, 11])
    tr.next_samples = lambda: samples
    x, y, keep = torch.tensor([1]), torch.tensor([4]), torch.ones(1, 1)
    hidden = [torch.randn(1, 4, generator=torch.Generator().manual_seed(5))]
    ref = _autograd_reference(m, p, x, y, keep, hidden, samples, None)
    from recommendations.gru4rec.losses import bpr_max

    with torch.no_grad():  # the mean-loss value of the same scores, for the 1/4 check
        out = m.step(x, [hidden[0]])[0]
        sel = torch.cat([y, samples])
        mean_loss, _ = bpr_max(out @ m.output[sel, :4].t() + m.output[sel, 4], 0.5, 1.0)
    loss, _ = tr.step(x, y, keep, hidden)
    assert float(loss) == pytest.approx(float(mean_loss) / 4, rel=1e-5)
    for name in m.dense:
        assert torch.allclose(tr.grads[name].double(), ref[name], atol=1e-6), name
    assert float(tr.grads["gru.0.W_hh"].abs().sum()) > 0


@pytest.mark.parametrize("variant", ["classic", "reference"])
def test_carried_hidden_state_is_the_post_dropout_output(variant):
    """Training: the state carried to the next step is each layer's output after dropout (the
    tensor fed to the next layer / the scores), with fixed dropout masks; a slot reset by keep=0
    starts from zeros; the gradients follow the dropped-out path. Evaluation has no dropout."""
    p = parse_params(f"loss=cross-entropy,layers=5/4,batch_size=3,n_sample=2,dropout_p_hidden=0.5,"
                     f"dropout_p_embed=0.25,logq=1,gru_variant={variant}")
    m = GRU4Rec(p, [str(i) for i in range(10)], seed=6)
    tr = Trainer(m, np.arange(1, 11, dtype=np.float64), seed=0)
    samples = torch.tensor([8, 2])
    tr.next_samples = lambda: samples
    g = torch.Generator().manual_seed(3)
    mask_e = (torch.rand(3, 4, generator=g) > 0.25).float() / 0.75
    masks_h = [(torch.rand(3, s, generator=g) > 0.5).float() / 0.5 for s in p.layers]
    assert all(0 < float((mk == 0).float().mean()) < 1 for mk in masks_h)
    queue = [mask_e, *masks_h]
    tr._dropout_mask = lambda shape, rate: queue.pop(0).clone() if rate > 0 else None
    x, y = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6])
    keep = torch.tensor([[1.0], [0.0], [1.0]])
    hidden = [torch.randn(3, s, generator=g) for s in p.layers]
    log_q = torch.cat([tr.log_pop[y], tr.log_sample_q[samples]])
    ref = _autograd_reference(m, p, x, y, keep, hidden, samples, log_q, masks=(mask_e, masks_h))
    before = {k: v.clone() for k, v in m.tensors().items()}
    _, new_hidden = tr.step(x, y, keep, hidden)
    for name in m.dense:
        assert torch.allclose(tr.grads[name].double(), ref[name], atol=1e-5), name
    # the expected carried state, layer by layer, on the weights before the update
    saved = {k: v.clone() for k, v in m.tensors().items()}
    for k, v in m.tensors().items():
        v.copy_(before[k])
    inp = m.output[x, :4] * mask_e
    for layer, size in enumerate(p.layers):
        h = m._cell(layer, m._gi(layer, inp), hidden[layer] * keep) * masks_h[layer]
        assert torch.allclose(new_hidden[layer], h, atol=1e-6), layer
        assert (new_hidden[layer][masks_h[layer] == 0] == 0).all()  # dropped units carry zero
        inp = h
    for k, v in m.tensors().items():
        v.copy_(saved[k])
    # evaluation: no dropout, the plain cell
    with torch.no_grad():
        ev = m.step(x, [hh * keep for hh in hidden])
        plain = m.output[x, :4]
        for layer in range(2):
            plain = m._cell(layer, m._gi(layer, plain), hidden[layer] * keep)
            assert torch.equal(ev[layer], plain)
