"""Hot reload across two real processes, a refused corrupt artifact (the old version keeps serving), and
the database as the truth of what is served: through a Redis stall, and in /health/."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, transaction

from recommendations import artifacts, ranking, registry, serving
from recommendations.tests.conftest import version_register
from tests.faults import connections_drop, stallable_cache  # noqa: F401 (stallable_cache: a fixture)

ROOT = Path(__file__).resolve().parents[2]
RELOAD_INTERVAL = 0.5  # the follower's MODEL_RELOAD_INTERVAL_SECONDS
# What a serving process owes after an activation: the new version within its reload interval plus the
# load grace. A failure bound, not a speed claim: how fast a process follows is bench/reload.py's question.
FOLLOW_BOUND = RELOAD_INTERVAL + serving.LOAD_GRACE_SECONDS
SERVER = """
import sys, time, django
django.setup()
from recommendations.serving import model_current, model_version_refused
from recommendations.ranking import recommend_for_session
from catalog.models import Product
pk = Product.objects.order_by("pk").values_list("pk", flat=True).first()
end = time.time() + 120
while time.time() < end:
    bundle = model_current()
    r = recommend_for_session(items=[pk], k=3)
    refused = ",".join(model_version_refused()) or "-"
    print(f"{bundle.version if bundle else None} {r.model_version} {len(r.items)} {refused}", flush=True)
    time.sleep(0.05)
