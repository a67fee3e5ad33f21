"""The one writer and reader of model files (model artifacts and their add-ons such as ANN
indexes): through Django's storage API (``STORAGES["models"]``, a FileSystemStorage under
MODEL_DIR unless configured otherwise), each written once under a name that carries its content
hash. The registry rows store those storage names, never a host path; torch and faiss need a
local file, so each process reads through :func:`local_path` (the file itself on a local storage,
else a copy cached under MODEL_CACHE_DIR)."""
from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, storages

from . import engine

logger = logging.getLogger(__name__)

ArtifactError = engine.ArtifactError


def storage():
    """The models storage. A FileSystemStorage without a location follows settings.MODEL_DIR
    (read each time: tests and the demo point MODEL_DIR elsewhere after start-up)."""
    config = settings.STORAGES.get("models") or {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    options = dict(config.get("OPTIONS") or {})
    backend = config["BACKEND"]
    if backend == "django.core.files.storage.FileSystemStorage" and "location" not in options:
        options.setdefault("file_permissions_mode", 0o444)
        return FileSystemStorage(location=str(settings.MODEL_DIR), **options)
    return storages["models"]


def _save(name: str, tmp_file: Path) -> tuple[str, int]:
    """Store ``tmp_file`` under ``name`` unless a file of that (content-addressed) name exists."""
    st = storage()
    if not st.exists(name):
        with open(tmp_file, "rb") as fh:
            name = st.save(name, File(fh, name=name))
    return name, st.size(name)


def file_write(name_for: Callable[[str], str], write: Callable[[Path], None], suffix: str = "") -> tuple[str, str, int]:
    """``write(tmp_path)``, then store the file as ``name_for(sha256)``; returns (name, sha256, size)."""
    with tempfile.TemporaryDirectory(prefix="shop-artifact-") as tmp:
        tmp_file = Path(tmp) / f"artifact{suffix}"
        write(tmp_file)
        digest = engine.sha256_file(tmp_file)
        name, size = _save(name_for(digest), tmp_file)
    return name, digest, size


def model_write(kind: str, model, version: str) -> tuple[str, str, int]:
    """Store a trained model as ``<kind>-<version>-<sha256[:16]>.<ext>``; returns (name, sha256, size)."""
    ext = engine.artifact_ext(kind)
    safe_version = re.sub(r"[^A-Za-z0-9_.-]", "_", version)
    return file_write(lambda digest: f"{kind}-{safe_version}-{digest[:16]}{ext}",
                      lambda path: engine.artifact_save(kind, model, path), ext)


def _name(name_or_row) -> str:
    return getattr(name_or_row, "artifact", name_or_row)


def _cache_dir() -> Path:
    return Path(getattr(settings, "MODEL_CACHE_DIR", Path(tempfile.gettempdir()) / "shop-models"))


def local_path(name_or_row) -> Path:
    """A local file with the stored content (a registry row's artifact, or a storage name)."""
    name = _name(name_or_row)
    st = storage()
    if isinstance(st, FileSystemStorage):  # the file itself (other backends' path() is no local file)
        return Path(st.path(name))
    # a remote storage (or an in-memory one): this process keeps a local copy
    local = _cache_dir() / name
    if not local.is_file():
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".tmp-{os.getpid()}-{local.name}")
        with st.open(name, "rb") as src, open(tmp, "wb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                dst.write(chunk)
        os.replace(tmp, local)  # atomic: a concurrent reader sees the whole copy or none
    return local


def exists(name: str) -> bool:
    return storage().exists(name)


def model_load(row):
    """The engine model of a registry row, its digest checked (raises :class:`ArtifactError`)."""
    try:
        path = local_path(row)
    except (FileNotFoundError, OSError) as exc:
        raise ArtifactError(f"{row.artifact}: artifact file missing ({exc})") from exc
    return engine.artifact_load(row.kind, path, sha256=row.artifact_sha256)


def file_matches(name: str, sha256: str) -> bool:
    """True when the stored file exists and has the recorded digest."""
    try:
        path = local_path(name)
    except OSError:
        return False
    return path.is_file() and engine.sha256_file(path) == sha256


def delete(name: str) -> None:
    """Remove a stored file (processes that loaded it keep their copy in memory)."""
    st = storage()
    try:
        st.delete(name)
        if not isinstance(st, FileSystemStorage):
            (_cache_dir() / name).unlink(missing_ok=True)
    except OSError:
        logger.warning("could not remove the stored file %s", name)
