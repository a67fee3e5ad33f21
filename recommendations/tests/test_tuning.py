"""Tuning in the shop: the tune_model command stores every trial and the shop's training settings,
one run at a time, stop and resume (the numbering continues, stored trials are not re-run), the
admin pages (chart, buttons only with the permission, 403 without), and the Celery task's route."""
import json
import re

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command

from recommendations import engine, training, tuning_runs
from recommendations.gru4rec.formats import write_tsv
from recommendations.models import ShopTrainingSettings, TuningRun, TuningTrial

TRIAL_TIMEOUT = 240


@pytest.fixture
def events_file(sessions, tmp_path):
    path = tmp_path / "events.tsv"
    write_tsv(sessions, path)
    return path


def _login(client, perms=(), superuser=False, name="staff"):
    user = User.objects.create_user(name, password="pw", is_staff=True, is_superuser=superuser)
    for codename in ("view_tuningrun", "view_tuningtrial", "view_shoptrainingsettings", *perms):
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="recommendations"))
    client.force_login(user)
    return user


@pytest.mark.django_db
def test_the_command_stores_every_trial_and_the_shops_training_settings(events_file, capsys):
    call_command("tune_model", "--trials", "3", "--timeout", str(TRIAL_TIMEOUT), "--data", str(events_file),
                 "--no-progress")
    run = TuningRun.objects.get()
    assert run.status == "succeeded", run.error
    trials = list(TuningTrial.objects.filter(run=run).order_by("number"))
    assert [t.number for t in trials] == [0, 1, 2]
    assert {t.state for t in trials} <= {"complete", "pruned", "failed"}
    assert all(t.duration_s > 0 for t in trials)
    completed = [t for t in trials if t.state == "complete"]
    assert completed, [(t.kind, t.state, t.error) for t in trials]
    top = max(completed, key=lambda t: (t.objective, -t.number))
    assert run.best["overall"]["number"] == top.number and run.best["overall"]["objective"] == top.objective
    row = ShopTrainingSettings.objects.get()
    assert (row.tuning_run, row.kind, row.set_by) == (run, top.kind, None)
    # the next training run's parameters are the tuned ones
    params = training.training_params()
    assert params["settings_id"] == row.pk
    gru_best = (run.best["overall"]["params"] if top.kind == "hybrid" else {}).get("gru4rec") or run.best["gru4rec"]["params"]
    assert params["gru4rec"] == engine.gru4rec_params_string(gru_best) == row.params["gru4rec"]
    if "hybrid" in run.best:
        assert params["hybrid"]["weight"] == run.best["hybrid"]["params"]["weight"]
    out = capsys.readouterr().out.strip().splitlines()
    assert json.loads(out[-1])["kind"] == top.kind and f"tuning run {run.pk}: 3 trials" in out[-2]
    # executing it again (a redelivered task) does nothing
    assert tuning_runs.tuning_run_execute(run.pk).status == "succeeded"
    assert TuningTrial.objects.filter(run=run).count() == 3


@pytest.mark.django_db
def test_bad_command_input_is_a_clear_error(db, tmp_path):
    for args, message in (
            (["--trials", "0"], "--trials must be a whole number, at least 1 (got '0')"),
            (["--trials", "x"], "--trials must be a whole number, at least 1 (got 'x')"),
            (["--timeout", "-5"], "--timeout must be a whole number, at least 1 (got '-5')"),
            (["--trials", "5000"], "trials must be a whole number from 3 (one per kind: gru4rec, vsknn, hybrid) to "
                                   "1000 (got 5000)"),
            (["--trials", "2"], "trials must be a whole number from 3 (one per kind"),
            (["--resume", "77"], "--resume '77': no such tuning run (none exists yet)"),
            (["--data", str(tmp_path / "nope.tsv")], f"--data {tmp_path / 'nope.tsv'}: no such file")):
        with pytest.raises(CommandError) as exc:
            call_command("tune_model", *args)
        assert str(exc.value).startswith(message), (args, str(exc.value))
    assert TuningRun.objects.count() == 0


