"""The Celery training task end to end through a real Redis broker and worker process, a worker
killed mid-run (its run is failed, the lock freed, a new run succeeds), and the eager path."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection

from recommendations import artifacts, serving
from recommendations.gru4rec.formats import write_tsv
from recommendations.models import ModelVersion, TrainingRun
from recommendations.training import training_run_execute
from recommendations.tests.conftest import SMALL_PARAMS

ROOT = Path(__file__).resolve().parents[2]
BROKER = os.environ.get("TEST_BROKER_URL", "")


def _worker(tmp_path):
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        CELERY_BROKER_URL=BROKER, CELERY_RESULT_BACKEND="", CELERY_TASK_ALWAYS_EAGER="false",
        MODEL_DIR=str(settings.MODEL_DIR), DJANGO_SETTINGS_MODULE="shop.settings", TORCH_NUM_THREADS="1",
    )
    log = open(tmp_path / "worker.log", "w")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "shop", "worker", "-Q", "training", "-P", "solo", "-c", "1",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "INFO"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def _send(run_id):
    app = Celery(broker=BROKER)
    app.conf.task_routes = settings.CELERY_TASK_ROUTES
    app.send_task("recommendations.tasks.model_train", args=[run_id], queue="training")


def _wait(run_id, statuses, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        run = TrainingRun.objects.get(pk=run_id)
        if run.status in statuses:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {TrainingRun.objects.get(pk=run_id).status} after {timeout} s")


@pytest.mark.skipif(not BROKER or connection.vendor != "postgresql", reason="needs TEST_BROKER_URL and PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_training_task_through_real_broker_and_worker_killed_mid_run(catalogue, sessions, tmp_path):
    data = tmp_path / "events.tsv"
    write_tsv(sessions, data)
    Celery(broker=BROKER).connection_for_write().default_channel.queue_purge("training")
    worker = _worker(tmp_path)
    try:
        run = TrainingRun.objects.create(params=SMALL_PARAMS, activate=True, data_path=str(data))
        _send(run.pk)
        run = _wait(run.pk, ("succeeded", "failed"), timeout=90)
        assert run.status == "succeeded", (run.error, (tmp_path / "worker.log").read_text()[-3000:])
        assert set(run.result["versions"]) == {"gru4rec", "vsknn", "hybrid"}
        assert run.result["activated"] is True
        active = ModelVersion.objects.get(status="active")
        assert active.version == run.result["best"]
        assert set(active.metrics["baselines"]) == {"popularity", "itemknn"}
        assert 0.0 <= active.metrics["model"]["recall@20"] <= 1.0
        assert artifacts.local_path(active).name.startswith(f"{active.kind}-")
        assert active.artifact_sha256[:16] in active.artifact
        # a long run, killed mid-training (SIGKILL: no cleanup at all)
        slow = TrainingRun.objects.create(params=SMALL_PARAMS.replace("n_epochs=2", "n_epochs=400"),
                                          activate=True, data_path=str(data))
        _send(slow.pk)
        t0 = time.monotonic()
        while "train gru4rec" not in TrainingRun.objects.get(pk=slow.pk).stage:
            assert time.monotonic() - t0 < 60, "the slow run never started training"
            time.sleep(0.2)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    assert TrainingRun.objects.get(pk=slow.pk).status == "running"  # nobody noticed yet
    # the next run (eager, in this process) gets the lock, fails the dead run, and trains
    nxt = TrainingRun.objects.create(params=SMALL_PARAMS, activate=False, data_path=str(data))
    nxt = training_run_execute(nxt.pk)
    assert nxt.status == "succeeded", nxt.error
    dead = TrainingRun.objects.get(pk=slow.pk)
    assert dead.status == "failed"
    assert dead.error.startswith("worker lost (killed or crashed) during stage 'train gru4rec (400 epochs)'")
    assert nxt.result["activated"] is False and nxt.result["decision"] == "activation not requested"


@pytest.mark.django_db
def test_eager_run_refuses_a_worse_model_and_reports(catalogue, sessions, tmp_path, settings, monkeypatch,
                                                     django_capture_on_commit_callbacks):
    from recommendations import engine
    from recommendations.models import ModelActivation

    settings.MODEL_ACTIVATE_REQUIRES_BETTER = True
    data = tmp_path / "events.tsv"
    write_tsv(sessions, data)
    run = TrainingRun.objects.create(params=SMALL_PARAMS, activate=True, data_path=str(data))
    with django_capture_on_commit_callbacks(execute=True):
        run = training_run_execute(run.pk)
    assert run.status == "succeeded" and run.result["activated"] is True
    assert run.progress == 1.0 and run.stage == "done"
    assert "register versions" in run.log_tail and "activated" in run.log_tail
    first = ModelVersion.objects.get(status="active")
    assert first.version == run.result["best"]
    activations = ModelActivation.objects.count()

    # The second run's candidates are certainly worse: the evaluation on the held-out day gives the
    # models this run trains known weak numbers, and the active model (loaded from its artifact)
    # known strong ones. Nothing is left to how well a small model happens to train.
    weak = {"recall@20": 0.1, "mrr@20": 0.05}
    strong = {"recall@20": 0.6, "mrr@20": 0.3}
    # id -> the model itself: a model the run drops (the hybrid's validation-day fits) must stay
    # alive, or the active model loaded later can get its id and pass for a candidate
    trained, evaluated = {}, []
    for name in ("gru4rec_train", "vsknn_train", "hybrid_build"):
        def train(*args, _original=getattr(engine, name), **kwargs):
            model = _original(*args, **kwargs)
            trained[id(model)] = model
            return model
        monkeypatch.setattr(engine, name, train)
    real_evaluate = engine.evaluate

    def evaluate(kind, model, test, *args, **kwargs):
        out = real_evaluate(kind, model, test, *args, **kwargs)
        candidate = id(model) in trained
        evaluated.append((kind, candidate))
        return {**out, **(weak if candidate else strong)}

    monkeypatch.setattr(engine, "evaluate", evaluate)
    run2 = TrainingRun.objects.create(params=SMALL_PARAMS, activate=True, data_path=str(data))
    with django_capture_on_commit_callbacks(execute=True):
        run2 = training_run_execute(run2.pk)
    assert run2.status == "succeeded", run2.error
    # both candidates and the active model went through the evaluation (the patch took effect)
    assert sorted(k for k, candidate in evaluated if candidate) == ["gru4rec", "hybrid", "vsknn"]
    assert (first.kind, False) in evaluated
    best = ModelVersion.objects.get(version=run2.result["best"])
    assert best.version in run2.result["versions"].values() and best.version != first.version
    assert run2.result["activated"] is False
    assert run2.result["decision"] == (
        f"{best.version} (recall@20 0.1000, mrr@20 0.0500) is worse than the active {first.version} "
        f"(recall@20 0.6000, mrr@20 0.3000)")
    assert f"not activated: {run2.result['decision']}" in run2.log_tail
    assert run2.result["active_before"]["version"] == first.version
    assert {n: run2.result["active_before"]["metrics"][n] for n in strong} == strong
    # nothing changed: the first version is still the one active, the candidates are only registered
    active = ModelVersion.objects.get(status="active")
    assert (active.pk, active.activated_at) == (first.pk, first.activated_at)
    assert set(ModelVersion.objects.filter(training_run=run2).values_list("status", flat=True)) == {"ready"}
    assert ModelActivation.objects.count() == activations
    assert serving.active_version() == first.version


@pytest.mark.django_db
def test_broken_input_fails_the_run_with_the_reason(db, tmp_path):
    run = TrainingRun.objects.create(params=SMALL_PARAMS, data_path=str(tmp_path / "missing.tsv"))
    run = training_run_execute(run.pk)
    assert run.status == "failed" and run.error.startswith("FileNotFoundError")
    assert training_run_execute(run.pk).status == "failed"  # safe to run twice


@pytest.mark.django_db
def test_training_from_the_shops_own_tracked_events(catalogue, sessions, tmp_path, django_capture_on_commit_callbacks):
    """No data_path: the run exports tracking's sessions (train.tsv / test.tsv) and trains on them."""
    from tracking.models import Event
    from tracking.services import events_import

    data = tmp_path / "events.tsv"
    write_tsv(sessions, data)
    events_import(str(data))
    assert Event.objects.count() == len(sessions)
    run = TrainingRun.objects.create(params=SMALL_PARAMS, activate=True)
    with django_capture_on_commit_callbacks(execute=True):
        run = training_run_execute(run.pk)
    assert run.status == "succeeded", run.error
    assert run.result["data"]["train"]["events"] > 0 and run.result["data"]["test"]["events"] > 0
    assert run.result["activated"] is True
    assert serving.active_version() == run.result["best"]


