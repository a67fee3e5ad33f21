"""Training, the one orchestrator: record a run, hand it to Celery (or a background thread
without a broker), then export the shop's sessions (or read an event file), train GRU4Rec, V-SKNN
and their hybrid (its weight from the shop's tuned settings, or learnt on validation days carved
from the training part), evaluate the three beside the baselines and the active model on the same
held-out last day, register the versions and activate the best one if it is at least as good as
the active model. The parameters are the shop's training settings (the latest
``ShopTrainingSettings`` row, written by tuning) or, while nothing was tuned, settings.MODEL_TRAIN_PARAMS
and :data:`VSKNN_PARAMS`.
Every entry point (API, admin, task, beat, command, demo) goes through the ``training_run_*``
functions here.

One run at a time: a PostgreSQL session advisory lock on a dedicated connection (tuning runs,
``recommendations.tuning_runs``, execute under it too: tuning and training never overlap). A worker that
dies loses its connection and so its lock; the next run that gets the lock marks the dead run
failed ("worker lost") before it starts. The reaper (beat, every minute) does the same without
waiting for a next run, and fails ``queued`` runs that no worker started (a message lost with a
restarted broker, no worker consuming the training queue), so no run waits forever.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING

import numpy as np
from celery import current_app
from django import db
from django.conf import settings
from django.db import connections, transaction
from django.db.models import Max
from django.utils import timezone

from catalog.selectors import product_external_ids
from tracking.selectors import sessions_training_data

from . import artifacts, engine, registry, selectors
from .gru4rec.params import parse_params
from .models import ModelVersion, ShopTrainingSettings, TrainingRun
from .serving import torch_threads_cap

if TYPE_CHECKING:  # web workers import this module (tasks) and never train: no pandas there
    import pandas as pd

logger = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 0x6752_5534  # "gRU4"
LOG_TAIL_CHARS = 6000
HEARTBEAT_SECONDS = 2.0
# Without PostgreSQL (embedded SQLite) a run with no heartbeat for this long counts as dead.
STALE_SECONDS = 600
# The share of a run's progress bar that GRU4Rec's epochs fill (export before, V-SKNN and evaluation after).
TRAIN_PROGRESS = (0.05, 0.65)
VSKNN_PARAMS = {"k": 100, "sample_size": 500, "similarity": "cosine", "weighting": "linear"}
# The validation days carved from the end of the training part to learn the hybrid's weight on.
HYBRID_VALID_DAYS = 1.0

_local_lock = threading.Lock()


class TrainingBusy(Exception):
    """Another training run holds the lock."""


@contextlib.contextmanager
def training_lock(wait: float = 0.0):
    """Hold the one-at-a-time training lock (raises :class:`TrainingBusy` when still taken after
    ``wait`` seconds)."""
    deadline = time.monotonic() + wait
    if connections["default"].vendor == "postgresql":
        conn = connections.create_connection("default")  # own connection: dies with the process
        try:
            conn.ensure_connection()
            with conn.cursor() as cur:
                while True:
                    cur.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
                    if cur.fetchone()[0]:
                        break
                    if time.monotonic() >= deadline:
                        raise TrainingBusy("another training run or a tuning run is in progress")
                    time.sleep(0.05)
            try:
                yield
            finally:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
        finally:
            conn.close()
    else:
        acquired = _local_lock.acquire(timeout=wait) if wait > 0 else _local_lock.acquire(blocking=False)
        if not acquired:
            raise TrainingBusy("another training run or a tuning run is in progress")
        try:
            yield
        finally:
            _local_lock.release()


class _Reporter:
    """Progress, heartbeat and log tail of one run, written to its row (throttled)."""

    def __init__(self, run: TrainingRun, echo=None):
        self.run = run
        self.echo = echo
        self.lines: list[str] = []
        self.last_write = 0.0
        self.epoch_started = time.monotonic()

    def log(self, msg: str) -> None:
        line = f"{timezone.now():%H:%M:%S} {msg}"
        self.lines.append(line)
        logger.info("training run %s: %s", self.run.pk, msg)
        if self.echo:
            self.echo(line)
        self.save(force=True)

    def stage(self, name: str, progress: float) -> None:
        self.run.stage = name
        self.run.progress = progress
        self.log(name)

    def epoch_progress(self, epoch: int, n_epochs: int, fraction: float, loss: float) -> None:
        """GRU4Rec's progress: the run's progress bar and loss curve (an epoch's point once it is over)."""
        curve = self.run.loss_curve or {"epochs": []}
        curve["current"] = {"epoch": epoch, "n_epochs": n_epochs, "fraction": round(fraction, 4), "loss": loss}
        if fraction >= 1.0:
            curve["epochs"] = [e for e in curve.get("epochs", []) if e["epoch"] != epoch] + [
                {"epoch": epoch, "loss": loss, "seconds": round(time.monotonic() - self.epoch_started, 2)}]
            self.epoch_started = time.monotonic()
        self.run.loss_curve = curve
        self.run.progress = TRAIN_PROGRESS[0] + (TRAIN_PROGRESS[1] - TRAIN_PROGRESS[0]) * (
            (epoch - 1 + fraction) / max(n_epochs, 1))
        self.save(force=fraction >= 1.0)

    def save(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_write < HEARTBEAT_SECONDS:
            return
        self.last_write = now
        tail = "\n".join(self.lines)[-LOG_TAIL_CHARS:]
        self.run.log_tail = tail
        self.run.heartbeat_at = timezone.now()
        TrainingRun.objects.filter(pk=self.run.pk).update(
            stage=self.run.stage, progress=self.run.progress, log_tail=tail, heartbeat_at=self.run.heartbeat_at,
            loss_curve=self.run.loss_curve,
        )


# ------------------------------------------------------------------------------- parameters
def training_params() -> dict:
    """What the next training run trains with: ``{"gru4rec": parameter string, "vsknn": {..},
    "hybrid": {"weight", "fusion", ..} or None (learn it), "source": ..}`` from the shop's current
    training settings (tuning's), else the defaults (settings.MODEL_TRAIN_PARAMS, VSKNN_PARAMS)."""
    row = selectors.training_settings_current()
    tuned = (row.params or {}) if row is not None else {}
    return {
        "gru4rec": tuned.get("gru4rec") or settings.MODEL_TRAIN_PARAMS,
        "vsknn": tuned.get("vsknn") or dict(VSKNN_PARAMS),
        "hybrid": tuned.get("hybrid") or None,
        "source": f"shop training settings {row.pk} (tuning run {row.tuning_run_id})" if row is not None
        else "defaults (MODEL_TRAIN_PARAMS)",
        "settings_id": row.pk if row is not None else None,
    }


def training_settings_check(gru4rec: str, vsknn: dict, hybrid: dict | None = None) -> dict:
    """The shop's training parameters checked by the engine: ``{"gru4rec": parameter string,
    "vsknn": {..}, "hybrid": {"weight", "fusion", .., "gru4rec", "vsknn"} or absent}``. Raises
    ValueError with ``{field: message}`` as its argument, naming each bad field."""
    errors, out = {}, {}
    try:
        out["gru4rec"] = engine.gru4rec_params_string(gru4rec)
    except (ValueError, TypeError) as exc:
        errors["gru4rec"] = str(exc)
    try:
        out["vsknn"] = engine.vsknn_params_check(vsknn)
    except (ValueError, TypeError) as exc:
        errors["vsknn"] = str(exc)
    if hybrid:
        try:
            h = dict(hybrid)
            fusion_params = dict(h.pop("fusion_params", None) or {})
            fusion_params.update({k: h.pop(k) for k in ("c", "depth") if k in h})
            checked = engine.hybrid_fusion_check(h.pop("weight", None), h.pop("fusion", "rrf"), **fusion_params)
            # a tuned weight holds for the component settings it was found with (default: this row's)
            checked["gru4rec"] = engine.gru4rec_params_string(h.pop("gru4rec", None) or out.get("gru4rec") or gru4rec)
            checked["vsknn"] = engine.vsknn_params_check(h.pop("vsknn", None) or out.get("vsknn") or vsknn)
            h = {k: v for k, v in h.items() if k not in ("gru4rec_trial", "vsknn_trial")}
            if h:
                raise ValueError(f"unknown hybrid setting(s): {', '.join(sorted(h))}")
            out["hybrid"] = checked
        except (ValueError, TypeError) as exc:
            errors["hybrid"] = str(exc)
    if errors:
        raise ValueError(errors)
    return out


def training_settings_set(*, gru4rec: str, vsknn: dict, hybrid: dict | None = None, kind: str = "",
                          metrics: dict | None = None, user=None, tuning_run=None) -> ShopTrainingSettings:
    """Make these the shop's training parameters: a new ``ShopTrainingSettings`` row (the history
    stays; the latest row is current), checked first (ValueError as :func:`training_settings_check`)."""
    params = training_settings_check(gru4rec, vsknn, hybrid)
    return ShopTrainingSettings.objects.create(
        params=params, kind=kind, metrics=metrics or {}, tuning_run=tuning_run,
        set_by=user if getattr(user, "is_authenticated", False) else None)


# ------------------------------------------------------------------------------ entry points
class TrainingNotQueued(Exception):
    """The broker did not take a training run's task; the run is marked failed with the reason."""

    def __init__(self, run: TrainingRun):
        super().__init__(run.error)
        self.run = run


NOT_QUEUED = "not queued"  # the stage a run is left in when its task never reached the broker
MODEL_TRAIN_TASK = "recommendations.tasks.model_train"


def training_run_queue(user=None, params: str | None = None, activate: bool = True, data_path: str = "") -> TrainingRun:
    """Record a run and queue the Celery task once the run is committed. When the broker cannot
    take the task within its timeouts (settings: a few seconds, not the length of the outage) the
    run is marked failed, never left ``queued`` with nothing to run it; called outside a
    transaction (the API, the admin) that raises :class:`TrainingNotQueued` as well."""
    run = TrainingRun.objects.create(
        params=params or training_params()["gru4rec"], activate=activate, data_path=data_path,
        requested_by=user if getattr(user, "is_authenticated", False) else None,
    )
    transaction.on_commit(lambda: training_run_publish(run.pk))
    run.refresh_from_db()  # outside a transaction the callback ran already
    if run.status == TrainingRun.Status.FAILED and run.stage == NOT_QUEUED:
        raise TrainingNotQueued(run)
    return run


def training_run_publish(run_id: int) -> bool:
    """Hand a queued run to the broker; on failure mark it failed (the caller reports it). Without
    a broker (settings.TRAINING_IN_THREAD) the run goes to a background thread of this process."""
    def not_queued(reason: str) -> None:
        TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
            status=TrainingRun.Status.FAILED, stage=NOT_QUEUED, finished_at=timezone.now(),
            error=f"not queued: the task broker did not take it ({reason}); "
                  "nothing will run it, start a new run when the broker is back",
        )

    return offline_publish("training run", run_id, MODEL_TRAIN_TASK, training_run_execute, not_queued)


def offline_publish(what: str, run_id: int, task_name: str, execute, not_queued) -> bool:
    """Hand run ``run_id`` to the Celery task ``task_name`` or, with settings.TRAINING_IN_THREAD (no
    broker), to a background thread of this process running ``execute(run_id)``. When the broker
    does not take it, ``not_queued(reason)`` marks the run and False comes back. Training and
    tuning runs both go through here."""
    if settings.TRAINING_IN_THREAD:
        threading.Thread(target=_offline_thread, args=(what, execute, run_id),
                         name=f"{what.replace(' ', '-')}-{run_id}", daemon=True).start()
        return True
    try:
        # By name from Celery's registry: tasks.py calls this module, so importing it here would be a cycle.
        current_app.tasks[task_name].apply_async((run_id,))
    except Exception as exc:  # OperationalError, timeouts, the result store's RuntimeError, ...
        logger.error("%s %s not queued: %s: %s", what, run_id, type(exc).__name__, exc)
        not_queued(f"{type(exc).__name__}: {str(exc).strip()[:300]}")
        return False
    return True


def _offline_thread(what: str, execute, run_id: int) -> None:
    try:
        execute(run_id)
    except Exception:  # the run records its own failures; this is the unforeseen rest
        logger.exception("%s %s failed in its background thread", what, run_id)
    finally:
        db.connections.close_all()  # this thread's connections only


def training_run_now(params: str | None = None, activate: bool = True, data_path: str = "",
                     progress: bool = False, echo=None) -> TrainingRun:
    """Record a run and execute it in this process (the train_model command, the nightly task, the
    demo): the same pipeline as a queued run, without a broker in between."""
    run = TrainingRun.objects.create(params=params or training_params()["gru4rec"], activate=activate,
                                     data_path=data_path)
    return training_run_execute(run.pk, progress=progress, echo=echo)


def stale_runs_fail(exclude_pk: int | None = None, lock_held: bool = True) -> int:
    """Mark runs left ``running`` by a dead worker as failed. With the lock held nobody else can
    be running, so every other running row is dead; otherwise only rows without a recent heartbeat."""
    qs = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING)
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    if not lock_held or connections["default"].vendor != "postgresql":
        qs = qs.filter(heartbeat_at__lt=timezone.now() - timezone.timedelta(seconds=STALE_SECONDS))
    n = 0
    for run in qs:
        last = run.heartbeat_at.isoformat() if run.heartbeat_at else "never"
        n += TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(
            status=TrainingRun.Status.FAILED,
            finished_at=timezone.now(),
            error=f"worker lost (killed or crashed) during stage {run.stage or 'start'!r}; last heartbeat {last}",
        )
    return n


