"""Thin adapter between the Django side and the engine package (``recommendations.gru4rec``).

Artifacts, training, evaluation and the event table live here so that services never reach into
the engine's internals; nothing in this module touches the database.

An artifact is a single file: GRU4Rec is the engine's safetensors checkpoint; V-SKNN and the hybrid
(folders in the engine; the hybrid's holds its GRU4Rec checkpoint and its V-SKNN folder) are packed
into an uncompressed zip so that they too are one file with one digest.
``recommendations.artifacts`` names it by content and stores it.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .gru4rec.checkpoint import CheckpointError
from .gru4rec.metrics import objective as _objective

if TYPE_CHECKING:  # pandas only in annotations here: web workers serve without it (~34 MB each)
    import pandas as pd

KINDS = ("gru4rec", "vsknn", "hybrid")
CUTOFFS = (5, 10, 20)
PRIMARY_METRICS = ("recall@20", "mrr@20")
_EXT = {"gru4rec": ".safetensors", "vsknn": ".zip", "hybrid": ".zip"}


class ArtifactError(Exception):
    """The artifact cannot be served: missing, checksum mismatch, or refused by the engine."""


# ----------------------------------------------------------------------------------- artifacts
def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def artifact_ext(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}")
    return _EXT[kind]


def artifact_save(kind: str, model, path: str | os.PathLike) -> None:
    """Write ``model`` as one file at ``path`` (naming and storing it is ``artifacts``' job)."""
    path = Path(path)
    if kind == "gru4rec":
        model.save(path)
    elif kind in ("vsknn", "hybrid"):
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".tmp-") as tmp:
            folder = Path(tmp) / "folder"
            model.save(folder)
            with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
                for f in sorted(p for p in folder.rglob("*") if p.is_file()):
                    zf.write(f, f.relative_to(folder).as_posix())
    else:
        raise ValueError(f"unknown model kind {kind!r}")


def artifact_load(kind: str, path: str | os.PathLike, sha256: str | None = None):
    """Load an artifact after checking its digest. Any defect raises :class:`ArtifactError`."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: artifact file missing")
    if sha256 is not None:
        got = sha256_file(path)
        if got != sha256:
            raise ArtifactError(f"{path}: sha256 mismatch (expected {sha256[:16]}..., file has {got[:16]}...)")
    try:
        if kind == "gru4rec":
            from .gru4rec.model import GRU4Rec  # why: first use: web workers skip training modules (pandas)

            return GRU4Rec.load(path)
        if kind in ("vsknn", "hybrid"):
            with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(path) as zf:
                _members_check(path, zf, nested=kind == "hybrid")
                zf.extractall(tmp)
                if kind == "vsknn":
                    from .gru4rec.baselines import SessionKNN  # why: first use: web workers skip training modules (pandas)

                    return SessionKNN.load(tmp)
                from .gru4rec.hybrid import Hybrid  # why: first use: web workers skip training modules (pandas)

                return Hybrid.load(tmp)
    except ArtifactError:
        raise
    except (CheckpointError, ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{path}: refused by the engine ({type(exc).__name__}: {exc})") from exc
    raise ArtifactError(f"unknown model kind {kind!r}")


def _members_check(path, zf: zipfile.ZipFile, nested: bool) -> None:
    """Refuse a zip whose members could land outside the folder it is unpacked into (absolute
    paths, ``..``, hidden names), or, unless ``nested``, in a sub-folder; and an empty one."""
    names = zf.namelist()
    if not names:
        raise ArtifactError(f"{path}: empty artifact")
    for name in names:
        parts = name.split("/")
        if ((not nested and len(parts) > 1) or name.startswith("/") or "\\" in name
                or any(p in ("", ".", "..") or p.startswith(".") for p in parts)):
            raise ArtifactError(f"{path}: unexpected member {name!r}")


# ------------------------------------------------------------------------------------- data
def events_read(path: str | os.PathLike) -> pd.DataFrame:
    from .gru4rec.formats import read_events  # why: first use: web workers skip training modules (pandas)

    return read_events(path)


def events_split(df: pd.DataFrame, test_days: float = 1, min_item_support: int = 2) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Standard preprocessing and the held-out last day(s); returns (train, test, stats)."""
    from .gru4rec.sessions import preprocess, split_by_time, split_stats  # why: first use: web workers skip training modules (pandas)

    df = preprocess(df, min_item_support=min_item_support, min_session_length=2)
    train, test = split_by_time(df, days=test_days)
    if len(train) == 0:
        raise ValueError("no training events after preprocessing (too few sessions or items)")
    return train, test, split_stats(train, test)


