"""The model registry: register a trained version, activate it, roll back, delete. Add-ons
(the clusters app) learn of an activation through :func:`activation_hook_register`, so this
module never imports them."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from datetime import timezone as dt_timezone

from django.db import transaction
from django.utils import timezone

from . import artifacts, engine
from .models import ModelActivation, ModelVersion, TrainingRun

logger = logging.getLogger(__name__)


class ActivationRefused(Exception):
    """The candidate is worse than the active model (MODEL_ACTIVATE_REQUIRES_BETTER) or unusable."""


# ------------------------------------------------------------------------------ extension hook
_ACTIVATION_HOOKS: dict[str, Callable[[ModelVersion], None]] = {}


def activation_hook_register(name: str, hook: Callable[[ModelVersion], None]) -> None:
    """Register ``hook(version_row)``, called after an activation (or roll back) commits. A hook
    that raises is logged: it never undoes the activation."""
    _ACTIVATION_HOOKS[name] = hook


def _activation_hooks_run(mv: ModelVersion) -> None:
    for name, hook in list(_ACTIVATION_HOOKS.items()):
        try:
            hook(mv)
        except Exception:
            logger.exception("activation hook %s failed for model version %s", name, mv.version)


# ---------------------------------------------------------------------------------- versions
def model_version_register(*, kind: str, model, version: str, parameters: dict, metrics: dict,
                           train_range: dict | None = None, test_range: dict | None = None,
                           training_run: TrainingRun | None = None) -> ModelVersion:
    """Store the artifact under its content-addressed name and add a ``ready`` registry row."""
    name, digest, size = artifacts.model_write(kind, model, version)

    def ts(r, key):
        value = (r or {}).get(key)
        return None if value is None else datetime.fromtimestamp(float(value), tz=dt_timezone.utc)

    return ModelVersion.objects.create(
        version=version, kind=kind, status=ModelVersion.Status.READY, artifact=name, artifact_sha256=digest,
        artifact_size=size, parameters=parameters, n_items=len(model.item_ids), metrics=metrics,
        train_start=ts(train_range, "time_min"), train_end=ts(train_range, "time_max"),
        test_start=ts(test_range, "time_min"), test_end=ts(test_range, "time_max"), training_run=training_run,
    )


def model_version_new_name(kind: str) -> str:
    base = f"{timezone.now():%Y%m%d-%H%M%S}-{kind}"
    name, n = base, 1
    while ModelVersion.objects.filter(version=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def model_activate(mv: ModelVersion, user=None, require_better: bool = False, *, _rollback_of=None) -> ModelVersion:
    """Make ``mv`` the version every process serves. The artifact's digest is checked first; with
    ``require_better`` the candidate must be at least as good as the active model on the primary
    metrics measured on the same held-out day (``metrics["active"]``). The change is one database
    update; every process reads it within MODEL_RELOAD_INTERVAL_SECONDS (nothing to publish, so a
    Redis stall can neither block the activation nor hide it from a process)."""
    # Load it once here, as every process will: a missing, altered, truncated or incompatible artifact
    # is refused before the database changes, so the active version keeps serving everywhere.
    try:
        artifacts.model_load(mv)
    except engine.ArtifactError as exc:
        raise ActivationRefused(f"{mv.version}: artifact refused: {exc}") from exc
    with transaction.atomic():
        current = ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.ACTIVE).first()
        mv = ModelVersion.objects.select_for_update().get(pk=mv.pk)
        if current is not None and current.pk == mv.pk:
            return mv
        if require_better and current is not None:
            reference = (mv.metrics or {}).get("active") or {}
            ref_metrics = reference.get("metrics") if reference.get("version") == current.version else None
            if ref_metrics is None:
                ref_metrics = (current.metrics or {}).get("model", {})
            candidate = (mv.metrics or {}).get("model", {})
            if not engine.metrics_at_least(candidate, ref_metrics):
                raise ActivationRefused(
                    f"{mv.version} ({_fmt(candidate)}) is worse than the active {current.version} ({_fmt(ref_metrics)})"
                )
        if current is not None:
            current.status = ModelVersion.Status.RETIRED
            current.save(update_fields=["status"])
        mv.status = ModelVersion.Status.ACTIVE
        mv.activated_at = timezone.now()
        mv.activated_by = user if getattr(user, "is_authenticated", False) else None
        mv.save(update_fields=["status", "activated_at", "activated_by"])
        if _rollback_of is not None:
            # Only now, with the activation certain: a refused roll back leaves the history as it was.
            ModelActivation.objects.filter(pk=_rollback_of.pk).update(undone=True)
        ModelActivation.objects.create(
            version=mv, version_name=mv.version, previous=current, previous_name=current.version if current else "",
            action=ModelActivation.Action.ROLLBACK if _rollback_of is not None else ModelActivation.Action.ACTIVATE,
            undone=_rollback_of is not None, by=mv.activated_by,
        )
        transaction.on_commit(lambda row=mv: _activation_hooks_run(row))
    logger.info("model %s activated (was %s)", mv.version, current.version if current else None)
    return mv


def model_rollback(user=None) -> ModelVersion:
    """Undo the latest activation not undone yet: its previous version becomes active again. Each
    roll back walks one step further back through the activation history (A -> B -> C: roll back
    gives B, again gives A), and an activation after a roll back is the new top of the history."""
    with transaction.atomic():
        current = ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.ACTIVE).first()
        if current is None:
            raise ActivationRefused("no active version to roll back from")
        step = (ModelActivation.objects.select_for_update()
                .filter(action=ModelActivation.Action.ACTIVATE, undone=False).order_by("-at", "-id").first())
        if step is None or step.version_id != current.pk:
            raise ActivationRefused(f"the activation history has no earlier version to return to from {current.version}")
        if step.previous is None:
            gone = f" ({step.previous_name} was deleted)" if step.previous_name else ""
            raise ActivationRefused(f"{current.version} is the first activated version{gone}: nothing to roll back to")
        target = step.previous
    return model_activate(target, user=user, _rollback_of=step)


def model_version_delete(mv: ModelVersion) -> None:
    """Delete a version that is not active, and its artifact file once no other row names it.
    The active version is refused: every process serves it and a roll back may return to it."""
    with transaction.atomic():
        mv = ModelVersion.objects.select_for_update().get(pk=mv.pk)
        if mv.status == ModelVersion.Status.ACTIVE:
            raise ActivationRefused(f"{mv.version} is the active version: activate another one before deleting it")
        name = mv.artifact
        shared = ModelVersion.objects.filter(artifact=name).exclude(pk=mv.pk).exists()
        mv.delete()
        if not shared:
            transaction.on_commit(lambda: artifacts.delete(name))


def _fmt(metrics: dict) -> str:
    return ", ".join(f"{n} {float(metrics.get(n, 0.0)):.4f}" for n in engine.PRIMARY_METRICS)