@pytest.mark.django_db
def test_a_second_tuning_run_is_refused_while_one_is_active(db):
    first = tuning_runs.tuning_run_queue(trials=5, publish=False)
    with pytest.raises(tuning_runs.TuningBusy, match=f"tuning run {first.pk} is queued: one tuning run at a time"):
        tuning_runs.tuning_run_queue(trials=5, publish=False)
    with pytest.raises(CommandError, match=f"tuning run {first.pk} is queued"):
        call_command("tune_model", "--trials", "3")
    assert TuningRun.objects.count() == 1
    tuning_runs.tuning_run_stop(first)
    assert TuningRun.objects.get(pk=first.pk).status == "stopped"
    second = tuning_runs.tuning_run_queue(trials=5, publish=False)
    assert second.pk != first.pk
    with pytest.raises(tuning_runs.TuningBusy):
        tuning_runs.tuning_run_resume(first, publish=False)


@pytest.mark.django_db
def test_trials_are_stored_once(db):
    from recommendations.gru4rec.tuning import TrialRecord

    run = tuning_runs.tuning_run_queue(trials=5, publish=False)
    record = TrialRecord.from_dict({"number": 0, "kind": "vsknn", "params": {"k": 50}, "state": "complete",
                                    "metrics": {"recall@20": 0.25, "mrr@20": 0.16}, "duration_s": 1.5,
                                    "epochs": None, "error": None})
    tuning_runs.trial_store(run, record)
    tuning_runs.trial_store(run, record)  # a retried callback
    trial = TuningTrial.objects.get(run=run)
    assert (trial.number, trial.kind, trial.objective, trial.duration_s) == (0, "vsknn", pytest.approx(0.2), 1.5)
    assert TuningRun.objects.get(pk=run.pk).best["overall"]["number"] == 0


@pytest.mark.django_db
def test_stop_then_resume_continues_the_numbering_without_rerunning_stored_trials(events_file, monkeypatch):
    monkeypatch.setattr(tuning_runs, "STOP_POLL_SECONDS", 0.0)  # the flag is read at the next step
    run = tuning_runs.tuning_run_queue(trials=4, timeout=TRIAL_TIMEOUT, data_path=str(events_file), publish=False)
    stored = []
    real_on_trial = tuning_runs._Recorder.on_trial

    def on_trial(self, record):
        real_on_trial(self, record)
        stored.append(record.number)
        if len(stored) == 2:  # the operator presses Stop after the second trial
            tuning_runs.tuning_run_stop(self.run)

    monkeypatch.setattr(tuning_runs._Recorder, "on_trial", on_trial)
    run = tuning_runs.tuning_run_execute(run.pk)
    assert run.status == "stopped", run.error
    first = {t.number: (t.pk, t.created) for t in TuningTrial.objects.filter(run=run)}
    assert sorted(first) == list(range(len(first))) and 2 <= len(first) < 4
    assert not ShopTrainingSettings.objects.exists()  # a stopped run sets nothing
    spent = run.elapsed_s
    assert spent > 0

    stored.clear()
    monkeypatch.setattr(tuning_runs._Recorder, "on_trial", real_on_trial)
    seen = []
    monkeypatch.setattr(tuning_runs._Recorder, "on_trial", lambda self, r: (seen.append(r.number), real_on_trial(self, r)))
    run = tuning_runs.tuning_run_resume(run, publish=False)
    assert run.status == "queued"
    run = tuning_runs.tuning_run_execute(run.pk)
    assert run.status == "succeeded", run.error
    numbers = list(TuningTrial.objects.filter(run=run).order_by("number").values_list("number", flat=True))
    assert numbers == [0, 1, 2, 3]
    assert seen == list(range(len(first), 4))  # only the new trials ran
    # the stored trials were not touched
    assert {t.number: (t.pk, t.created) for t in TuningTrial.objects.filter(run=run, number__in=first)} == first
    assert run.elapsed_s > spent
    assert ShopTrainingSettings.objects.get().tuning_run == run