def queued_grace_seconds() -> float:
    return float(getattr(settings, "TRAINING_QUEUE_GRACE_SECONDS", 300))


def queued_runs_fail() -> int:
    """Call with the training lock held (nobody is training). A ``queued`` run that no worker took
    within the grace time of the moment one could have (its creation, or the end of the last run a
    worker executed) never will: its message is gone or no worker consumes the training queue."""
    grace = queued_grace_seconds()
    cutoff = timezone.now() - timezone.timedelta(seconds=grace)
    worker_free_since = TrainingRun.objects.filter(started_at__isnull=False).aggregate(t=Max("finished_at"))["t"]
    if worker_free_since is not None and worker_free_since > cutoff:
        return 0  # a worker has just finished a run: the next queued one is on its way
    return TrainingRun.objects.filter(status=TrainingRun.Status.QUEUED, created__lt=cutoff).update(
        status=TrainingRun.Status.FAILED,
        stage="not started",
        finished_at=timezone.now(),
        error=f"not started: no training worker took it within {grace:.0f} s (the broker lost the message, "
              "or no worker consumes the training queue); start a new run",
    )


def training_runs_reap() -> int:
    """Beat job: mark runs whose worker died as failed without waiting for the next run. When the
    lock is free nobody is training, so every ``running`` row is dead, and ``queued`` rows no
    worker took in time are lost; when it is taken, only rows without a recent heartbeat are."""
    try:
        with training_lock():
            return stale_runs_fail(lock_held=True) + queued_runs_fail()
    except TrainingBusy:
        return stale_runs_fail(lock_held=False)


