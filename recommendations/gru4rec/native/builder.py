"""Compile ``i8gemv.c`` into the library the engine loads (standard library only, so that a
Docker build stage without numpy or torch can run it: ``python builder.py OUT``)."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("i8gemv.c")
LIBRARY = Path(__file__).with_name("_i8gemv.so")
# -ffp-contract=off: the fused scores must round as numpy's sequence does (no fused multiply-add)
CFLAGS = ["-O3", "-std=c11", "-fPIC", "-shared", "-ffp-contract=off", "-Wall", "-Wextra"]


def compiler() -> list[str]:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)


def build(out: str | os.PathLike | None = None, quiet: bool = False) -> Path:
    """Compile :data:`SOURCE` into ``out`` (default :data:`LIBRARY`, next to the source), through a
    temporary file renamed into place, so a process loading it never sees half a library. Raises
    RuntimeError with the compiler's message when it fails."""
    out = Path(out) if out is not None else LIBRARY
    fd, tmp = tempfile.mkstemp(prefix=".i8gemv-", suffix=".so", dir=out.parent)
    os.close(fd)
    cmd = [*compiler(), *CFLAGS, "-o", tmp, str(SOURCE)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr.strip()}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    except FileNotFoundError as exc:
        raise RuntimeError(f"no C compiler ({cmd[0]}: {exc.strerror}); set CC or install gcc") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if not quiet:
        print(f"built {out}", file=sys.stderr)
    return out


if __name__ == "__main__":
    if len(sys.argv) > 2:
        sys.exit("usage: python builder.py [OUT]")
    try:
        build(sys.argv[1] if len(sys.argv) == 2 else None)
    except RuntimeError as exc:
        sys.exit(f"error: {exc}")
