"""The engine's one native kernel: an int8 state against the int8 catalogue copy (``i8gemv.c``).

Why: the int8 candidate stage (``candidates.py``) is only as fast as its kernel. torch's
``_int_mm`` (oneDNN) is fast with AVX512-VNNI but took 4.7 ms for 40,000 x 100 on an AVX2-only
AMD EPYC, twice the fp32 mat-vec it replaces; this kernel took 0.27 ms there. The serving cache
times every kernel that passes its self-check against the fp32 mat-vec and keeps the fastest
(``model._ServeCache``), so the library is an option, never a requirement: without it (not built,
no C compiler, another architecture) the engine uses torch's kernel or fp32, with the same answers.

Build it with ``python -m recommendations.gru4rec.native build`` (``make venv`` and the Docker
image do; CC or ``cc`` compiles). ``GRU4REC_NATIVE=0`` in the environment leaves it unused.
``python -m recommendations.gru4rec.native`` says whether it is built, loads, and which path
(AVX2 or portable C) it takes on this CPU.
"""
from __future__ import annotations

import ctypes
import logging
import os
import sys
from pathlib import Path

import numpy as np

from .builder import LIBRARY, SOURCE, build  # noqa: F401 (SOURCE: re-exported for tests and tools)

logger = logging.getLogger(__name__)

VERSION = 1  # GRU4REC_I8_VERSION in i8gemv.c: a library built from an older source is not used
ISA_NAMES = {0: "portable C", 2: "AVX2"}

_lib = None  # the loaded library, False once it could not be (not asked again)
_P = ctypes.c_void_p


def _open(path: Path):
    lib = ctypes.CDLL(str(path))
    lib.gru4rec_i8_version.restype = ctypes.c_int
    lib.gru4rec_i8_isa.restype = ctypes.c_int
    lib.gru4rec_i8_sums.argtypes = [_P, _P, _P, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int]
    lib.gru4rec_i8_sums.restype = None
    lib.gru4rec_i8_scores.argtypes = [_P, _P, _P, _P, ctypes.c_float, _P, _P, ctypes.c_size_t, ctypes.c_size_t,
                                      ctypes.c_int]
    lib.gru4rec_i8_scores.restype = None
    if lib.gru4rec_i8_version() != VERSION:
        raise OSError(f"built from another version of i8gemv.c ({lib.gru4rec_i8_version()}, this code needs {VERSION}); "
                      "rebuild it")
    return lib


def library(path: str | os.PathLike | None = None):
    """The loaded kernel library, or None (not built, unloadable, stale, or ``GRU4REC_NATIVE=0``);
    the reason is logged once. ``path``: load that file instead (tests), not cached."""
    global _lib
    if path is not None:
        return _open(Path(path))
    if os.environ.get("GRU4REC_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    if _lib is None:
        if not LIBRARY.exists():
            logger.info("native int8 kernel not built (%s); `python -m recommendations.gru4rec.native build` builds it",
                        LIBRARY)
            _lib = False
        else:
            try:
                _lib = _open(LIBRARY)
            except (OSError, AttributeError) as exc:
                logger.warning("native int8 kernel %s not used: %s", LIBRARY, exc)
                _lib = False
    return _lib or None


def blocked(q8: np.ndarray) -> np.ndarray:
    """The kernel's layout of an int8 matrix [rows, K] (rows a multiple of 8, K of 4): see
    ``i8gemv.c``. A new contiguous array."""
    rows, k = q8.shape
    if rows % 8 or k % 4:
        raise ValueError(f"rows must be a multiple of 8 and K of 4, got {q8.shape}")
    return np.ascontiguousarray(q8.reshape(rows // 8, 8, k // 4, 4).transpose(0, 2, 1, 3))


def unblocked(qb: np.ndarray, rows: int, k: int) -> np.ndarray:
    """The inverse of :func:`blocked`: [rows, K], a new array."""
    return np.ascontiguousarray(qb.reshape(rows // 8, k // 4, 8, 4).transpose(0, 2, 1, 3).reshape(rows, k))


class Kernel:
    """The library's calls on numpy arrays (no checks of shapes in the hot path: the scorer built
    them; see ``i8gemv.c`` for the layout and the value range)."""

    def __init__(self, lib, portable: bool = False):
        self.lib = lib
        self.portable = int(bool(portable))
        self.isa = 0 if portable else int(lib.gru4rec_i8_isa())

    @property
    def name(self) -> str:
        return f"native ({ISA_NAMES.get(self.isa, self.isa)})"

    def sums(self, qb: np.ndarray, a: np.ndarray, rows: int, k: int, out: np.ndarray | None = None) -> np.ndarray:
        out = np.empty(rows, dtype=np.int32) if out is None else out
        self.lib.gru4rec_i8_sums(qb.ctypes.data, a.ctypes.data, out.ctypes.data, rows, k // 4, self.portable)
        return out

    def scores(self, qb, a, scale, bias, t: float, rows: int, k: int, sums: np.ndarray, out: np.ndarray) -> np.ndarray:
        self.lib.gru4rec_i8_scores(qb.ctypes.data, a.ctypes.data, scale.ctypes.data, bias.ctypes.data,
                                   ctypes.c_float(t), sums.ctypes.data, out.ctypes.data, rows, k // 4, self.portable)
        return out


def kernel() -> Kernel | None:
    lib = library()
    return Kernel(lib) if lib is not None else None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["build"]:
        try:
            build()
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        args = []
    if args:
        print("usage: python -m recommendations.gru4rec.native [build]", file=sys.stderr)
        return 2
    k = kernel()
    if k is None:
        reason = "GRU4REC_NATIVE=0" if LIBRARY.exists() else "not built"
        print(f"native int8 kernel: not in use ({reason}: {LIBRARY})")
        return 0 if LIBRARY.exists() else 1
    print(f"native int8 kernel: {LIBRARY}, path {k.name}")
    return 0
