"""Tuning runs, the shop's hyperparameter search: record a run, hand it to Celery (or a thread
without a broker), then search GRU4Rec, V-SKNN and hybrid settings with the engine's ``tune`` on
validation days carved from the training part of the shop's events (the held-out day is never
read), store every trial as it ends, and on success make the best parameters the shop's training
settings (a new ``ShopTrainingSettings`` row: the next training run uses them).

One at a time, and never beside a training run: a run executes under ``training.training_lock``,
and the database holds at most one run queued, running or stopping (a partial unique index), so
a double-submitted start creates one run. A run is stopped by setting its status to ``stopping``;
the search polls it between steps (``should_stop``) and ends ``stopped``. Resuming queues the same
run again: its stored trials go back to the search as ``previous`` (not re-run), the numbering
continues, and the time budget left is the budget less the time already spent.
"""
from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import engine, selectors, training
from .models import ShopTrainingSettings, TrainingRun, TuningRun, TuningTrial
from .serving import torch_threads_cap

logger = logging.getLogger(__name__)

TUNE_TASK = "recommendations.tasks.tune_model"
KINDS = ("gru4rec", "vsknn", "hybrid")
MAX_TRIALS = 1000
MIN_TRIALS = len(KINDS)  # the search gives each kind at least one trial
LOG_TAIL_CHARS = 6000
STOP_POLL_SECONDS = 1.0
NOT_QUEUED = "not queued"


class TuningBusy(Exception):
    """Another tuning run is queued, running or stopping (one at a time)."""


class TuningRefused(Exception):
    """The request does not fit the run's state or is invalid (the message says which and why)."""


class TuningNotQueued(Exception):
    """The broker did not take the run's task; the run is marked failed with the reason."""

    def __init__(self, run: TuningRun):
        super().__init__(run.error)
        self.run = run


# ------------------------------------------------------------------------------ entry points
def tuning_run_validate(trials, timeout) -> tuple[int, int | None]:
    """(trials, timeout) checked: MIN_TRIALS..MAX_TRIALS trials, a timeout of at least 1 s or None."""
    if isinstance(trials, bool) or not isinstance(trials, int) or not MIN_TRIALS <= trials <= MAX_TRIALS:
        raise TuningRefused(f"trials must be a whole number from {MIN_TRIALS} (one per kind: {', '.join(KINDS)}) "
                            f"to {MAX_TRIALS} (got {trials!r})")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1):
        raise TuningRefused(f"timeout must be a whole number of seconds, at least 1 (got {timeout!r})")
    return trials, timeout


def tuning_run_queue(user=None, trials: int = 30, timeout: int | None = None, data_path: str = "",
                     publish: bool = True) -> TuningRun:
    """Record a run and queue its task once committed. Refused (:class:`TuningBusy`) while another
    run is queued, running or stopping; a run whose worker died is reaped first. ``publish=False``:
    the caller executes it in-process (the command)."""
    trials, timeout = tuning_run_validate(trials, timeout)
    tuning_runs_reap()
    try:
        with transaction.atomic():
            run = TuningRun.objects.create(
                trials=trials, timeout=timeout, data_path=data_path,
                requested_by=user if getattr(user, "is_authenticated", False) else None,
            )
    except IntegrityError:
        active = selectors.tuning_run_active()
        what = f"tuning run {active.pk} is {active.status}" if active else "another tuning run is active"
        raise TuningBusy(f"{what}: one tuning run at a time (stop it, or wait until it ends)") from None
    if publish:
        transaction.on_commit(lambda: tuning_run_publish(run.pk))
        run.refresh_from_db()
        if run.status == TuningRun.Status.FAILED and run.log_tail == NOT_QUEUED:
            raise TuningNotQueued(run)
    return run


def tuning_run_publish(run_id: int) -> bool:
    """Hand a queued run to the broker (or a thread without one); on failure mark it failed."""
    def not_queued(reason: str) -> None:
        TuningRun.objects.filter(pk=run_id, status=TuningRun.Status.QUEUED).update(
            status=TuningRun.Status.FAILED, log_tail=NOT_QUEUED, finished_at=timezone.now(),
            error=f"not queued: the task broker did not take it ({reason}); start or resume it when the broker is back",
        )

    return training.offline_publish("tuning run", run_id, TUNE_TASK, tuning_run_execute, not_queued)


