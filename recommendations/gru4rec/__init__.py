"""GRU4Rec session-based recommender: a plain PyTorch engine with no Django import.

Data in (session/item/time events), tensors and files out; the Django side wraps it in
``recommendations.services``. Main entry points: :class:`GRU4Rec` (model, serving, checkpoints),
:func:`fit` (training), :func:`evaluate` (Recall@N / MRR@N), :func:`parse_params`.
"""
from .checkpoint import CheckpointError
from .evaluation import evaluate
from .model import GRU4Rec
from .params import GRU4RecParams, parse_params
from .trainer import TrainingDiverged, fit
from .types import Recommendation

__all__ = ["CheckpointError", "GRU4Rec", "GRU4RecParams", "Recommendation", "TrainingDiverged",
           "evaluate", "fit", "parse_params"]