@pytest.mark.django_db(transaction=True)  # the run's thread reads the row through its own connection
def test_tuning_waits_for_no_training_and_fails_clearly_when_the_lock_is_held(db):
    run = tuning_runs.tuning_run_queue(trials=3, publish=False)
    with training.training_lock():
        import threading

        out = {}
        from django import db

        def execute():
            try:
                out["run"] = tuning_runs.tuning_run_execute(run.pk)
            finally:
                db.connections.close_all()

        t = threading.Thread(target=execute)
        t.start()
        t.join()
    run = out["run"]
    assert run.status == "failed"
    assert run.error == ("a training run or another tuning run holds the training lock; resume this run when it "
                         "has ended")


def test_the_task_is_routed_to_the_training_queue():
    assert django_settings.CELERY_TASK_ROUTES["recommendations.tasks.tune_model"] == {"queue": "training"}


@pytest.mark.django_db
def test_admin_pages_buttons_and_permissions(client, monkeypatch, django_capture_on_commit_callbacks):
    published = []
    monkeypatch.setattr(tuning_runs, "tuning_run_publish", lambda pk: published.append(pk) or True)
    run = TuningRun.objects.create(trials=3, status="running")
    TuningTrial.objects.create(run=run, number=0, kind="gru4rec", params={"layers": [64]}, state="complete",
                               metrics={"recall@20": 0.4, "mrr@20": 0.1}, objective=0.2, duration_s=2.0)
    TuningTrial.objects.create(run=run, number=1, kind="vsknn", params={"k": 50}, state="pruned", objective=0.1)
    TuningTrial.objects.create(run=run, number=2, kind="hybrid", params={"weight": 0.7}, state="complete",
                               metrics={"recall@20": 0.5, "mrr@20": 0.18}, objective=0.3, duration_s=3.0)
    run.best = tuning_runs.best_of(run)
    run.save()
    settings_row = ShopTrainingSettings.objects.create(params={"gru4rec": "layers=64", "vsknn": {"k": 50}},
                                                       kind="gru4rec", tuning_run=run)

    _login(client, name="viewer")  # view-only staff
    page = client.get("/admin/recommendations/tuningrun/")
    assert page.status_code == 200 and "Start tuning" not in page.content.decode()
    page = client.get(f"/admin/recommendations/tuningrun/{run.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200 and "Stop</button>" not in html and 'data-chart="tuning-objective"' in html
    spec = json.loads(re.search(r'<script id="tuning-objective" type="application/json">(.*?)</script>', html).group(1))
    assert spec["datasets"][0]["data"] == [0.2, None, 0.3]  # completed
    assert spec["datasets"][1]["data"] == [None, 0.1, None]  # pruned
    assert spec["datasets"][2]["data"] == [0.2, 0.2, 0.3]  # best so far
    assert "weight=0.7" in html  # the best parameters so far
    assert client.get(f"/admin/recommendations/shoptrainingsettings/{settings_row.pk}/change/").status_code == 200
    assert client.get("/admin/recommendations/shoptrainingsettings/").status_code == 200
    for url in ("/admin/recommendations/tuningrun/start/", f"/admin/recommendations/tuningrun/{run.pk}/stop/",
                f"/admin/recommendations/tuningrun/{run.pk}/resume/"):
        assert client.post(url, {"trials": "3"}).status_code == 403, url
    assert TuningRun.objects.get(pk=run.pk).status == "running"

    client.logout()
    _login(client, superuser=True, name="boss")
    html = client.get(f"/admin/recommendations/tuningrun/{run.pk}/change/").content.decode()
    assert "Stop</button>" in html and "Resume</button>" not in html
    assert client.get("/admin/recommendations/tuningrun/").status_code == 200
    r = client.post(f"/admin/recommendations/tuningrun/{run.pk}/stop/")
    assert r.status_code == 302 and TuningRun.objects.get(pk=run.pk).status == "stopping"
    TuningRun.objects.filter(pk=run.pk).update(status="stopped")
    html = client.get(f"/admin/recommendations/tuningrun/{run.pk}/change/").content.decode()
    assert "Resume</button>" in html and "Stop</button>" not in html
    # Start, double-submitted: one run
    with django_capture_on_commit_callbacks(execute=True):
        r1 = client.post("/admin/recommendations/tuningrun/start/", {"trials": "4", "timeout": "60"})
        r2 = client.post("/admin/recommendations/tuningrun/start/", {"trials": "4", "timeout": "60"})
    assert r1.status_code == r2.status_code == 302
    new = TuningRun.objects.exclude(pk=run.pk)
    assert new.count() == 1 and (new.get().trials, new.get().timeout, new.get().requested_by.username) == (4, 60, "boss")
    assert published == [new.get().pk]
    page = client.get(r2.url).content.decode()
    assert f"Not started: tuning run {new.get().pk} is queued: one tuning run at a time" in page
    # bad input: a message, no run, no 500
    TuningRun.objects.filter(pk=new.get().pk).update(status="stopped")
    r = client.post("/admin/recommendations/tuningrun/start/", {"trials": "lots"}, follow=True)
    assert r.status_code == 200 and "trials: a whole number from 3 to 1000 (got &#x27;lots&#x27;)" in r.content.decode()
    assert TuningRun.objects.count() == 2


@pytest.mark.django_db
def test_training_settings_by_hand_are_checked_and_kept_as_history(client):
    with pytest.raises(ValueError) as exc:
        training.training_settings_check("layers=0", {"k": 0}, {"weight": 2})
    assert exc.value.args[0] == {
        "gru4rec": exc.value.args[0]["gru4rec"], "vsknn": "k must be a whole number >= 1, got 0",
        "hybrid": "weight must be a number from 0 to 1, got 2"}
    assert "layers" in exc.value.args[0]["gru4rec"]

    _login(client, name="viewer")
    assert client.get("/admin/recommendations/shoptrainingsettings/add/").status_code == 403
    assert client.post("/admin/recommendations/shoptrainingsettings/add/", {"gru4rec": "layers=8"}).status_code == 403
    client.logout()
    _login(client, perms=("tune_model", "add_shoptrainingsettings"), name="tuner")
    page = client.get("/admin/recommendations/shoptrainingsettings/add/").content.decode()
    assert django_settings.MODEL_TRAIN_PARAMS in page  # the current settings (the default) as the start
    r = client.post("/admin/recommendations/shoptrainingsettings/add/",
                    {"kind": "", "gru4rec": "layers=8,n_epochs=1", "vsknn": '{"k": 20, "similarity": "nope"}',
                     "hybrid": ""})
    assert r.status_code == 200 and "similarity must be one of" in r.content.decode()
    assert not ShopTrainingSettings.objects.exists()
    for weight in (0.25, 0.5):
        r = client.post("/admin/recommendations/shoptrainingsettings/add/",
                        {"kind": "hybrid", "gru4rec": "layers=8,n_epochs=1", "vsknn": '{"k": 20}',
                         "hybrid": f'{{"weight": {weight}, "fusion": "rrf", "c": 10}}'})
        assert r.status_code == 302, r.content.decode()[-2000:]
    rows = list(ShopTrainingSettings.objects.order_by("set_at", "id"))
    assert len(rows) == 2 and rows[-1].set_by.username == "tuner"
    current = training.training_params()
    assert current["settings_id"] == rows[-1].pk
    assert current["gru4rec"] == engine.gru4rec_params_string("layers=8,n_epochs=1")
    assert current["vsknn"] == {"k": 20, "sample_size": 500, "similarity": "cosine", "weighting": "linear"}
    assert current["hybrid"] == {"weight": 0.5, "fusion": "rrf", "c": 10.0, "depth": 100,
                                 "gru4rec": current["gru4rec"], "vsknn": current["vsknn"]}


@pytest.mark.django_db
def test_the_celery_task_executes_a_queued_run_once(events_file, django_capture_on_commit_callbacks, monkeypatch):
    from recommendations import tasks

    sent = []
    monkeypatch.setattr(tasks.tune_model, "apply_async", lambda args, **kw: sent.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        run = tuning_runs.tuning_run_queue(trials=3, timeout=TRIAL_TIMEOUT, data_path=str(events_file))
    assert sent == [(run.pk,)]  # published once the row committed, by name, to the task
    out = tasks.tune_model(run.pk)
    assert out["status"] == "succeeded", out
    assert TuningTrial.objects.filter(run=run).count() == 3
    assert tasks.tune_model(run.pk) == {"run": run.pk, "status": "succeeded", "error": ""}  # twice: nothing more
    assert TuningTrial.objects.filter(run=run).count() == 3


@pytest.mark.postgresql(reason="only PostgreSQL's advisory lock shows that nobody is tuning")
@pytest.mark.django_db
def test_a_run_left_running_by_a_dead_worker_is_reaped_to_stopped_and_resumable():
    from recommendations.tasks import training_runs_reap

    run = TuningRun.objects.create(trials=3, status="running")
    assert training_runs_reap() == 1
    run.refresh_from_db()
    assert run.status == "stopped" and run.error.startswith("worker lost (killed or crashed) while running")
    assert tuning_runs.tuning_run_resume(run, publish=False).status == "queued"


@pytest.mark.django_db
def test_a_run_the_broker_refuses_is_failed_with_the_reason_and_can_be_resumed(monkeypatch, django_capture_on_commit_callbacks):
    from kombu.exceptions import OperationalError

    from recommendations import tasks

    def refuse(args, **kw):  # what kombu raises when Redis refuses the connection
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.tune_model, "apply_async", refuse)
    with django_capture_on_commit_callbacks(execute=True):  # the test's transaction: published at its end
        run = tuning_runs.tuning_run_queue(trials=3)
    run.refresh_from_db()
    assert (run.status, run.log_tail) == ("failed", tuning_runs.NOT_QUEUED)
    assert run.error == ("not queued: the task broker did not take it (OperationalError: Error 111 connecting to "
                         "127.0.0.1:6379. Connection refused.); start or resume it when the broker is back")
    sent = []
    monkeypatch.setattr(tasks.tune_model, "apply_async", lambda args, **kw: sent.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        tuning_runs.tuning_run_resume(run)
    assert sent == [(run.pk,)] and TuningRun.objects.get(pk=run.pk).status == "queued"


@pytest.mark.django_db(transaction=True)  # the live server sees only committed rows
def test_parallel_start_clicks_never_make_two_active_runs(live_shop):
    """Eight "Start tuning" posts at once on a live server (3 gunicorn workers): each answers with
    the admin's redirect, never a 500, and no two runs were ever active together (the partial
    unique index, not a check-then-insert, decides). Runs may follow one another: this shop has
    no events, so a run fails at once and frees the place; what must not happen is an overlap."""
    import time

    from tests.live import parallel

    User.objects.create_superuser("tuner", "tuner@example.com", "pw-123456-long")
    admin = live_shop.client()
    admin.get("/admin/login/")
    r = admin.post("/admin/login/", {"username": "tuner", "password": "pw-123456-long", "next": "/admin/"})
    assert r.status_code == 302, r.text[:300]
    tabs = [admin.clone() for _ in range(8)]
    answers = parallel(lambda i: tabs[i].post("/admin/recommendations/tuningrun/start/",
                                              {"trials": "3", "timeout": "60"}).status_code, 8)
    assert answers == [302] * 8, answers
    deadline = time.monotonic() + 60
    while TuningRun.objects.filter(status__in=TuningRun.ACTIVE_STATUSES).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    runs = list(TuningRun.objects.order_by("created", "id"))
    assert 1 <= len(runs) <= 8 and all(r.finished_at is not None for r in runs), [(r.pk, r.status) for r in runs]
    for before, after in zip(runs, runs[1:]):
        assert after.created >= before.finished_at, (before.pk, before.finished_at, after.pk, after.created)