@pytest.mark.postgresql(reason="only PostgreSQL's advisory training lock shows that no process is training; "
                       "on SQLite (a process-local lock) running rows are reaped by heartbeat age alone")
@pytest.mark.django_db(transaction=True)
def test_reaper_fails_runs_whose_worker_died_without_waiting_for_a_new_run():
    from django.utils import timezone

    from recommendations.models import TrainingRun
    from recommendations.tasks import training_runs_reap
    from recommendations.training import training_lock

    dead = TrainingRun.objects.create(status=TrainingRun.Status.RUNNING, stage="train gru4rec",
                                      heartbeat_at=timezone.now())
    queued = TrainingRun.objects.create(status=TrainingRun.Status.QUEUED)
    with training_lock():  # someone is training: a fresh heartbeat means alive
        assert training_runs_reap() == 0
    dead.refresh_from_db()
    assert dead.status == TrainingRun.Status.RUNNING
    assert training_runs_reap() == 1  # the lock is free: nobody is training, the row is dead
    dead.refresh_from_db()
    queued.refresh_from_db()
    assert dead.status == TrainingRun.Status.FAILED
    assert "worker lost" in dead.error and "train gru4rec" in dead.error
    assert queued.status == TrainingRun.Status.QUEUED


@pytest.mark.django_db(transaction=True)
def test_reaper_fails_queued_runs_no_worker_took_within_the_grace(settings):
    from datetime import timedelta

    from django.utils import timezone

    from recommendations.tasks import training_runs_reap
    from recommendations.training import training_lock

    settings.TRAINING_QUEUE_GRACE_SECONDS = 300
    now = timezone.now()
    lost = TrainingRun.objects.create(status=TrainingRun.Status.QUEUED)
    fresh = TrainingRun.objects.create(status=TrainingRun.Status.QUEUED)
    TrainingRun.objects.filter(pk=lost.pk).update(created=now - timedelta(seconds=301))
    # a worker finished a run a moment ago: the queued one may be on its way to it
    TrainingRun.objects.create(status=TrainingRun.Status.SUCCEEDED, started_at=now - timedelta(seconds=60),
                               finished_at=now - timedelta(seconds=10))
    assert training_runs_reap() == 0
    TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED).update(finished_at=now - timedelta(seconds=301))
    with training_lock():  # someone is training: queued runs wait for that worker
        assert training_runs_reap() == 0
    assert training_runs_reap() == 1
    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert (lost.status, lost.stage, lost.error) == (
        "failed", "not started", "not started: no training worker took it within 300 s (the broker lost the "
        "message, or no worker consumes the training queue); start a new run")
    assert fresh.status == "queued"
    # the worker that finally gets the lost run's message leaves it alone
    assert training_run_execute(lost.pk).status == "failed"


