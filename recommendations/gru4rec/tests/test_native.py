"""The native int8 kernel (native/i8gemv.c): exact sums in both paths, the fused scores bit for bit,
the loader's refusals, and the serving cache's choice among fp32, torch's kernel and this one."""
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from recommendations.gru4rec import candidates, native
from recommendations.gru4rec.candidates import Int8Scorer
from recommendations.gru4rec.native import builder as native_build

from .test_model import _exact_top, _same_ranking, model_600, serving_requests  # noqa: F401 (model_600: a fixture)


def _have_compiler() -> bool:
    return shutil.which(native_build.compiler()[0]) is not None


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    """The kernel built from this checkout's source into a temporary folder (whatever `make` left
    in the package), loaded."""
    if not _have_compiler():
        pytest.skip(f"no C compiler ({native_build.compiler()[0]}) to build the native kernel")
    return native.library(native.build(tmp_path_factory.mktemp("native") / "k.so", quiet=True))


@pytest.fixture
def kernel(lib, monkeypatch):
    """The engine uses the freshly built kernel (native.kernel() returns it)."""
    k = native.Kernel(lib)
    monkeypatch.setattr(native, "kernel", lambda: k)
    return k


def _int8(shape, rng):
    return rng.integers(-127, 128, shape).astype(np.int8)


@pytest.mark.parametrize("portable", [False, True])
def test_sums_are_exact_int32_dot_products(lib, portable):
    """Random and extreme values (every product 127 * 127 of one sign: where a saturating int16 pair
    sum would show), several row counts (the AVX2 path's pairs of blocks and its odd last block)."""
    k = native.Kernel(lib, portable=portable)
    rng = np.random.default_rng(0)
    for rows, width in ((8, 4), (24, 8), (64, 104), (4096 + 8, 100 + 4)):
        q = _int8((rows, width), rng)
        q[0], q[1] = 127, -127
        qb = native.blocked(q)
        assert np.array_equal(native.unblocked(qb, rows, width), q)
        for a in (_int8(width, rng), np.full(width, 127, np.int8), np.full(width, -127, np.int8)):
            want = q.astype(np.int64) @ a.astype(np.int64)
            got = k.sums(qb, a, rows, width)
            assert got.dtype == np.int32 and np.array_equal(got, want), (rows, width)


@pytest.mark.parametrize("portable", [False, True])
def test_fused_scores_round_as_the_numpy_sequence(lib, portable):
    """(float) sum * scale * t + bias, one fp32 rounding per operation: the same bits as
    candidates.Int8Scorer._approx's numpy version (the error bound assumes that arithmetic)."""
    k = native.Kernel(lib, portable=portable)
    rng = np.random.default_rng(1)
    rows, width = 1024, 104
    q, a = _int8((rows, width), rng), _int8(width, rng)
    scale = (rng.random(rows) * 1e-2).astype(np.float32)
    bias = rng.standard_normal(rows).astype(np.float32)
    bias[-3:] = -np.inf  # padding rows
    t = 0.0123456789
    want = (q.astype(np.int64) @ a.astype(np.int64)).astype(np.int32).astype(np.float32)
    want *= scale
    want *= np.float32(t)
    want += bias
    got = k.scores(native.blocked(q), a, scale, bias, t, rows, width, np.empty(rows, np.int32),
                   np.empty(rows, np.float32))
    assert np.array_equal(got.view(np.int32), want.view(np.int32))


def test_the_cpu_path_is_reported(lib):
    k = native.Kernel(lib)
    assert k.isa in native.ISA_NAMES and k.name.startswith("native (")
    assert native.Kernel(lib, portable=True).name == "native (portable C)"


def test_loader_refuses_what_it_cannot_use(tmp_path, monkeypatch, caplog):
    # a library built from another version of the source is not used
    stale = tmp_path / "i8gemv.c"
    stale.write_text(native.SOURCE.read_text().replace("#define GRU4REC_I8_VERSION 1", "#define GRU4REC_I8_VERSION 0"))
    if not _have_compiler():
        pytest.skip("no C compiler")
    monkeypatch.setattr(native_build, "SOURCE", stale)
    built = native.build(tmp_path / "stale.so", quiet=True)
    with pytest.raises(OSError, match="another version"):
        native.library(built)
    monkeypatch.setattr(native, "LIBRARY", built)
    monkeypatch.setattr(native, "_lib", None)
    assert native.library() is None and "another version" in caplog.text
    # not built: None, said once; GRU4REC_NATIVE=0: None without looking
    monkeypatch.setattr(native, "LIBRARY", tmp_path / "missing.so")
    monkeypatch.setattr(native, "_lib", None)
    assert native.library() is None and native.kernel() is None
    monkeypatch.setenv("GRU4REC_NATIVE", "0")
    monkeypatch.setattr(native, "_lib", None)
    assert native.library() is None and native._lib is None


