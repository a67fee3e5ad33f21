"""Recommendations Celery tasks (training queue): thin wrappers around the training services.
Nothing reads their results (a training run's row is its status), so none is stored: queueing
one never waits on the result store."""
import logging

from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings

logger = logging.getLogger(__name__)


@shared_task(name="recommendations.tasks.model_train", ignore_result=True,
             time_limit=settings.TRAINING_TASK_TIME_LIMIT,
             soft_time_limit=max(settings.TRAINING_TASK_TIME_LIMIT - 60, 60))
def model_train(run_id: int) -> dict:
    """Execute a queued training run; safe to run twice (a finished run is left alone)."""
    from .services import training_run_execute

    run = training_run_execute(run_id)
    return {"run": run.pk, "status": run.status, "result": run.result, "error": run.error}


@shared_task(name="recommendations.tasks.model_train_scheduled", ignore_result=True,
             time_limit=settings.TRAINING_TASK_TIME_LIMIT,
             soft_time_limit=max(settings.TRAINING_TASK_TIME_LIMIT - 60, 60))
def model_train_scheduled() -> dict:
    """Nightly retrain from the shop's own events (beat), activating only a model at least as good."""
    from .models import TrainingRun
    from .services import training_run_execute

    run = TrainingRun.objects.create(params=settings.MODEL_TRAIN_PARAMS, activate=True)
    run = training_run_execute(run.pk)
    return {"run": run.pk, "status": run.status, "error": run.error}


@shared_task(name="recommendations.tasks.training_runs_reap", ignore_result=True)
def training_runs_reap() -> int:
    """Every minute (beat): a run left ``running`` by a killed worker, or ``queued`` with no worker
    taking it (TRAINING_QUEUE_GRACE_SECONDS), is marked failed with the reason."""
    from .training import training_runs_reap as reap

    return reap()


@worker_process_init.connect
def _worker_model_threads(**kwargs):
    # Each worker process serves the active model too (tasks may recommend); cap its torch threads.
    import torch

    torch.set_num_threads(max(1, int(settings.TORCH_NUM_THREADS)))
