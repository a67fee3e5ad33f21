"""`make stress`: the real stack (gunicorn, Celery, PostgreSQL, Redis) on loopback under a scripted
shopper mix, with faults injected, then a check in the database that nothing accepted was lost.

Phases (each bounded in time and requests, loopback only):
1. load: locust, 60 s; Redis is stopped for 15 s in the middle. Every request must answer 2xx and
   every accepted event and order must be in PostgreSQL afterwards.
2. postgres: PostgreSQL restarted while /health/ is polled; time until the site answers again.
3. corrupt artifact: a truncated copy of the active model is registered and activated: refused,
   the old version keeps serving.
4. worker killed: a training run is started, its worker killed with SIGKILL; the run is marked failed
   with the reason, the active model keeps serving, a new run can start.
The report goes to var/reports/stress.json and var/reports/stress.png.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "var" / "reports"
PY = str(ROOT / ".venv" / "bin" / "python")
PORT = int(os.environ.get("STRESS_PORT", "8010"))
BASE = f"http://127.0.0.1:{PORT}"
DB_NAME = "shop_stress"
DURATION = int(os.environ.get("STRESS_SECONDS", "60"))
USERS = int(os.environ.get("STRESS_USERS", "16"))
# Long enough that the worker is killed mid-run.
STRESS_TRAIN_PARAMS = "loss=cross-entropy,layers=100,batch_size=32,n_sample=512,n_epochs=30"
REDIS_START = ("redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no "
               "--dir /var/lib/redis --logfile /var/log/redis/ci.log")

ENV = dict(
    os.environ,
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    REDIS_URL="redis://127.0.0.1:6379/10",
    CELERY_BROKER_URL="redis://127.0.0.1:6379/11",
    CELERY_RESULT_BACKEND="redis://127.0.0.1:6379/12",
    SHOP_VAR_DIR=str(ROOT / "var" / "stress"),
    BIND=f"127.0.0.1:{PORT}",
    # All simulated shoppers come from 127.0.0.1: lift the per-IP anonymous throttle for this run only.
    THROTTLE_ANON="1000000/min",
    THROTTLE_USER="1000000/min",
    MODEL_RELOAD_INTERVAL_SECONDS="1",
    PYTHONUNBUFFERED="1",
)


def sh(cmd: str, check=True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, shell=True, cwd=ROOT, env=ENV, check=check, text=True, capture_output=True, **kw)


def manage(*args: str, check=True) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=ENV, check=check, text=True, capture_output=True)


def django_eval(code: str) -> dict:
    """Run ``code`` (which must set ``out``) inside Django against the stress database; returns ``out``."""
    script = "import django, json, os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE','shop.settings')\n" \
             "django.setup()\n" + code + "\nprint('@@' + json.dumps(out, default=str))"
    res = subprocess.run([PY, "-c", script], cwd=ROOT, env=ENV, text=True, capture_output=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-3000:])
    return json.loads([line for line in res.stdout.splitlines() if line.startswith("@@")][-1][2:])


def http_status(path: str, timeout=2.0) -> int:
    try:
        with urllib.request.urlopen(BASE + path, timeout=timeout) as res:
            return res.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except Exception:
        return 0


def fetch_health() -> str:
    try:
        with urllib.request.urlopen(BASE + "/health/?format=json", timeout=5) as res:
            return res.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.read().decode()
    except Exception as exc:  # noqa: BLE001 - reported
        return str(exc)


def redis_stop():
    sh("redis-cli -h 127.0.0.1 -p 6379 shutdown nosave", check=False)


def redis_start():
    sh(REDIS_START, check=False)
    for _ in range(50):
        if "PONG" in sh("redis-cli -h 127.0.0.1 -p 6379 ping", check=False).stdout:
            return
        time.sleep(0.1)


def stack_start():
    sh(f"dropdb -h 127.0.0.1 -U postgres --if-exists --force {DB_NAME}")
    sh(f"createdb -h 127.0.0.1 -U postgres {DB_NAME}")
    sh("redis-cli -h 127.0.0.1 -p 6379 -n 10 flushdb; redis-cli -n 11 flushdb; redis-cli -n 12 flushdb", check=False)
    manage("migrate", "--noinput")
    print("stress: loading demo data (catalogue, sessions, a trained model)...", flush=True)
    manage("demo_setup")
    res = sh("bash scripts/serve.sh start", check=False)
    print(res.stdout.strip(), flush=True)
    if res.returncode != 0:
        raise SystemExit(f"stack did not start: {res.stderr}")


def stack_stop():
    sh("bash scripts/serve.sh stop", check=False)


def phase_load(report: dict) -> None:
    ledger = REPORTS / "stress-ledger.jsonl"
    ledger.unlink(missing_ok=True)
    prefix = str(REPORTS / "locust")
    env = dict(ENV, STRESS_LEDGER=str(ledger))
    outage = {}

    def inject():
        if os.environ.get("STRESS_SKIP_REDIS_FAULT"):
            return
        time.sleep(DURATION / 3)
        outage["redis_stopped_at"] = time.time()
        redis_stop()
        time.sleep(15)
        redis_start()
        outage["redis_started_at"] = time.time()

    injector = threading.Thread(target=inject, daemon=True)
    started = time.time()
    injector.start()
    res = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "locust"), "-f", str(ROOT / "bench" / "stress" / "locustfile.py"),
         "--headless", "-u", str(USERS), "-r", str(USERS), "-t", f"{DURATION}s", "--host", BASE,
         "--csv", prefix, "--csv-full-history", "--only-summary", "--stop-timeout", "10"],
        cwd=ROOT, env=env, text=True, capture_output=True, timeout=DURATION + 120,
    )
    injector.join(timeout=30)
    redis_start()  # whatever happened, leave Redis running
    report["load"] = {"seconds": round(time.time() - started, 1), "users": USERS,
                      "redis_outage_seconds": round(outage.get("redis_started_at", 0) - outage.get("redis_stopped_at", 0), 1),
                      "endpoints": {}, "locust_exit": res.returncode}
    with open(prefix + "_stats.csv") as fh:
        for row in csv.DictReader(fh):
            report["load"]["endpoints"][row["Name"]] = {
                "requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                "rps": round(float(row["Requests/s"]), 1), "p50_ms": float(row["50%"] or 0),
                "p99_ms": float(row["99%"] or 0),
            }
    failures = []
    with open(prefix + "_failures.csv") as fh:
        failures = list(csv.DictReader(fh))
    report["load"]["failure_samples"] = failures[:10]
    total = report["load"]["endpoints"].get("Aggregated", {})
    report["load"]["errors"] = total.get("failures", -1)

    # Lost writes: every accepted event batch and order must be in PostgreSQL.
    accepted_events: dict[str, int] = {}
    orders: list[int] = []
    for line in ledger.read_text().splitlines() if ledger.exists() else []:
        rec = json.loads(line)
        if rec["kind"] == "events":
            accepted_events[rec["visit"]] = accepted_events.get(rec["visit"], 0) + rec["count"]
        else:
            orders.append(rec["order"])
    check = django_eval(
        "from tracking.models import Event\nfrom shop.models import Order\n"
        f"visits = {json.dumps(list(accepted_events))}\norders = {json.dumps(orders)}\n"
        "from django.db.models import Count\n"
        "rows = Event.objects.filter(visit__uuid__in=visits, event_type__in=['impression','click'])"
        ".values('visit__uuid').annotate(n=Count('id'))\n"
        "out = {'events': {str(r['visit__uuid']): r['n'] for r in rows}, "
        "'orders_found': Order.objects.filter(pk__in=orders).count()}"
    )
    stored = check["events"]
    lost = {v: n - stored.get(v, 0) for v, n in accepted_events.items() if stored.get(v, 0) < n}
    report["load"]["accepted_events"] = sum(accepted_events.values())
    report["load"]["stored_events"] = sum(min(stored.get(v, 0), n) for v, n in accepted_events.items())
    report["load"]["lost_events"] = sum(lost.values())
    report["load"]["accepted_orders"] = len(orders)
    report["load"]["stored_orders"] = check["orders_found"]
    report["load"]["lost_orders"] = len(orders) - check["orders_found"]


def phase_postgres(report: dict) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    # After the Redis outage of the load phase the worker may still be reconnecting to the broker
    # (the Celery ping of /health/): wait until the site is healthy before restarting PostgreSQL.
    waited = time.time()
    while http_status("/health/?format=json") != 200:
        if time.time() - waited > 60:
            raise RuntimeError("the stack did not become healthy after the load phase: " + fetch_health())
        time.sleep(0.5)
    t0 = time.time()
    sh(f"pg_ctlcluster --skip-systemctl-redirect {version} main restart")
    restarted = time.time()
    recovered = None
    while time.time() - restarted < 30:
        if http_status("/api/products/?page=1") == 200 and http_status("/health/?format=json") == 200:
            recovered = time.time()
            break
        time.sleep(0.2)
    report["postgres_restart"] = {
        "restart_seconds": round(restarted - t0, 2),
        "recovered_after_seconds": None if recovered is None else round(recovered - restarted, 2),
        "ok": recovered is not None and recovered - restarted <= 10,
    }


CORRUPT_PROBE = """
import hashlib, time
from django.conf import settings
from recommendations import services
from recommendations.models import ModelVersion
from recommendations.serving import artifact_path
active = ModelVersion.objects.get(status="active")
data = artifact_path(active).read_bytes()
data = data[: len(data) // 2]  # truncated
name = f"{active.kind}-corrupt-{int(time.time())}.bin"
(settings.MODEL_DIR / name).write_bytes(data)
mv = ModelVersion.objects.create(version=f"corrupt-{int(time.time())}", kind=active.kind, status="ready",
    artifact=name, artifact_sha256=hashlib.sha256(data).hexdigest(), artifact_size=len(data),
    n_items=active.n_items, metrics=active.metrics, parameters=active.parameters)
try:
    services.model_activate(mv)
    refused, reason = False, ""
except services.ActivationRefused as exc:
    refused, reason = True, str(exc)
out = {"active_before": active.version, "candidate": mv.version, "refused": refused, "reason": reason,
       "active_in_db_after": ModelVersion.objects.get(status="active").version}
"""


def phase_corrupt_artifact(report: dict) -> None:
    out = django_eval(CORRUPT_PROBE)
    time.sleep(3)
    out["serving_after"] = active_version_served()
    out["ok"] = (out["refused"] is True and out["active_in_db_after"] == out["active_before"]
                 and out["serving_after"] == out["active_before"])
    report["corrupt_artifact"] = out


_probe_items: list[int] = []


def active_version_served() -> str | None:
    """The model version the web processes answer with, for a session of items the model knows."""
    if not _probe_items:
        _probe_items.extend(django_eval(
            "from tracking.models import Event\n"
            "out = list(Event.objects.filter(event_type='view').order_by('-id').values_list('product_id', flat=True)[:3])"
        ))
    req = urllib.request.Request(BASE + "/api/recommendations/", data=json.dumps({"items": _probe_items, "k": 3}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            body = json.loads(res.read())
            return body.get("model_version") if body.get("strategy") != "popular" else f"popular ({body.get('strategy')})"
    except Exception as exc:  # noqa: BLE001 - reported
        return f"error: {exc}"


def run_state_wait(run_id: int, status: str, timeout: float, interval: float) -> dict:
    """Poll a training run until it reaches ``status`` (or the timeout); returns its last state."""
    deadline = time.time() + timeout
    while True:
        state = django_eval(f"from recommendations.models import TrainingRun\nr = TrainingRun.objects.get(pk={run_id})\n"
                            "out = {'status': r.status, 'stage': r.stage, 'error': r.error}")
        if state["status"] == status or time.time() >= deadline:
            return state
        time.sleep(interval)


QUEUE_RUN = ("from recommendations import services\n"
             f"run = services.training_run_queue(params={STRESS_TRAIN_PARAMS!r}, activate=False)\n"
             "out = {'run_id': run.pk}")


def phase_worker_killed(report: dict) -> None:
    before = active_version_served()
    run_id = django_eval(QUEUE_RUN)["run_id"]
    run_state_wait(run_id, "running", timeout=120, interval=0.5)
    time.sleep(2)
    pid = int((ROOT / "var" / "run" / "worker.pid").read_text())
    os.killpg(pid, signal.SIGKILL)
    time.sleep(1)
    sh("bash scripts/serve.sh start", check=False)  # restarts only what is not running: the worker
    # Beat runs recommendations.tasks.training_runs_reap every minute: no new run is needed for this.
    state = run_state_wait(run_id, "failed", timeout=90, interval=1.0)
    again = django_eval(QUEUE_RUN)
    after = active_version_served()
    report["worker_killed"] = {
        "run": run_id, "state_after_kill": {"status": state["status"], "error": state["error"]},
        "serving_before": before, "serving_after": after, "new_run_started": bool(again.get("run_id")),
        "ok": state["status"] == "failed" and bool(again.get("run_id")) and after == before,
    }


def plot(report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    endpoints = {k: v for k, v in report["load"]["endpoints"].items() if k != "Aggregated"}
    names = list(endpoints)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    y = range(len(names))
    axes[0].barh([i - 0.2 for i in y], [endpoints[n]["p50_ms"] for n in names], height=0.4, label="p50")
    axes[0].barh([i + 0.2 for i in y], [endpoints[n]["p99_ms"] for n in names], height=0.4, label="p99")
    axes[0].set_yticks(list(y), names)
    axes[0].set_xlabel("latency (ms)")
    axes[0].legend()
    axes[0].set_title(f"{DURATION} s, {USERS} users, Redis down {report['load']['redis_outage_seconds']} s")
    history = REPORTS / "locust_stats_history.csv"
    if history.exists():
        rows = [r for r in csv.DictReader(history.open()) if r["Name"] == "Aggregated"]
        t0 = int(rows[0]["Timestamp"]) if rows else 0
        axes[1].plot([int(r["Timestamp"]) - t0 for r in rows], [float(r["Requests/s"]) for r in rows], label="requests/s")
        axes[1].plot([int(r["Timestamp"]) - t0 for r in rows], [float(r["Failures/s"]) for r in rows], label="failures/s")
        axes[1].set_xlabel("seconds")
        axes[1].legend()
        axes[1].set_title("throughput")
    fig.tight_layout()
    fig.savefig(REPORTS / "stress.png", dpi=90)


def main() -> int:
    REPORTS.mkdir(parents=True, exist_ok=True)
    sh("bash scripts/services.sh")
    report: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    stack_start()
    try:
        phase_load(report)
        if not os.environ.get("STRESS_LOAD_ONLY"):
            phase_postgres(report)
            phase_corrupt_artifact(report)
            phase_worker_killed(report)
    finally:
        stack_stop()
        redis_start()
    plot(report)
    load = report["load"]
    report["ok"] = (load["errors"] == 0 and load["lost_events"] == 0 and load["lost_orders"] == 0
                    and all(report[p]["ok"] for p in ("postgres_restart", "corrupt_artifact", "worker_killed")
                            if p in report))
    (REPORTS / "stress.json").write_text(json.dumps(report, indent=2))
    print(f"{'endpoint':32} {'requests':>9} {'fail':>5} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for name, e in load["endpoints"].items():
        print(f"{name:32} {e['requests']:9d} {e['failures']:5d} {e['rps']:7.1f} {e['p50_ms']:8.0f} {e['p99_ms']:8.0f}")
    print(f"events accepted {load['accepted_events']}, stored {load['stored_events']}, lost {load['lost_events']}; "
          f"orders accepted {load['accepted_orders']}, stored {load['stored_orders']}, lost {load['lost_orders']}")
    for phase in ("postgres_restart", "corrupt_artifact", "worker_killed"):
        if phase in report:
            print(f"{phase}:", json.dumps(report[phase]))
    print(json.dumps({"ok": report["ok"], "errors": load["errors"], "lost_events": load["lost_events"],
                      "lost_orders": load["lost_orders"]}))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