def events_for_run(run: TrainingRun) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(train, test, split stats) from the run's event file or the shop's own tracked sessions."""
    if run.data_path:
        return engine.events_split(engine.events_read(run.data_path))
    # tracking reads the events and cuts them with the engine's split, in memory (no files)
    data = sessions_training_data(test_days=1, event_types=("view", "click"))
    if len(data.train) == 0:
        raise ValueError(f"no training events in the shop's sessions ({data.events_read} events read)")
    # The models name items by external id, so an artifact stays valid across catalogue
    # re-imports (serving maps the names back to pks when it loads one).
    names = product_external_ids(np.unique(np.concatenate([data.train.item, data.test.item])))
    return engine.events_from_products(data.train, data.test, names)


def training_run_execute(run_id: int, progress: bool = False, echo=None) -> TrainingRun:
    """Execute a queued run (the Celery task, the thread, the command); a run that is not queued
    any more is left alone, so executing twice is safe."""
    run = TrainingRun.objects.get(pk=run_id)
    if run.status != TrainingRun.Status.QUEUED:
        if run.status == TrainingRun.Status.RUNNING:
            # A redelivered task: if nobody holds the lock the first attempt died.
            try:
                with training_lock():
                    stale_runs_fail()
            except TrainingBusy:
                pass
        logger.info("training run %s is %s; nothing to do", run.pk, run.status)
        return TrainingRun.objects.get(pk=run_id)
    try:
        # A short wait: the reaper holds the lock for a moment every minute.
        with training_lock(wait=5.0):
            failed = stale_runs_fail(exclude_pk=run.pk)
            if failed:
                logger.warning("marked %d dead training run(s) failed", failed)
            return _run(run, progress, echo)
    except TrainingBusy as exc:
        TrainingRun.objects.filter(pk=run.pk).update(
            status=TrainingRun.Status.FAILED, error=str(exc), finished_at=timezone.now()
        )
        run.refresh_from_db()
        return run


def _run(run: TrainingRun, progress: bool, echo) -> TrainingRun:
    # Oversubscribed threads make the small per-step kernels crawl (a 15x slowdown on 2 busy cores).
    torch_threads_cap()
    rep = _Reporter(run, echo)
    run.status = TrainingRun.Status.RUNNING
    run.started_at = timezone.now()
    run.error = ""
    # Only from queued: the reaper may have given the run up meanwhile.
    if not TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.QUEUED).update(
            status=run.status, started_at=run.started_at, error=""):
        logger.warning("training run %s is no longer queued; not starting it", run.pk)
        return TrainingRun.objects.get(pk=run.pk)
    try:
        rep.stage("export sessions", 0.02)
        train, test, stats = events_for_run(run)
        rep.log(
            f"train: {stats['train']['events']} events, {stats['train']['sessions']} sessions, "
            f"{stats['train']['items']} items; held-out day: {stats['test']['events']} events"
        )
        models: dict[str, object] = {}
        params: dict[str, dict] = {}
        n_epochs = _epochs(run.params)
        shop_params = training_params()
        knn_params = shop_params["vsknn"]
        rep.log(f"parameters: {shop_params['source']}")

        rep.stage(f"train gru4rec ({n_epochs} epochs)", TRAIN_PROGRESS[0])
        rep.epoch_started = time.monotonic()
        try:
            models["gru4rec"] = engine.gru4rec_train(train, run.params, log=rep.log, progress=progress,
                                                     on_progress=rep.epoch_progress)
            params["gru4rec"] = {"params": parse_params(run.params).to_string()}
        except Exception as exc:  # V-SKNN still gives the shop a model
            logger.exception("GRU4Rec training failed in run %s", run.pk)
            rep.log(f"gru4rec training failed: {type(exc).__name__}: {exc}")
        rep.stage("train vsknn", 0.66)
        models["vsknn"] = engine.vsknn_train(train, **knn_params)
        params["vsknn"] = {"params": knn_params}
        if "gru4rec" in models:
            try:
                hybrid = _hybrid(run, train, models, knn_params, shop_params, rep)
            except Exception as exc:  # the two models still stand on their own
                logger.exception("the hybrid failed in run %s", run.pk)
                rep.log(f"hybrid failed: {type(exc).__name__}: {exc}")
                hybrid = None
            if hybrid is not None:
                models["hybrid"], params["hybrid"] = hybrid

        rep.stage("evaluate on the held-out day", 0.75)
        baselines = {b: engine.evaluate(b, engine.baseline_train(b, train), test) for b in ("popularity", "itemknn")}
        evaluated = {kind: engine.evaluate(kind, m, test) for kind, m in models.items()}
        active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
        active_eval = None
        if active is not None:
            try:
                old = artifacts.model_load(active)
                active_eval = {"version": active.version, "metrics": engine.evaluate(active.kind, old, test)}
            except Exception as exc:
                rep.log(f"could not evaluate the active model {active.version}: {exc}")
        for kind, m in evaluated.items():
            rep.log(f"{kind}: " + ", ".join(f"{n} {m[n]:.4f}" for n in engine.PRIMARY_METRICS))
        for kind, m in baselines.items():
            rep.log(f"{kind} baseline: " + ", ".join(f"{n} {m[n]:.4f}" for n in engine.PRIMARY_METRICS))

        rep.stage("register versions", 0.9)
        registered = {}
        for kind, model in models.items():
            metrics = {"model": evaluated[kind], "baselines": baselines, "active": active_eval,
                       "others": {o: evaluated[o] for o in evaluated if o != kind}, "data": stats}
            registered[kind] = registry.model_version_register(
                kind=kind, model=model, version=registry.model_version_new_name(kind), parameters=params[kind],
                metrics=metrics, train_range=stats["train"], test_range=stats["test"], training_run=run,
            )
            rep.log(f"registered {registered[kind].version} ({registered[kind].artifact})")
        # On equal metrics the simpler model: GRU4Rec, then V-SKNN, then the hybrid.
        best_kind = max(evaluated, key=lambda kk: (engine.metrics_key(evaluated[kk]), -_KIND_ORDER.index(kk)))
        best = registered[best_kind]
        decision = _activate(run, best, rep)
        run.result = {
            "versions": {k: v.version for k, v in registered.items()},
            "best": best.version,
            "activated": decision["activated"],
            "decision": decision["reason"],
            "metrics": evaluated,
            "baselines": baselines,
            "active_before": active_eval,
            "data": stats,
            "parameters": {"source": shop_params["source"], "settings_id": shop_params["settings_id"]},
        }
        run.status = TrainingRun.Status.SUCCEEDED
        run.progress = 1.0
        run.stage = "done"
    except Exception as exc:
        logger.exception("training run %s failed", run.pk)
        run.status = TrainingRun.Status.FAILED
        run.error = f"{type(exc).__name__}: {exc}"
        rep.lines.append(f"failed: {run.error}")
    run.finished_at = timezone.now()
    run.heartbeat_at = run.finished_at
    run.log_tail = "\n".join(rep.lines)[-LOG_TAIL_CHARS:]
    run.save()
    return run


_KIND_ORDER = ("gru4rec", "vsknn", "hybrid")


def _hybrid(run: TrainingRun, train: pd.DataFrame, models: dict, knn_params: dict, shop_params: dict,
            rep: _Reporter) -> tuple[object, dict] | None:
    """The hybrid of the run's GRU4Rec and V-SKNN: the tuned weight and fusion when the shop's
    settings hold them for these very parameters, else learnt on validation days carved from the
    end of the training part (two more models trained on the rest; never the held-out day). None,
    with the reason in the log, when the training part is too short to carve them from."""
    tuned = shop_params["hybrid"]
    # A tuned weight holds for the components it was found with (tuning stores them beside it).
    same = bool(tuned) and (
        engine.gru4rec_params_string(run.params) == engine.gru4rec_params_string(tuned.get("gru4rec") or "")
        and knn_params == tuned.get("vsknn"))
    if same:
        choice = dict(tuned)
        source = f"tuned ({shop_params['source']})"
    else:
        rep.stage(f"learn the hybrid's weight on the last {HYBRID_VALID_DAYS:g} training day(s)", 0.68)
        try:
            choice = engine.hybrid_weight_learn(train, run.params, knn_params, valid_days=HYBRID_VALID_DAYS)
        except ValueError as exc:
            rep.log(f"no hybrid in this run: {exc}")
            return None
        source = f"learnt on the last {HYBRID_VALID_DAYS:g} training day(s)"
    # hybrid_weight_fit names them in "fusion_params" (and beside it); tuned settings store them beside
    fusion_params = choice.get("fusion_params") or {k: choice[k] for k in ("c", "depth") if k in choice}
    model = engine.hybrid_build(models["gru4rec"], models["vsknn"], float(choice["weight"]),
                                choice.get("fusion", "rrf"), **fusion_params)
    rep.log(f"hybrid: weight {float(choice['weight']):.3f} on V-SKNN, fusion {choice.get('fusion', 'rrf')} ({source})")
    return model, {"weight": float(choice["weight"]), "fusion": choice.get("fusion", "rrf"), **fusion_params,
                   "source": source, "validation": choice.get("metrics"),
                   "gru4rec": parse_params(run.params).to_string(), "vsknn": knn_params}


def _activate(run: TrainingRun, best: ModelVersion, rep: _Reporter) -> dict:
    if not run.activate:
        rep.log(f"best is {best.version}; not activated (activation not requested)")
        return {"activated": False, "reason": "activation not requested"}
    try:
        registry.model_activate(best, user=run.requested_by, require_better=settings.MODEL_ACTIVATE_REQUIRES_BETTER)
    except registry.ActivationRefused as exc:
        rep.log(f"not activated: {exc}")
        return {"activated": False, "reason": str(exc)}
    rep.log(f"activated {best.version}")
    return {"activated": True, "reason": "at least as good as the active model on " + ", ".join(engine.PRIMARY_METRICS)}


class EvaluationRefused(Exception):
    """Nothing to evaluate on (no held-out events)."""


def model_version_evaluate(mv: ModelVersion, data_path: str = "") -> dict:
    """A registered version and the baselines on the held-out last day of ``data_path`` (or of the
    shop's own events). Raises ``ArtifactError`` for an unusable artifact, ValueError / OSError for
    unreadable or missing events, :class:`EvaluationRefused` when the held-out day is empty."""
    model = artifacts.model_load(mv)
    train, test, stats = events_for_run(TrainingRun(data_path=data_path))
    if not stats["test"].get("events"):
        raise EvaluationRefused("no held-out data to evaluate on: the last day has no events; import events or "
                                "pass --data FILE")
    out = {"version": mv.version, "held_out": stats["test"], mv.kind: engine.evaluate(mv.kind, model, test)}
    for b in ("popularity", "itemknn"):
        out[b] = engine.evaluate(b, engine.baseline_train(b, train), test)
    return out


def _epochs(params: str) -> int:
    try:
        return parse_params(params).n_epochs
    except Exception:
        return 0