def tuning_run_stop(run: TuningRun, user=None) -> TuningRun:
    """Ask a run to stop: a queued one stops at once, a running one after its current step (it
    ends ``stopped`` and can be resumed). Stopping a run that is stopping already is a no-op."""
    with transaction.atomic():
        run = TuningRun.objects.select_for_update().get(pk=run.pk)
        if run.status == TuningRun.Status.QUEUED:
            run.status = TuningRun.Status.STOPPED
            run.finished_at = timezone.now()
        elif run.status == TuningRun.Status.RUNNING:
            run.status = TuningRun.Status.STOPPING
        elif run.status != TuningRun.Status.STOPPING:
            raise TuningRefused(f"tuning run {run.pk} is {run.status}: only a queued or running run can be stopped")
        run.save(update_fields=["status", "finished_at"])
    logger.info("tuning run %s: stop requested by %s", run.pk, user or "-")
    return run


def tuning_run_resume(run: TuningRun, user=None, publish: bool = True) -> TuningRun:
    """Queue a stopped (or failed) run again; it continues from its stored trials. Refused while
    another run is active, and for a run that has finished."""
    tuning_runs_reap()
    try:
        with transaction.atomic():
            run = TuningRun.objects.select_for_update().get(pk=run.pk)
            if run.status not in (TuningRun.Status.STOPPED, TuningRun.Status.FAILED):
                raise TuningRefused(f"tuning run {run.pk} is {run.status}: only a stopped or failed run can be resumed")
            run.status = TuningRun.Status.QUEUED
            run.error = ""
            run.finished_at = None
            run.save(update_fields=["status", "error", "finished_at"])
    except IntegrityError:
        active = selectors.tuning_run_active()
        raise TuningBusy(f"tuning run {active.pk if active else '?'} is active: one tuning run at a time") from None
    logger.info("tuning run %s resumed by %s", run.pk, user or "-")
    if publish:
        transaction.on_commit(lambda: tuning_run_publish(run.pk))
        run.refresh_from_db()
        if run.status == TuningRun.Status.FAILED and run.log_tail == NOT_QUEUED:
            raise TuningNotQueued(run)
    return run


def tuning_runs_reap() -> int:
    """Runs left ``running`` or ``stopping`` by a dead worker end ``stopped`` (resumable), with
    the reason. When the training lock is free nobody tunes, so every such row is dead; when it
    is taken, only rows without a heartbeat for training.STALE_SECONDS are."""
    qs = TuningRun.objects.filter(status__in=(TuningRun.Status.RUNNING, TuningRun.Status.STOPPING))
    try:
        with training.training_lock():
            return _reap(qs)
    except training.TrainingBusy:
        return _reap(qs.filter(heartbeat_at__lt=timezone.now() - timezone.timedelta(seconds=training.STALE_SECONDS)))


def _reap(qs) -> int:
    n = 0
    for run in qs:
        last = run.heartbeat_at.isoformat() if run.heartbeat_at else "never"
        n += TuningRun.objects.filter(pk=run.pk, status=run.status).update(
            status=TuningRun.Status.STOPPED, finished_at=timezone.now(),
            error=f"worker lost (killed or crashed) while {run.status}; last heartbeat {last}; resume to continue")
    return n


# --------------------------------------------------------------------------------- executing
def tuning_run_execute(run_id: int, progress: bool = False, echo=None) -> TuningRun:
    """Execute a queued run (the task, the thread, the command) under the training lock; a run
    that is not queued any more is left alone, so executing twice is safe."""
    run = TuningRun.objects.get(pk=run_id)
    if run.status != TuningRun.Status.QUEUED:
        logger.info("tuning run %s is %s; nothing to do", run.pk, run.status)
        return run
    try:
        with training.training_lock(wait=5.0):
            return _execute(run, progress, echo)
    except training.TrainingBusy:
        TuningRun.objects.filter(pk=run.pk, status=TuningRun.Status.QUEUED).update(
            status=TuningRun.Status.FAILED, finished_at=timezone.now(),
            error="a training run or another tuning run holds the training lock; resume this run when it has ended")
        return TuningRun.objects.get(pk=run.pk)


