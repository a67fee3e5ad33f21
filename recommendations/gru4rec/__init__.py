"""GRU4Rec session-based recommender: a plain PyTorch engine with no Django import.

Data in (session/item/time events), tensors and files out; the Django side wraps it in
``recommendations.engine``. Main entry points: :class:`GRU4Rec` (model, serving, checkpoints),
:func:`fit` (training), :func:`evaluate` (Recall@N / MRR@N), :func:`parse_params`; :class:`Hybrid`
(GRU4Rec + V-SKNN fused per item, ``hybrid.py``) with :func:`fit_hybrid`, :func:`hybrid_weight_fit`,
:func:`evaluate_hybrid`; :func:`objective` (the one number model choices maximise).

The names are loaded on first use (PEP 562): a web worker that only serves a model imports
``model`` and ``checkpoint``, not the training and data modules (and pandas, ~34 MB a process).
"""
import os
from importlib import import_module

# oneDNN's dispatch on a CPU with AMX (Sapphire Rapids and later) runs the serving int8 kernel
# (torch._int_mm, one session against the catalogue: candidates.py) through AMX tiles, which
# re-pack the 4 MiB weight copy on every call: 0.57-0.64 ms for 40k x 100 on such a machine against
# 0.15 ms with AVX512-VNNI (and 0.30 ms for the fp32 mat-vec it replaces). The engine trains and
# scores in fp32, which AMX does not compute, so capping oneDNN below AMX changes nothing else
# (fp32 products timed equal). oneDNN reads the cap when this process first uses it, so it is set
# on import, before any model exists; an operator's own ONEDNN_MAX_CPU_ISA wins. A process that
# used oneDNN before importing the engine keeps AMX: the serving cache then times both paths and
# keeps the faster (model._ServeCache).
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")

_EXPORTS = {
    "CheckpointError": ".checkpoint",
    "GRU4Rec": ".model",
    "GRU4RecParams": ".params",
    "parse_params": ".params",
    "Recommendation": ".types",
    "TrainingDiverged": ".trainer",
    "fit": ".trainer",
    "evaluate": ".evaluation",
    "Hybrid": ".hybrid",
    "evaluate_hybrid": ".hybrid",
    "hybrid_weight_fit": ".hybrid",
    "fit_hybrid": ".hybrid",
    "objective": ".metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
