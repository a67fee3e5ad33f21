"""The model this process serves: a cache of the registry row that says which version is active.

Every ``MODEL_RELOAD_INTERVAL_SECONDS`` a caller of :func:`model_current` reads the active
version from the database (one indexed query per process per interval; Redis is not asked: a
mirror there could miss a write during a stall and then override the database for minutes);
when it changed, the new artifact is loaded completely (digest checked, engine checks) and only
then swapped in by rebinding one reference, so concurrent requests see either the old or the new
bundle, never a half-loaded one. A version that fails to load is refused and remembered for a
while; the old one keeps serving, and /health/ reports it once that lasts beyond
:func:`reload_bound_seconds`. A web worker loads the active version when it starts
(:func:`warm_up`, called from shop/wsgi.py); /health/ only reports.

Extension hook: :func:`extra_loader_register` adds a function called for every bundle after the
engine is loaded (``fn(bundle, version_row) -> object``); its result lands in
``bundle.extras[name]``. The clustering / ANN work registers its loaders there.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from django.conf import settings

from catalog.models import Product

from . import artifacts, caches
from .models import Experiment, ExperimentArm, ModelVersion

logger = logging.getLogger(__name__)

REFUSED_RETRY_SECONDS = 60.0
# Time a process may take to load a newly active artifact (and its add-ons) after it noticed the
# change; with the reload interval it makes the bound /health/ holds every process to.
LOAD_GRACE_SECONDS = 30.0


def reload_bound_seconds() -> float:
    """How long after an activation every serving process must serve the new version."""
    return float(settings.MODEL_RELOAD_INTERVAL_SECONDS) + float(
        getattr(settings, "MODEL_LOAD_GRACE_SECONDS", LOAD_GRACE_SECONDS))


@dataclass(eq=False)
class LoadedModel:
    """Everything a process needs to serve one model version, built once per version.

    ``index_pk[i]`` is the catalogue product pk of model item i (-1 when the catalogue has no such
    product), ``pk_index`` the reverse map, ``unavailable`` a score mask (-inf for items that are
    not active products at load time; None when all are). ``extras`` is for per-version add-ons (clusters, ANN index).
    """

    version: str
    kind: str
    engine: object
    item_ids: list[str]
    index_pk: np.ndarray
    pk_index: dict[int, int]
    unavailable: torch.Tensor | None
    loaded_at: float = field(default_factory=time.time)
    load_seconds: float = 0.0
    extras: dict = field(default_factory=dict)
    # the engine's recent answers (ranking's candidate lists), gone with this bundle
    answers: caches.AnswerCache = field(
        default_factory=lambda: caches.AnswerCache(getattr(settings, "RECOMMEND_ANSWER_CACHE", 4096)))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


# ------------------------------------------------------------------------------ extension hook
_EXTRA_LOADERS: dict[str, Callable] = {}


def extra_loader_register(name: str, loader: Callable) -> None:
    """Register ``loader(bundle, version_row) -> object``, run for every bundle loaded afterwards.
    A loader that raises is logged and skipped: an add-on never blocks serving the model itself."""
    _EXTRA_LOADERS[name] = loader


# ---------------------------------------------------------------------------------- loading
def torch_threads_cap() -> None:
    """Cap this process's torch threads at TORCH_NUM_THREADS (web and Celery processes share cores)."""
    n = max(1, int(settings.TORCH_NUM_THREADS))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def bundle_load(row) -> LoadedModel:
    """Load a registry row into a :class:`LoadedModel`; raises ``artifacts.ArtifactError`` if refused."""
    torch_threads_cap()
    t0 = time.perf_counter()
    model = artifacts.model_load(row)
    prepare = getattr(model, "serving_prepare", None)
    if prepare is not None:  # GRU4Rec: the int8 candidate copy now, not on the first request
        prepare()
    item_ids = [str(i) for i in model.item_ids]
    index_pk = np.full(len(item_ids), -1, dtype=np.int64)
    position = {item: i for i, item in enumerate(item_ids)}
    active = np.zeros(len(item_ids), dtype=bool)
    ext_field = "external_id"
    # One query over the catalogue (chunked IN lists would be slower for 40k items).
    for pk, ext, is_active in Product.objects.values_list("pk", ext_field, "is_active").iterator(chunk_size=5000):
        i = position.get(ext)
        if i is not None:
            index_pk[i] = pk
            active[i] = is_active
    unavailable = None  # no mask to add per request when every item is an active product
    if not active.all():
        unavailable = torch.zeros(len(item_ids))
        unavailable[torch.from_numpy(~active)] = -torch.inf
    bundle = LoadedModel(
        version=row.version,
        kind=row.kind,
        engine=model,
        item_ids=item_ids,
        index_pk=index_pk,
        pk_index={int(pk): i for i, pk in enumerate(index_pk) if pk >= 0},
        unavailable=unavailable,
    )
    for name, loader in _EXTRA_LOADERS.items():
        try:
            bundle.extras[name] = loader(bundle, row)
        except Exception:  # an add-on never blocks the model itself
            logger.exception("extra loader %s failed for model %s", name, row.version)
    bundle.load_seconds = time.perf_counter() - t0
    return bundle