def events_from_products(train, test, external_ids: dict[int, str]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(train, test, stats) frames from tracking's split (``session``, ``item`` product pks,
    ``time_us`` arrays, already preprocessed and split by the engine): ItemId is the product's
    external id (the name the models keep), Time unix seconds, the same values the TSV export holds."""
    import pandas as pd

    from .gru4rec.sessions import split_stats  # why: first use: web workers skip training modules (pandas)

    names = pd.Series(external_ids, dtype=object)

    def frame(part) -> pd.DataFrame:
        return pd.DataFrame({
            "SessionId": np.asarray(part.session, dtype=np.int64),
            "ItemId": pd.Series(names.reindex(part.item).to_numpy(), dtype=str),
            "Time": np.asarray(part.time_us, dtype=np.int64) / 1_000_000,
        })

    train_df, test_df = frame(train), frame(test)
    return train_df, test_df, split_stats(train_df, test_df)


# ------------------------------------------------------------------------------- training
def gru4rec_train(train: pd.DataFrame, params: str, log: Callable[[str], None] | None = None, progress: bool = False,
                  on_progress: Callable[[int, int, float, float], None] | None = None):
    """Train GRU4Rec; ``log`` gets a line per epoch, ``on_progress(epoch, n_epochs, fraction, loss)``
    the epoch's progress and mean loss so far (see ``Trainer.train``)."""
    from .gru4rec.trainer import fit  # why: first use: web workers skip training modules (pandas)

    model, history = fit(train, params, device="cpu", seed=0, progress=progress, log=log, on_progress=on_progress)
    return model


def vsknn_train(train: pd.DataFrame, **params):
    from .gru4rec.baselines import SessionKNN  # why: first use: web workers skip training modules (pandas)

    return SessionKNN(**params).fit(train)


def gru4rec_params_string(params) -> str:
    """A GRU4Rec parameter string from a string or a dict of parameters (a tuning trial's), checked
    by the engine (raises ValueError naming the bad parameter)."""
    from .gru4rec.params import GRU4RecParams, parse_params  # why: first use: web workers skip training modules (pandas)

    if isinstance(params, dict):
        known = {k: v for k, v in params.items() if k in GRU4RecParams.__dataclass_fields__}
        return GRU4RecParams.from_dict(known).to_string()
    return parse_params(params).to_string()


def vsknn_params_check(params) -> dict:
    """V-SKNN settings checked by the engine (ValueError naming the bad one): k and sample_size
    whole numbers >= 1, similarity and weighting among the engine's names."""
    from .gru4rec.baselines import SessionKNN  # why: first use: web workers skip training modules (pandas)

    if not isinstance(params, dict):
        raise ValueError(f"V-SKNN settings must be an object, got {type(params).__name__}")
    unknown = sorted(set(params) - {"k", "sample_size", "similarity", "weighting"})
    if unknown:
        raise ValueError(f"unknown V-SKNN setting(s): {', '.join(unknown)} (k, sample_size, similarity, weighting)")
    for name in ("k", "sample_size"):
        if name in params and (isinstance(params[name], bool) or not isinstance(params[name], int) or params[name] < 1):
            raise ValueError(f"{name} must be a whole number >= 1, got {params[name]!r}")
    return SessionKNN(**params).params()


