"""GRU4Rec session-based recommender: a plain PyTorch engine with no Django import.

Data in (session/item/time events), tensors and files out; the Django side wraps it in
``recommendations.engine``. Main entry points: :class:`GRU4Rec` (model, serving, checkpoints),
:func:`fit` (training), :func:`evaluate` (Recall@N / MRR@N), :func:`parse_params`; :class:`Hybrid`
(GRU4Rec + V-SKNN fused per item, ``hybrid.py``) with :func:`fit_hybrid`, :func:`hybrid_weight_fit`,
:func:`evaluate_hybrid`; :func:`objective` (the one number model choices maximise).

The names are loaded on first use (PEP 562): a web worker that only serves a model imports
``model`` and ``checkpoint``, not the training and data modules (and pandas, ~34 MB a process).
"""
from importlib import import_module

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
