"""`make stress`: the real stack (gunicorn, Celery, PostgreSQL, Redis) on loopback under a scripted
shopper mix, with faults injected, then a check in the database that nothing accepted was lost.

Phases (each bounded in time and requests, loopback only):
1. load: locust, 60 s; Redis (the stack's own, on its own port: cache, broker and results) is stopped
   for 15 s, and later frozen with SIGSTOP for 15 s (a stall: connections hang instead of failing).
   Every request must answer 2xx and every accepted event and order must be in PostgreSQL afterwards.
1b. races: rounds of 20 parallel cart adds (10 x A, 10 x B) and 20 parallel checkouts of one cart plus
   a retry, from one browser: no accepted cart change lost, never more than one order per cart.
1c. broker outage: Redis stopped, a staff client asks to train: the answer comes within a bound with a
   clear status, and no run is left queued once the reaper has run.
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
# The stack's own Redis (cache, sessions' throttles, broker, results), started by this script on its
# own port, so stopping and freezing it touches nobody else's Redis.
REDIS_PORT = int(os.environ.get("STRESS_REDIS_PORT", "6391"))
RACE_ROUNDS = int(os.environ.get("STRESS_RACE_ROUNDS", "5"))
RACE_WIDTH = 20

ENV = dict(
    os.environ,
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    REDIS_URL=f"redis://127.0.0.1:{REDIS_PORT}/0",
    CELERY_BROKER_URL=f"redis://127.0.0.1:{REDIS_PORT}/1",
    CELERY_RESULT_BACKEND=f"redis://127.0.0.1:{REDIS_PORT}/2",
    # A queued run that no worker takes is failed by the reaper after this long (phase 1c waits for it).
    TRAINING_QUEUE_GRACE_SECONDS="30",
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


sys.path.insert(0, str(ROOT))
from tests.faults import PrivateRedis  # noqa: E402 - the project root is on the path only now

_redis: PrivateRedis | None = None


def redis_stop():
    _redis.stop()


def redis_start():
    if _redis.frozen:
        _redis.thaw()
    _redis.start()


def stack_start():
    sh(f"dropdb -h 127.0.0.1 -U postgres --if-exists --force {DB_NAME}")
    sh(f"createdb -h 127.0.0.1 -U postgres {DB_NAME}")
    manage("migrate", "--noinput")
    print("stress: loading demo data (catalogue, sessions, a trained model)...", flush=True)
    manage("demo_setup")
    res = sh("bash scripts/serve.sh start", check=False)
    print(res.stdout.strip(), flush=True)
    if res.returncode != 0:
        raise SystemExit(f"stack did not start: {res.stderr}")
    # The probes read sessions, which are signed with the stack's key (serve.sh keeps it in SHOP_VAR_DIR).
    ENV["SECRET_KEY"] = (Path(ENV["SHOP_VAR_DIR"]) / "secret_key").read_text().strip()


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
        time.sleep(DURATION / 4)
        outage["redis_stopped_at"] = time.time()
        redis_stop()
        time.sleep(15)
        redis_start()
        outage["redis_started_at"] = time.time()
        time.sleep(max(DURATION * 0.6 - (time.time() - started), 1))
        outage["redis_frozen_at"] = time.time()
        _redis.freeze()
        time.sleep(15)
        _redis.thaw()
        outage["redis_thawed_at"] = time.time()

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
                      "redis_stall_seconds": round(outage.get("redis_thawed_at", 0) - outage.get("redis_frozen_at", 0), 1),
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


CART_PROBE = """
from django.contrib.sessions.models import Session
from shop.models import Cart, CartItem, Order
data = Session.objects.get(session_key={key!r}).get_decoded()
owner = data.get("shop_owner")
items = dict(CartItem.objects.filter(cart__owner=owner, cart__status="open").values_list("product_id", "quantity"))
ordered = list(Order.objects.filter(owner=owner).values_list("pk", flat=True)) if owner else []
out = {{"owner": owner, "open_cart": {{str(k): v for k, v in items.items()}}, "orders": ordered}}
"""


def phase_races(report: dict) -> None:
    """Parallel cart adds and parallel checkouts of one cart from one browser, over HTTP through
    gunicorn's workers: every accepted add kept, one order per cart, a retry gets the same order."""
    from tests.live import Browser, parallel

    a, b = django_eval("from catalog.models import Product\n"
                       "out = list(Product.objects.filter(is_active=True).order_by('pk').values_list('pk', flat=True)[:2])")
    rounds = []
    for _ in range(RACE_ROUNDS):
        browser = Browser(BASE)
        browser.get("/")
        browser.get("/")  # the cookie came back: a browser, so it gets its session
        browser.post(f"/cart/add/{a}/", {"quantity": 1})  # the session is saved with its owner id
        key = browser.http.cookies.get("sessionid")
        clones = [browser.clone() for _ in range(RACE_WIDTH)]
        adds = parallel(lambda i: clones[i].post(f"/cart/add/{a if i % 2 else b}/", {"quantity": 1}).status_code,
                        RACE_WIDTH)
        accepted_a = 1 + sum(1 for i, st in enumerate(adds) if st == 302 and i % 2)
        accepted_b = sum(1 for i, st in enumerate(adds) if st == 302 and not i % 2)
        cart = django_eval(CART_PROBE.format(key=key))["open_cart"]
        lost = (accepted_a - cart.get(str(a), 0)) + (accepted_b - cart.get(str(b), 0))
        answers = parallel(lambda i: clones[i].post("/checkout/", {"name": "Race", "email": "race@example.com"}),
                           RACE_WIDTH)
        targets = {r.headers.get("Location", "").split("?")[0] for r in answers if not isinstance(r, Exception)}
        retry = browser.post("/checkout/", {"name": "Race", "email": "race@example.com"})
        after = django_eval(CART_PROBE.format(key=key))
        rounds.append({
            "adds_accepted": accepted_a + accepted_b, "adds_lost": lost,
            "checkout_answers": sorted({r.status_code if not isinstance(r, Exception) else str(r) for r in answers}),
            "orders": len(after["orders"]), "distinct_redirects": len(targets),
            "retry_status": retry.status_code,
        })
    report["races"] = {
        "rounds": rounds,
        "lost_cart_updates": sum(r["adds_lost"] for r in rounds),
        "duplicated_orders": sum(max(r["orders"] - 1, 0) for r in rounds),
        "missing_orders": sum(1 for r in rounds if r["orders"] == 0),
    }
    report["races"]["ok"] = (report["races"]["lost_cart_updates"] == 0 and report["races"]["duplicated_orders"] == 0
                             and report["races"]["missing_orders"] == 0
                             and all(r["distinct_redirects"] == 1 for r in rounds))