def hybrid_fusion_check(weight, fusion: str, **fusion_params) -> dict:
    """A hybrid's weight and fusion checked by the engine: ``{"weight", "fusion", ..params}``."""
    from .gru4rec.hybrid import FUSIONS, fusion_params as check  # why: first use: web workers skip training modules (pandas)

    try:
        w = float(weight)
    except (TypeError, ValueError):
        raise ValueError(f"weight must be a number from 0 to 1, got {weight!r}") from None
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"weight must be a number from 0 to 1, got {weight!r}")
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
    return {"weight": w, "fusion": fusion, **check(fusion, **fusion_params)}


def hybrid_build(gru, knn, weight: float, fusion: str = "rrf", **fusion_params):
    """The hybrid of two trained models (the same training data), fused with ``weight`` on V-SKNN."""
    from .gru4rec.hybrid import Hybrid  # why: first use: web workers skip training modules (pandas)

    return Hybrid(gru, knn, weight, fusion=fusion, **fusion_params)


def hybrid_weight_learn(train: pd.DataFrame, gru_params: str, knn_params: dict, valid_days: float = 1,
                        log: Callable[[str], None] | None = None) -> dict:
    """Learn the hybrid's weight and fusion on validation days carved from the end of ``train``
    (never the held-out day): GRU4Rec and V-SKNN are trained on the rest, and the engine's
    ``hybrid_weight_fit`` searches the weight on the validation days. Returns its answer
    (``{"weight", "fusion", ..., "metrics", "grid"}``); ValueError when ``train`` is too short to
    carve validation days from."""
    from .gru4rec.hybrid import hybrid_weight_fit  # why: first use: web workers skip training modules (pandas)
    from .gru4rec.sessions import split_by_time  # why: first use: web workers skip training modules (pandas)

    fit_part, valid = split_by_time(train, days=valid_days)
    if len(fit_part) == 0 or len(valid) == 0:
        raise ValueError(f"the training part is too short to carve {valid_days:g} validation day(s) from")
    gru = gru4rec_train(fit_part, gru_params, log=log)
    knn = vsknn_train(fit_part, **knn_params)
    return hybrid_weight_fit(gru, knn, valid)


def baseline_train(kind: str, train: pd.DataFrame):
    from .gru4rec.baselines import ItemKNN, Popularity  # why: first use: web workers skip training modules (pandas)

    return {"popularity": Popularity, "itemknn": ItemKNN}[kind]().fit(train)


def evaluate(kind: str, model, test: pd.DataFrame, cutoffs=CUTOFFS) -> dict:
    """Recall@N / MRR@N on ``test`` with the engine's protocol for that kind of model."""
    if len(test) == 0:
        out = {f"{m}@{c}": 0.0 for c in cutoffs for m in ("recall", "mrr")}
        out["n_events"] = 0
        return out
    if kind == "gru4rec":
        from .gru4rec.evaluation import evaluate as gru_evaluate  # why: first use: web workers skip training modules (pandas)

        out = gru_evaluate(model, test, cutoffs=cutoffs)
    elif kind == "hybrid":
        from .gru4rec.hybrid import evaluate_hybrid  # why: first use: web workers skip training modules (pandas)

        out = evaluate_hybrid(model, test, cutoffs=cutoffs)
    else:
        from .gru4rec.baselines import evaluate_baseline  # why: first use: web workers skip training modules (pandas)

        out = evaluate_baseline(model, test, cutoffs=cutoffs)
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in out.items()}


def objective(metrics: dict) -> float:
    """The engine's one number for model choices: sqrt(Recall@20 x MRR@20) (``metrics.objective``)."""
    return _objective(metrics)


def metrics_at_least(candidate: dict, reference: dict, names=PRIMARY_METRICS) -> bool:
    """True when ``candidate`` is at least as good as ``reference`` on every primary metric."""
    return all(float(candidate.get(n, 0.0)) >= float(reference.get(n, 0.0)) for n in names)


def metrics_key(metrics: dict, names=PRIMARY_METRICS) -> tuple:
    return tuple(float(metrics.get(n, 0.0)) for n in names)