def _heap_trim() -> None:
    """Hand the freed memory of a replaced bundle back to the OS: glibc keeps freed heap pages, and
    a web worker's RSS grew with every reload (40k-item model: 366 MB, 412 MB after three reloads,
    371 MB with this)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


# ------------------------------------------------------------------------- experiments' specs
@dataclass(frozen=True)
class ArmSpec:
    """One arm as serving needs it: ``version`` None is the popular list."""

    pk: int
    name: str
    version: str | None
    share: float
    is_control: bool


@dataclass(frozen=True)
class ExperimentSpec:
    """A running experiment as every process holds it (read on the reload timer, never per request)."""

    pk: int
    surface: str
    mode: str
    salt: str
    arms: tuple[ArmSpec, ...]

    @property
    def shares(self) -> list[float]:
        return [a.share for a in self.arms]

    def source(self, arm: ArmSpec) -> str:
        """The event source of the items this arm serves: the surface, the experiment and the arm
        ("recommended-x3-7"). The served-item token signs it, so no client can move an event to
        another arm or experiment (tracking.attribution)."""
        return arm_source(self.surface, self.pk, arm.pk)


def arm_source(surface: str, experiment_pk: int, arm_pk: int) -> str:
    return f"{surface}-x{int(experiment_pk)}-{int(arm_pk)}"


# ------------------------------------------------------------------------- the process state
class _State:
    def __init__(self):
        self.bundle: LoadedModel | None = None
        self.checked_at = 0.0  # monotonic time of the last version check
        self.wanted: str | None = None  # the active version as last read from the database
        self.refused: dict[str, float] = {}  # version -> monotonic time it was refused
        self.lock = threading.Lock()
        self.started_at = time.monotonic()
        self.warmed_up = False
        # The running experiments by surface, as of the last check, and the bundles of their arms'
        # versions other than the active one (version -> bundle).
        self.experiments: dict[str, ExperimentSpec] = {}
        self.arm_bundles: dict[str, LoadedModel] = {}


_state = _State()


def active_row():
    """The registry's active row (None when no version is active): the partial unique index on
    ``status = 'active'`` makes this a one-row index lookup."""
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).order_by().first()


def active_version() -> str | None:
    """The active version, as the database says now."""
    found = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).order_by().values_list("version", flat=True)
    return next(iter(found[:1]), None)


def _sync(force: bool = False) -> None:
    now = time.monotonic()
    if not force and now - _state.checked_at < settings.MODEL_RELOAD_INTERVAL_SECONDS:
        return
    # One thread checks and loads; the others keep serving the current bundle meanwhile.
    if not _state.lock.acquire(blocking=force):
        return
    try:
        now = time.monotonic()
        if not force and now - _state.checked_at < settings.MODEL_RELOAD_INTERVAL_SECONDS:
            return
        _state.checked_at = now
        _active_sync(now)
        _experiments_sync(now)
    finally:
        _state.lock.release()


def _active_sync(now: float) -> None:
    """The active version's part of a check (under the state's lock)."""
    try:
        wanted = active_version()
    except Exception:
        logger.exception("cannot read the active model version; keeping %s", model_version_loaded())
        return
    _state.wanted = wanted
    current = _state.bundle
    if wanted is None:
        if current is not None:
            logger.info("no active model version any more; unloading %s", current.version)
        _state.bundle = None
        return
    if current is not None and current.version == wanted:
        return
    refused_at = _state.refused.get(wanted)
    if refused_at is not None and now - refused_at < REFUSED_RETRY_SECONDS:
        return
    held = _state.arm_bundles.get(wanted)
    if held is not None:  # an experiment's arm became the active version (promote): no second load
        _state.bundle = held
        return
    row = ModelVersion.objects.filter(version=wanted).first()
    if row is None:
        return
    try:
        bundle = bundle_load(row)
    except Exception as exc:
        _state.refused[wanted] = now
        logger.error("model %s refused, still serving %s: %s", wanted, model_version_loaded(), exc)
        return
    _state.bundle = bundle  # the swap: one reference rebinding
    _state.refused.pop(wanted, None)
    current = None  # the old bundle goes (unless a request in another thread still holds it)
    _heap_trim()
    logger.info("model %s loaded in %.3f s (%d items) by process %d", bundle.version, bundle.load_seconds,
                bundle.n_items, os.getpid())


def experiments_read() -> dict[str, ExperimentSpec]:
    """The running experiments by surface, from the database (one query)."""
    rows = (ExperimentArm.objects.filter(experiment__status=Experiment.Status.RUNNING)
            .order_by("experiment_id", "id")
            .values_list("experiment_id", "experiment__surface", "experiment__mode", "experiment__salt",
                         "pk", "name", "model_version__version", "share", "is_control"))
    found: dict[int, tuple] = {}
    for exp_pk, surface, mode, salt, arm_pk, name, version, share, is_control in rows:
        head, arms = found.setdefault(exp_pk, ((surface, mode, salt), []))
        arms.append(ArmSpec(arm_pk, name, version, float(share), bool(is_control)))
    return {head[0]: ExperimentSpec(pk, head[0], head[1], head[2], tuple(arms)) for pk, (head, arms) in found.items()}


def _experiments_sync(now: float) -> None:
    """The running experiments' part of a check (under the state's lock): read them, load the arms'
    versions that are not the active one (like the active one: complete, then swapped in), and
    forget the bundles no running experiment needs any more. An arm whose model cannot be loaded
    is not served (its visits get the active model, outside the experiment) until it loads."""
    try:
        experiments = experiments_read()
    except Exception:
        logger.exception("cannot read the running experiments; keeping %s", sorted(_state.experiments))
        return
    active = _state.bundle
    needed = {a.version for e in experiments.values() for a in e.arms if a.version}
    if active is not None:
        needed.discard(active.version)
    bundles = {v: b for v, b in _state.arm_bundles.items() if v in needed}
    dropped = len(bundles) < len(_state.arm_bundles)
    for version in sorted(needed - set(bundles)):
        refused_at = _state.refused.get(version)
        if refused_at is not None and now - refused_at < REFUSED_RETRY_SECONDS:
            continue
        row = ModelVersion.objects.filter(version=version).first()
        if row is None:
            continue
        try:
            bundles[version] = bundle_load(row)
        except Exception as exc:
            _state.refused[version] = now
            logger.error("experiment arm model %s refused: %s", version, exc)
            continue
        _state.refused.pop(version, None)
        logger.info("experiment arm model %s loaded in %.3f s (%d items) by process %d", version,
                    bundles[version].load_seconds, bundles[version].n_items, os.getpid())
    _state.arm_bundles = bundles  # one rebinding each: a request sees the old or the new state
    _state.experiments = experiments
    if dropped:
        _heap_trim()


def experiment_running(surface: str) -> ExperimentSpec | None:
    """The experiment running on ``surface`` as this process knows it (checked on the reload timer)."""
    try:
        _sync()
    except Exception:  # serving must not fail because the check failed
        logger.exception("model version check failed")
    return _state.experiments.get(surface)


def bundle_for(version: str | None) -> LoadedModel | None:
    """The loaded bundle of ``version`` (the active one or an experiment arm's), None if not loaded."""
    if not version:
        return None
    active = _state.bundle
    if active is not None and active.version == version:
        return active
    return _state.arm_bundles.get(version)


def arm_versions_loaded() -> list[str]:
    """The experiment arms' versions this process holds besides the active one."""
    return sorted(_state.arm_bundles)


def model_current() -> LoadedModel | None:
    """The bundle to serve now (None when no usable model); checks for a new version on a timer."""
    try:
        _sync()
    except Exception:  # serving must not fail because the check failed
        logger.exception("model version check failed")
    return _state.bundle


def model_reload(force: bool = True) -> LoadedModel | None:
    """Check now and load the active version if it changed (CLI, tests, worker start)."""
    _sync(force=force)
    return _state.bundle


def model_version_loaded() -> str | None:
    bundle = _state.bundle
    return bundle.version if bundle else None


def model_version_wanted() -> str | None:
    return _state.wanted


def model_version_refused() -> list[str]:
    return sorted(_state.refused)


def model_unload() -> None:
    """Forget the loaded model (tests; ``caches.reset()`` calls it)."""
    with _state.lock:
        _state.bundle = None
        _state.checked_at = 0.0
        _state.wanted = None
        _state.refused.clear()
        _state.experiments = {}
        _state.arm_bundles = {}


caches.reset_register("serving", model_unload)


def warm_up() -> LoadedModel | None:
    """Load the active version now (web worker start, shop/wsgi.py), so the first request and the
    health check find it loaded; a failure is logged and the first request tries again."""
    try:
        return model_reload(force=True)
    except Exception:
        logger.exception("model warm-up failed; the first request loads the model")
        return None
    finally:
        _state.warmed_up = True


def starting() -> bool:
    """True while a process just started has not warmed up yet, for at most the reload bound:
    /health/ does not hold a process that is still loading its first model against the registry."""
    return not _state.warmed_up and time.monotonic() - _state.started_at <= reload_bound_seconds()
