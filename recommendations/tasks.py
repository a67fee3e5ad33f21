"""Recommendations Celery tasks (training queue): thin wrappers around ``training`` and
``tuning_runs``; each takes
primary keys, calls one training function and is safe to run twice. Nothing reads their results
(a training run's row is its status), so none is stored: queueing one never waits on the result
store."""
import logging

import torch
from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings

from . import training, tuning_runs

logger = logging.getLogger(__name__)


@shared_task(name=training.MODEL_TRAIN_TASK, ignore_result=True,
             time_limit=settings.TRAINING_TASK_TIME_LIMIT,
             soft_time_limit=max(settings.TRAINING_TASK_TIME_LIMIT - 60, 60))
def model_train(run_id: int) -> dict:
    """Execute a queued training run; safe to run twice (a finished run is left alone)."""
    run = training.training_run_execute(run_id)
    return {"run": run.pk, "status": run.status, "result": run.result, "error": run.error}


@shared_task(name="recommendations.tasks.model_train_scheduled", ignore_result=True,
             time_limit=settings.TRAINING_TASK_TIME_LIMIT,
             soft_time_limit=max(settings.TRAINING_TASK_TIME_LIMIT - 60, 60))
def model_train_scheduled() -> dict:
    """Nightly retrain from the shop's own events (beat), activating only a model at least as good."""
    run = training.training_run_now(activate=True)  # the shop's training settings (tuned) or the defaults
    return {"run": run.pk, "status": run.status, "error": run.error}


@shared_task(name="recommendations.tasks.training_runs_reap", ignore_result=True)
def training_runs_reap() -> int:
    """Every minute (beat): a run left ``running`` by a killed worker, or ``queued`` with no worker
    taking it (TRAINING_QUEUE_GRACE_SECONDS), is marked failed with the reason; a tuning run left
    running by a killed worker ends stopped (resumable)."""
    return training.training_runs_reap() + tuning_runs.tuning_runs_reap()


@shared_task(name=tuning_runs.TUNE_TASK, ignore_result=True,
             time_limit=settings.TRAINING_TASK_TIME_LIMIT,
             soft_time_limit=max(settings.TRAINING_TASK_TIME_LIMIT - 60, 60))
def tune_model(run_id: int) -> dict:
    """Execute a queued tuning run; safe to run twice (a run that is not queued is left alone)."""
    run = tuning_runs.tuning_run_execute(run_id)
    return {"run": run.pk, "status": run.status, "error": run.error}


@worker_process_init.connect
def _worker_model_threads(**kwargs):
    # Each worker process serves the active model too (tasks may recommend); cap its torch threads.
    torch.set_num_threads(max(1, int(settings.TORCH_NUM_THREADS)))