"""


def _env():
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        MODEL_DIR=str(settings.MODEL_DIR), MODEL_RELOAD_INTERVAL_SECONDS=str(RELOAD_INTERVAL),
        DJANGO_SETTINGS_MODULE="shop.settings", TORCH_NUM_THREADS="1",
    )
    return env


class Follower:
    """A second process serving recommendations in a loop, printing per answer: the version it
    serves, the version that answered, the number of items, the versions it refused."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER], cwd=ROOT, env=_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.lines: list[str] = []
        self.buf = b""

    def wait_until(self, done, timeout, what):
        """Read answers until ``done(fields of the latest answer)``; ``timeout`` is a failure bound."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.buf += os.read(self.proc.stdout.fileno(), 1 << 16)
            except BlockingIOError:
                pass
            if b"\n" in self.buf:
                complete, self.buf = self.buf.rsplit(b"\n", 1)
                self.lines += complete.decode().splitlines()
                if self.lines and done(self.lines[-1].split()):
                    return
            assert self.proc.poll() is None, "the follower process died"
            time.sleep(0.05)
        raise AssertionError(f"no {what} after {timeout} s; the latest answer: {self.lines[-1] if self.lines else None}")

    def wait_for(self, version, timeout=FOLLOW_BOUND):
        self.wait_until(lambda fields: fields[0] == str(version), timeout, f"answer from {version}")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def _served(lines):
    """The versions the answers came from, consecutive repeats collapsed."""
    out = []
    for line in lines:
        if not out or out[-1] != line.split()[0]:
            out.append(line.split()[0])
    return out


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs a database two processes share")
@pytest.mark.django_db(transaction=True)
def test_second_process_follows_activations_and_refuses_a_corrupt_artifact(catalogue, sessions):
    v1 = version_register("vsknn", sessions, "v1")
    v2 = version_register("gru4rec", sessions, "v2")
    v3 = version_register("vsknn", sessions.iloc[::-1].reset_index(drop=True), "v3")
    registry.model_activate(v1)
    follower = Follower()
    try:
        follower.wait_for("v1", timeout=60)  # process start-up and first load
        follower.lines.clear()
        registry.model_activate(v2)
        follower.wait_for("v2")
        # one switch, v1 then v2, and every answer in between a full answer from v1 or v2, never an error
        assert _served(follower.lines) in (["v1", "v2"], ["v2"])
        assert all(f[1] in ("v1", "v2") and f[2] == "3" for f in (line.split() for line in follower.lines))
        # A corrupt artifact is refused and v2 keeps serving. The activation is committed only once the
        # file is corrupt: the follower can never load v3 while it is intact.
        path = artifacts.local_path(v3)
        with transaction.atomic():
            registry.model_activate(v3)  # digest checked here while the file is intact
            os.chmod(path, 0o644)
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
        follower.lines.clear()
        follower.wait_until(lambda fields: "v3" in fields[3].split(","), FOLLOW_BOUND, "refusal of v3")
        refused_at = len(follower.lines)
        follower.wait_until(lambda fields: len(follower.lines) >= refused_at + 10, FOLLOW_BOUND, "answers after it")
        assert {(f[0], f[1], f[2]) for f in (line.split() for line in follower.lines)} == {("v2", "v2", "3")}
        # roll back = activate the previous version
        registry.model_activate(v1)
        follower.wait_for("v1")
    finally:
        follower.stop()


@pytest.mark.django_db
def test_truncated_or_corrupt_artifact_refused_in_process(gru_version, sknn_version, activate):
    activate(gru_version)
    assert serving.model_reload().version == "v-gru"
    activate(sknn_version)
    path = artifacts.local_path(sknn_version)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:100])  # truncated
    assert serving.model_reload().version == "v-gru"
    assert serving.model_version_refused() == ["v-sknn"]
    result = ranking.recommend_for_session(items=[], k=2)
    assert len(result.items) == 2
    # activating a version whose artifact no longer matches its digest is refused up front
    with pytest.raises(registry.ActivationRefused, match="sha256"):
        registry.model_activate(sknn_version)


@pytest.mark.django_db
def test_incompatible_artifact_with_valid_digest_refused(gru_version, sknn_version, activate):
    """A file the engine rejects (CheckpointError) is refused even when its sha256 is the registered one."""
    activate(gru_version)
    serving.model_reload()
    path = artifacts.local_path(sknn_version)
    os.chmod(path, 0o644)
    path.write_bytes(b"PK\x03\x04 not really a zip")
    from recommendations.engine import sha256_file

    type(sknn_version).objects.filter(pk=sknn_version.pk).update(artifact_sha256=sha256_file(path))
    sknn_version.refresh_from_db()
    # refused up front: activation loads the artifact before it changes the database
    with pytest.raises(registry.ActivationRefused, match="refused by the engine"):
        activate(sknn_version)
    assert type(sknn_version).objects.get(status="active").version == "v-gru"
    assert serving.model_reload().version == "v-gru"
    # and a process told to serve it anyway (the row flipped behind the service's back) refuses it too
    type(gru_version).objects.filter(pk=gru_version.pk).update(status="retired")
    type(sknn_version).objects.filter(pk=sknn_version.pk).update(status="active")
    assert serving.model_reload(force=True).version == "v-gru"
    assert "v-sknn" in serving.model_version_refused()


@pytest.mark.django_db
def test_activation_rule_requires_at_least_the_active_metrics(catalogue, sessions, activate):
    good = version_register("vsknn", sessions, "good", metrics={"model": {"recall@20": 0.5, "mrr@20": 0.2}})
    worse = version_register("vsknn", sessions, "worse", metrics={
        "model": {"recall@20": 0.4, "mrr@20": 0.25}, "active": {"version": "good", "metrics": {"recall@20": 0.5, "mrr@20": 0.2}}})
    equal = version_register("vsknn", sessions, "equal", metrics={
        "model": {"recall@20": 0.5, "mrr@20": 0.2}, "active": {"version": "good", "metrics": {"recall@20": 0.5, "mrr@20": 0.2}}})
    activate(good)
    with pytest.raises(registry.ActivationRefused, match="worse than the active good"):
        registry.model_activate(worse, require_better=True)
    assert type(good).objects.get(pk=good.pk).status == "active"
    activate(equal, require_better=True)
    assert serving.active_version() == "equal"
    assert type(good).objects.get(pk=good.pk).status == "retired"
    # a person may activate anything valid (no rule), and roll back
    activate(worse)
    assert serving.active_version() == "worse"
    # PostgreSQL names the constraint, SQLite its column
    with pytest.raises(IntegrityError, match="recommendations_one_active_model|recommendations_modelversion.status"):
        type(good).objects.filter(pk=good.pk).update(status="active")  # one active version only


# ------------------------------------------------------------------ the database is the truth
@pytest.mark.django_db
def test_an_activation_during_a_cache_stall_is_served_once_the_interval_passes(gru_version, sknn_version, activate,
                                                                               stallable_cache):
    """A Redis mirror of the active version missed the write during the stall and, once Redis was
    back, told every process to keep serving the old model for its 300 s TTL."""
    activate(sknn_version)
    assert serving.model_reload().version == "v-sknn"
    connections_drop()  # the write during the stall is lost, not applied late
    with stallable_cache.stalled():
        activate(gru_version)
    assert serving.active_version() == "v-gru"
    assert serving.model_reload().version == "v-gru"  # Redis is back with what it held before


@pytest.mark.django_db(transaction=True)  # the check runs in a worker thread with its own connection
def test_health_fails_when_this_process_serves_another_version_than_the_database_beyond_the_bound(
        gru_version, sknn_version, activate, client):
    from datetime import timedelta

    from django.utils import timezone

    from recommendations.models import ModelVersion

    activate(sknn_version)
    assert serving.warm_up().version == "v-sknn"  # a web worker's start (shop/wsgi.py)
    # v-gru is made active in the database, but its file no longer matches: this process cannot load it
    path = artifacts.local_path(gru_version)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:100])
    ModelVersion.objects.filter(pk=sknn_version.pk).update(status="retired")
    ModelVersion.objects.filter(pk=gru_version.pk).update(status="active", activated_at=timezone.now())
    key = "ActiveModelLoaded()"
    r = client.get("/health/?format=json")
    assert (r.status_code, r.json()[key]) == (200, "OK")  # within the reload bound: catching up
    assert serving.model_version_loaded() == "v-sknn"  # the check only reports: it loaded nothing
    serving.model_reload()  # the reload timer's work in this process: v-gru is refused
    assert serving.model_version_loaded() == "v-sknn" and serving.model_version_refused() == ["v-gru"]
    bound = serving.reload_bound_seconds()
    assert bound == settings.MODEL_RELOAD_INTERVAL_SECONDS + serving.LOAD_GRACE_SECONDS
    ModelVersion.objects.filter(pk=gru_version.pk).update(activated_at=timezone.now() - timedelta(seconds=bound + 5))
    r = client.get("/health/?format=json")
    assert r.status_code == 500
    assert r.json()[key] == (
        f"Unavailable: the database's active model is v-gru but this process serves v-sknn (its artifact was "
        f"refused) {bound + 5:.0f} s after the activation; the reload bound is {bound:.0f} s"
    )


@pytest.mark.django_db(transaction=True)  # the check runs in a worker thread with its own connection
def test_health_gives_a_process_just_started_the_reload_bound_to_warm_up(gru_version, activate, client, monkeypatch):
    activate(gru_version)
    key = "ActiveModelLoaded()"
    monkeypatch.setattr(serving._state, "warmed_up", False)
    monkeypatch.setattr(serving._state, "started_at", time.monotonic())  # a worker that has just started
    r = client.get("/health/?format=json")
    assert (r.status_code, r.json()[key]) == (200, "OK")
    assert serving.model_version_loaded() is None  # the check only reported: it loaded nothing
    monkeypatch.setattr(serving._state, "started_at", time.monotonic() - serving.reload_bound_seconds() - 1)
    from datetime import timedelta

    from django.utils import timezone

    type(gru_version).objects.filter(pk=gru_version.pk).update(
        activated_at=timezone.now() - timedelta(seconds=serving.reload_bound_seconds() + 5))
    assert client.get("/health/?format=json").status_code == 500  # never warmed up, beyond the bound
    assert serving.warm_up().version == "v-gru"  # what shop/wsgi.py does at start
    assert client.get("/health/?format=json").status_code == 200