class _Recorder:
    """The run's log tail, heartbeat, trials and stop flag, written to / read from its row."""

    def __init__(self, run: TuningRun, echo=None):
        self.run = run
        self.echo = echo
        self.lines: list[str] = (run.log_tail.splitlines() if run.log_tail and run.log_tail != NOT_QUEUED else [])
        self.last_poll = 0.0
        self.stopping = False

    def log(self, msg: str) -> None:
        line = f"{timezone.now():%H:%M:%S} {msg}"
        self.lines.append(line)
        logger.info("tuning run %s: %s", self.run.pk, msg)
        if self.echo:
            self.echo(line)
        TuningRun.objects.filter(pk=self.run.pk).update(log_tail="\n".join(self.lines)[-LOG_TAIL_CHARS:],
                                                        heartbeat_at=timezone.now())

    def on_trial(self, record) -> None:
        trial_store(self.run, record)  # the search logs the trial's line itself

    def should_stop(self) -> bool:
        now = time.monotonic()
        if self.stopping or now - self.last_poll < STOP_POLL_SECONDS:
            return self.stopping
        self.last_poll = now
        status = TuningRun.objects.filter(pk=self.run.pk).values_list("status", flat=True).first()
        TuningRun.objects.filter(pk=self.run.pk).update(heartbeat_at=timezone.now())
        self.stopping = status != TuningRun.Status.RUNNING
        return self.stopping


def _execute(run: TuningRun, progress: bool, echo) -> TuningRun:
    from .gru4rec.tuning import TrialRecord, tune  # why: first use: web workers never tune (optuna, pandas)

    torch_threads_cap()
    started = timezone.now()
    if not TuningRun.objects.filter(pk=run.pk, status=TuningRun.Status.QUEUED).update(
            status=TuningRun.Status.RUNNING, started_at=run.started_at or started, heartbeat_at=started, error=""):
        return TuningRun.objects.get(pk=run.pk)
    run.refresh_from_db()
    rec = _Recorder(run, echo)
    status, error, elapsed = TuningRun.Status.FAILED, "", 0.0
    t0 = time.monotonic()
    try:
        previous = [TrialRecord.from_dict(trial_as_dict(t)) for t in selectors.tuning_trials(run)]
        left = run.trials - len(previous)
        budget = None if run.timeout is None else run.timeout - run.elapsed_s
        rec.log(f"{'resumed' if previous else 'started'}: {len(previous)} stored trial(s), {max(left, 0)} to go"
                + ("" if budget is None else f", {max(budget, 0):.0f} s of the time budget left"))
        if left <= 0 or (budget is not None and budget <= 0):
            status = TuningRun.Status.SUCCEEDED
        else:
            # The held-out last day (the training run's test) is cut off here and never read:
            # the search carves its validation days from the training part.
            train, _test, stats = training.events_for_run(TrainingRun(data_path=run.data_path))
            rec.log(f"training part: {stats['train']['events']} events, {stats['train']['sessions']} sessions, "
                    f"{stats['train']['items']} items (the held-out day is not used)")
            # ``trials`` counts the previous ones too; the time budget is this start's
            result = tune(train, trials=run.trials, timeout=budget, kinds=KINDS, previous=previous,
                          on_trial=rec.on_trial, should_stop=rec.should_stop, progress=progress, log=rec.log)
            for record in result.trials:  # the callbacks stored them; again, idempotently, in case one was missed
                trial_store(run, record)
            status = TuningRun.Status.STOPPED if (result.stopped or rec.stopping) else TuningRun.Status.SUCCEEDED
        if status == TuningRun.Status.SUCCEEDED:
            row = training_settings_from_run(run)
            rec.log(f"the shop's training settings are now {row.pk} (best kind {row.kind})" if row is not None
                    else "no completed trial: the shop's training settings are unchanged")
        else:
            rec.log("stopped; resume to continue")
    except Exception as exc:
        logger.exception("tuning run %s failed", run.pk)
        error = f"{type(exc).__name__}: {exc}"
        rec.log(f"failed: {error}")
    elapsed = time.monotonic() - t0
    now = timezone.now()
    TuningRun.objects.filter(pk=run.pk).update(
        status=status, error=error, finished_at=now, heartbeat_at=now, elapsed_s=run.elapsed_s + elapsed,
        best=best_of(run))
    return TuningRun.objects.get(pk=run.pk)


