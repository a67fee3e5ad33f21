"""Checkpoint file format: one safetensors file, tensors plus JSON metadata, no pickle.

Layout (``FORMAT_VERSION`` 2): a single ``.safetensors`` file whose tensors are the model's
weights (float32) and whose safetensors header metadata holds one key, ``gru4rec``, a JSON
object with ``format`` ("gru4rec-checkpoint"), ``format_version``, ``params``, ``item_ids``
(in index order), ``train_range``, ``metrics``, ``shapes`` and ``sha256`` (a digest of every
tensor's bytes, so a corrupt payload is refused, not silently loaded).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

FORMAT = "gru4rec-checkpoint"
FORMAT_VERSION = 2  # 2: classic GRU (reset gate before U), one bias per gate (b_hh unused, zero)


class CheckpointError(Exception):
    """The file is not a usable GRU4Rec checkpoint (missing, truncated, corrupt, wrong version or shapes)."""


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().data if t.numel() else b"")
    return h.hexdigest()


def write_checkpoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    from safetensors.torch import save_file

    cpu = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    meta = dict(meta)
    meta.update(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        shapes={k: list(v.shape) for k, v in cpu.items()},
        sha256=_digest(cpu),
    )
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(cpu, str(tmp), metadata={"gru4rec": json.dumps(meta)})
    os.replace(tmp, path)  # readers never see a half-written file


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Return (tensors on CPU, metadata). Any defect raises CheckpointError."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            raw = (f.metadata() or {}).get("gru4rec")
            if raw is None:
                raise CheckpointError(f"{path}: safetensors file without GRU4Rec metadata")
            meta = json.loads(raw)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except CheckpointError:
        raise
    except Exception as exc:  # safetensors/json/OS errors all mean the same thing to the caller
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a GRU4Rec checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {meta.get('format_version')!r}, this code reads {FORMAT_VERSION}"
        )
    shapes = meta.get("shapes") or {}
    if set(shapes) != set(tensors) or any(list(tensors[k].shape) != list(s) for k, s in shapes.items()):
        raise CheckpointError(f"{path}: tensor shapes do not match the checkpoint's own metadata")
    if meta.get("sha256") != _digest(tensors):
        raise CheckpointError(f"{path}: checksum mismatch, the weights are corrupt")
    return tensors, meta