STAFF_TOKEN = """
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
user, _ = User.objects.get_or_create(username="stress-ops", defaults={"is_staff": True})
user.user_permissions.add(*Permission.objects.filter(codename__in=["train_model", "view_trainingrun"]))
out = Token.objects.get_or_create(user=user)[0].key
"""


def phase_broker_outage(report: dict) -> None:
    """Redis (the broker) down while a staff client asks to train: a bounded answer with a clear
    status, and no run left queued after the reaper's grace time."""
    import requests

    token = django_eval(STAFF_TOKEN)
    redis_stop()
    t0 = time.time()
    try:
        res = requests.post(BASE + "/api/models/train/", json={}, timeout=30,
                            headers={"Authorization": f"Token {token}"})
        answer = {"status": res.status_code, "body": res.json() if res.headers.get("content-type", "").startswith(
            "application/json") else res.text[:200]}
    except requests.RequestException as exc:
        answer = {"status": None, "body": str(exc)}
    seconds = round(time.time() - t0, 2)
    redis_start()
    # The reaper (beat, every minute) fails queued runs no worker took within the grace time.
    deadline = time.time() + 150
    while True:
        queued = django_eval("from recommendations.models import TrainingRun\n"
                             "out = TrainingRun.objects.filter(status='queued').count()")
        if queued == 0 or time.time() > deadline:
            break
        time.sleep(5)
    report["broker_outage"] = {"answer": answer, "seconds": seconds, "runs_left_queued": queued,
                               "ok": answer["status"] in (202, 503) and seconds <= 5 and queued == 0}


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
from django.core.files.base import ContentFile
from recommendations import artifacts, registry
from recommendations.models import ModelVersion
active = ModelVersion.objects.get(status="active")
data = artifacts.local_path(active).read_bytes()
data = data[: len(data) // 2]  # truncated
name = artifacts.storage().save(f"{active.kind}-corrupt-{int(time.time())}.bin", ContentFile(data))
mv = ModelVersion.objects.create(version=f"corrupt-{int(time.time())}", kind=active.kind, status="ready",
    artifact=name, artifact_sha256=hashlib.sha256(data).hexdigest(), artifact_size=len(data),
    n_items=active.n_items, metrics=active.metrics, parameters=active.parameters)
try:
    registry.model_activate(mv)
    refused, reason = False, ""
except registry.ActivationRefused as exc:
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


QUEUE_RUN = ("from recommendations import training\n"
             f"run = training.training_run_queue(params={STRESS_TRAIN_PARAMS!r}, activate=False)\n"
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
    global _redis
    REPORTS.mkdir(parents=True, exist_ok=True)
    sh("bash scripts/services.sh")
    _redis = PrivateRedis(port=REDIS_PORT)
    report: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    stack_start()
    try:
        phase_load(report)
        phase_races(report)
        phase_broker_outage(report)
        if not os.environ.get("STRESS_LOAD_ONLY"):
            phase_postgres(report)
            phase_corrupt_artifact(report)
            phase_worker_killed(report)
    finally:
        stack_stop()
        _redis.close()
    plot(report)
    load = report["load"]
    report["ok"] = (load["errors"] == 0 and load["lost_events"] == 0 and load["lost_orders"] == 0
                    and all(report[p]["ok"] for p in ("races", "broker_outage", "postgres_restart",
                                                       "corrupt_artifact", "worker_killed") if p in report))
    (REPORTS / "stress.json").write_text(json.dumps(report, indent=2))
    print(f"{'endpoint':32} {'requests':>9} {'fail':>5} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for name, e in load["endpoints"].items():
        print(f"{name:32} {e['requests']:9d} {e['failures']:5d} {e['rps']:7.1f} {e['p50_ms']:8.0f} {e['p99_ms']:8.0f}")
    print(f"events accepted {load['accepted_events']}, stored {load['stored_events']}, lost {load['lost_events']}; "
          f"orders accepted {load['accepted_orders']}, stored {load['stored_orders']}, lost {load['lost_orders']}")
    print(f"races: {RACE_ROUNDS} rounds of {RACE_WIDTH} parallel cart adds and {RACE_WIDTH} parallel checkouts: "
          f"cart updates lost {report['races']['lost_cart_updates']}, "
          f"orders duplicated {report['races']['duplicated_orders']}")
    for phase in ("broker_outage", "postgres_restart", "corrupt_artifact", "worker_killed"):
        if phase in report:
            print(f"{phase}:", json.dumps(report[phase]))
    print(json.dumps({"ok": report["ok"], "errors": load["errors"], "lost_events": load["lost_events"],
                      "lost_orders": load["lost_orders"], "lost_cart_updates": report["races"]["lost_cart_updates"],
                      "duplicated_orders": report["races"]["duplicated_orders"]}))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