def test_build_errors_name_the_compiler(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", "no-such-cc-here")
    with pytest.raises(RuntimeError, match="no C compiler .no-such-cc-here"):
        native.build(tmp_path / "x.so", quiet=True)
    monkeypatch.setenv("CC", "false")  # a compiler that fails
    with pytest.raises(RuntimeError, match="failed"):
        native.build(tmp_path / "x.so", quiet=True)
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_native_scorer_gives_the_exact_fp32_top_n(model_600, kernel):
    m = model_600
    torch_scorer = Int8Scorer(m.output)
    scorer = torch_scorer.with_kernel(kernel, m.output)
    assert scorer.ok and scorer.kernel is kernel and scorer.q8 is None and torch_scorer.q8 is not None
    assert scorer.kernel_name.startswith("int8 native") and scorer.nbytes == torch_scorer.nbytes
    for trial, (idx, n, exclude, use_mask) in enumerate(serving_requests(m)):
        h = m._hidden_one_cpu(idx)
        a, b = scorer._approx(h), torch_scorer._approx(h)
        assert np.array_equal(a[0], b[0]) and a[1] == b[1]  # the same approximate scores, bit for bit
        found = scorer.top(m.output, h, n, exclude, use_mask)
        assert found is not None
        want, want_values, scores = _exact_top(m, idx, n, exclude, use_mask)
        assert _same_ranking(found[0].tolist(), want, scores), trial
        np.testing.assert_allclose(found[1], want_values, rtol=1e-5, atol=1e-6)


def test_native_scorer_refused_when_its_sums_are_wrong(model_600, lib):
    class Wrong(native.Kernel):
        def sums(self, qb, a, rows, k, out=None):
            return np.clip(super().sums(qb, a, rows, k, out), -(2**15), 2**15 - 1).astype(np.int32)  # saturating

    scorer = Int8Scorer(model_600.output).with_kernel(Wrong(lib), model_600.output)
    assert not scorer.ok


def test_serving_keeps_the_fastest_of_fp32_torch_and_native(model_600, kernel, monkeypatch):
    """Timed when the serving cache is built, each path against the others; the answer is the
    same whichever wins. Untimed: the native kernel when it passes its self-check."""
    m = model_600
    monkeypatch.setattr(m, "SERVE_INT8_MIN_ITEMS", 0)
    want = m.top_items([5, 6, 7], 8)
    real_torch, real_scores = candidates._kernel(), m._scores_of
    real_native = type(kernel).scores

    def slow(fn):
        def wrapped(*args, **kwargs):
            time.sleep(0.003)
            return fn(*args, **kwargs)
        return wrapped

    cases = [  # (slow torch, slow native, slow fp32) -> the path kept
        ((True, False, True), "int8_native"),
        ((False, True, True), "int8_torch"),
        ((True, True, False), None),
    ]
    for (s_torch, s_native, s_fp32), winner in cases:
        monkeypatch.setattr(candidates, "_kernel", lambda s=s_torch: slow(real_torch) if s else real_torch)
        monkeypatch.setattr(type(kernel), "scores", slow(real_native) if s_native else real_native)
        monkeypatch.setattr(m, "_scores_of", slow(real_scores) if s_fp32 else real_scores)
        m._serve_cache = None
        cache = m._serving()
        assert set(cache.timings) == {"fp32_ms", "int8_torch_ms", "int8_native_ms"}
        slow_keys = {k for k, s in zip(("int8_torch_ms", "int8_native_ms", "fp32_ms"), (s_torch, s_native, s_fp32)) if s}
        assert all(cache.timings[k] > 3.0 for k in slow_keys)
        assert (cache.scorer.kernel_key if cache.scorer else None) == winner, cache.timings
        assert cache.path == (cache.scorer.kernel_name if cache.scorer else "fp32")
        assert m.top_items([5, 6, 7], 8)[0] == want[0]
    monkeypatch.setattr(m, "SERVE_INT8_TIMED", False)
    m._serve_cache = None
    assert m._serving().scorer.kernel is kernel and m._serving().timings == {}
    monkeypatch.undo()
    m._serve_cache = None


def test_kernel_bench_times_every_kernel_this_machine_has():
    """bench/int8_kernels.py (cited in the README) runs and times each kernel the engine could keep."""
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "bench/int8_kernels.py", "--items", "700", "--hidden", "10",
                           "--calls", "3", "--evict", "1"], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    expected = {"fp32"} | ({candidates.KERNEL_TORCH} if candidates._kernel() is not None else set())
    k = native.kernel()
    if k is not None:
        expected |= {f"{k.name} sums", f"{k.name} scores"}
    assert set(out["p50_ms"]) == expected
    assert all(v["hot"] > 0 and v["evicted"] > 0 for v in out["p50_ms"].values())
    assert out["native"] == (k.name if k is not None else None)