@pytest.mark.django_db
def test_a_run_is_published_after_commit_and_failed_when_the_broker_refuses_it(monkeypatch,
                                                                                 django_capture_on_commit_callbacks):
    from django.db import transaction
    from kombu.exceptions import OperationalError

    from recommendations import training
    from recommendations.tasks import model_train

    sent = []
    monkeypatch.setattr(model_train, "apply_async", lambda args: sent.append(args))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            run = training.training_run_queue(params=SMALL_PARAMS, activate=False)
            assert sent == []  # nothing is published before the run is committed
    assert len(callbacks) == 1 and sent == [(run.pk,)]
    assert TrainingRun.objects.get(pk=run.pk).status == "queued"

    def refuse(args):  # what kombu raises when Redis refuses the connection
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(model_train, "apply_async", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            run = training.training_run_queue(params=SMALL_PARAMS, activate=False)
    run.refresh_from_db()  # inside a transaction the caller learns it from the run
    assert (run.status, run.stage) == ("failed", "not queued")
    assert run.error == ("not queued: the task broker did not take it (OperationalError: Error 111 connecting to "
                         "127.0.0.1:6379. Connection refused.); nothing will run it, start a new run when the broker "
                         "is back")


def test_every_scheduled_and_routed_task_is_registered_under_the_module_it_lives_in():
    from celery import current_app

    # recommendations' tasks are registered in every process (apps.ready): training and the clusters
    # app publish them by name
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} | set(settings.CELERY_TASK_ROUTES)
    names = {n for n in names if n.startswith("recommendations.")}
    assert {"recommendations.clusters.tasks.clusters_build", "recommendations.clusters.tasks.popular_pools_refresh",
            "recommendations.tasks.model_train", "recommendations.tasks.training_runs_reap"} <= names
    for name in names:
        task = current_app.tasks[name]
        assert name == f"{task.run.__module__}.{task.run.__name__}", name