# ----------------------------------------------------------------------------------- trials
def _objective(record) -> float | None:
    metrics = record.metrics or {}
    value = metrics.get("objective")
    if value is None and "recall@20" in metrics and "mrr@20" in metrics:
        value = engine.objective(metrics)
    return None if value is None else float(value)


def trial_store(run: TuningRun, record) -> TuningTrial:
    """Store one trial (idempotent: (run, number) is unique; a second store updates the row)."""
    values = {"kind": record.kind, "params": record.params or {}, "metrics": record.metrics or {},
              "objective": _objective(record), "state": record.state, "duration_s": float(record.duration_s or 0.0),
              "epochs": record.epochs, "error": record.error or "",
              "epoch_objectives": list(getattr(record, "epoch_objectives", None) or [])}
    trial, _ = TuningTrial.objects.update_or_create(run=run, number=record.number, defaults=values)
    TuningRun.objects.filter(pk=run.pk).update(best=best_of(run), heartbeat_at=timezone.now())
    return trial


def trial_as_dict(trial: TuningTrial) -> dict:
    """A stored trial as the engine's ``TrialRecord.from_dict`` reads it."""
    return {"number": trial.number, "kind": trial.kind, "params": trial.params, "metrics": trial.metrics,
            "state": trial.state, "duration_s": trial.duration_s, "epochs": trial.epochs, "error": trial.error,
            "epoch_objectives": trial.epoch_objectives}


def best_of(run: TuningRun) -> dict:
    """The best completed trial overall and of each kind, by objective (ties: the earlier trial)."""
    out: dict[str, dict] = {}
    for t in selectors.tuning_trials(run).filter(state=TuningTrial.State.COMPLETE, objective__isnull=False):
        entry = {"number": t.number, "kind": t.kind, "params": t.params, "metrics": t.metrics, "objective": t.objective}
        for key in ("overall", t.kind):
            if key not in out or t.objective > out[key]["objective"]:
                out[key] = entry
    return out


def training_settings_from_run(run: TuningRun) -> ShopTrainingSettings | None:
    """Make the run's best parameters the shop's training settings (a new row; who: the user who
    started the run). None when no trial completed. The training run trains the three kinds, so
    each kind's best goes in: GRU4Rec's parameter string, V-SKNN's settings, and the hybrid's
    weight and fusion (with the component parameters it was found with)."""
    best = best_of(run)
    if "overall" not in best:
        return None
    gru4rec = best["gru4rec"]["params"] if "gru4rec" in best else settings.MODEL_TRAIN_PARAMS
    vsknn = best["vsknn"]["params"] if "vsknn" in best else dict(training.VSKNN_PARAMS)
    hybrid = best["hybrid"]["params"] if "hybrid" in best else None
    if best["overall"]["kind"] == "hybrid":
        # The winner is the hybrid: train its components with the settings it was found with.
        gru4rec, vsknn = hybrid["gru4rec"], hybrid["vsknn"]
    metrics = {k: {"metrics": v["metrics"], "objective": v["objective"], "trial": v["number"]} for k, v in best.items()}
    return training.training_settings_set(gru4rec=gru4rec, vsknn=vsknn, hybrid=hybrid, kind=best["overall"]["kind"],
                                          metrics=metrics, user=run.requested_by, tuning_run=run)
