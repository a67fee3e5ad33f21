"""The foundation: settings from the environment, health, production guard, compose file, Celery, logging."""
import logging
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DJANGO_DEBUG",
                "SECRET_KEY", "ALLOWED_HOSTS", "CELERY_TASK_ALWAYS_EAGER", "DJANGO_ALLOW_ASYNC_UNSAFE")


def clean_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS and not k.startswith("DJANGO_SETTINGS")}
    env.update(SHOP_VAR_DIR=str(tmp_path), ENV_FILE=str(tmp_path / "absent.env"), PYTHONPATH=str(ROOT))
    env.update(extra)
    return env


def run(args, env, timeout=120):
    return subprocess.run([PY, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


PROBE = """
import django, json, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
django.setup()
from django.conf import settings
from django.db import connection
from django.test import Client
r = Client().get("/health/?format=json")
print(json.dumps({"status": r.status_code, "body": r.json(), "db": connection.vendor,
                  "cache": settings.CACHES["default"]["BACKEND"], "eager": settings.CELERY_TASK_ALWAYS_EAGER}))
"""


def test_embedded_default_boots_and_health_is_ok(tmp_path):
    env = clean_env(tmp_path)
    migrate = run(["manage.py", "migrate", "--noinput", "-v0"], env)
    assert migrate.returncode == 0, migrate.stderr
    out = run(["-c", PROBE], env)
    assert out.returncode == 0, out.stderr
    import json

    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["status"] == 200, probe
    assert probe["db"] == "sqlite"
    assert probe["cache"].endswith("LocMemCache")
    assert probe["eager"] is True
    assert (tmp_path / "db.sqlite3").exists()


@pytest.mark.django_db
def test_health_on_postgres_and_redis(client):
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        pytest.skip("run through `make test`, which sets DATABASE_URL (PostgreSQL) and REDIS_URL")
    assert connection.vendor == "postgresql"
    assert settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache"
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.db"  # never served from Redis
    response = client.get("/health/?format=json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["Database(alias='default')"] == "OK"
    assert body["Cache(alias='default')"] == "OK"


def test_production_refuses_to_start_without_secret_key(tmp_path):
    out = run(["manage.py", "check"], clean_env(tmp_path, DJANGO_DEBUG="false", ALLOWED_HOSTS="shop.example"))
    assert out.returncode != 0
    assert "Production mode (DJANGO_DEBUG=false) needs SECRET_KEY set" in out.stderr
    out = run(["manage.py", "check"], clean_env(tmp_path, DJANGO_DEBUG="false", SECRET_KEY="k" * 60))
    assert out.returncode != 0
    assert "needs ALLOWED_HOSTS set" in out.stderr


def test_production_passes_check_deploy(tmp_path):
    env = clean_env(tmp_path, DJANGO_DEBUG="false", ALLOWED_HOSTS="shop.example",
                    SECRET_KEY="Zq3" + uuid.uuid4().hex + uuid.uuid4().hex)
    out = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "System check identified no issues" in out.stdout


def test_compose_file_refers_to_real_things():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "redis", "web", "worker", "beat"}
    assert services["db"]["image"] == "postgres:16"
    assert services["redis"]["image"].startswith("redis:")
    app_services = ["web", "worker", "beat"]
    images = {services[name]["image"] for name in app_services}
    assert images == {"shop:latest"}, "web, worker and beat must share one image"
    env_example = ROOT / ".env.example"
    settings_src = (ROOT / "shop" / "settings.py").read_text()
    env_vars = [line.split("=", 1)[0] for line in env_example.read_text().splitlines() if line and not line.startswith("#")]
    for var in env_vars:
        assert f'"{var}"' in settings_src, f"{var} in .env.example is not read by shop/settings.py"
    for name in app_services:
        service = services[name]
        assert service["build"] == "."
        assert (ROOT / "Dockerfile").is_file()
        assert service["env_file"] == ".env"
        for dep in service["depends_on"]:
            assert dep in services
        command = service["command"]
        for module in re.findall(r"gunicorn (\S+)", command):
            assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module
        for app in re.findall(r"celery -A (\S+)", command):
            assert (ROOT / app / "celery.py").is_file(), app
        if "manage.py" in command:
            assert (ROOT / "manage.py").is_file()
    worker_queues = set(re.search(r"-Q (\S+)", services["worker"]["command"]).group(1).split(","))
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} | {settings.CELERY_TASK_DEFAULT_QUEUE}
    assert routed <= worker_queues, f"queues {routed - worker_queues} have no worker"
    for volume_use in services["web"].get("volumes", []):
        assert volume_use.split(":")[0] in compose["volumes"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "requirements.txt" in dockerfile and "shop.wsgi" in dockerfile


def test_celery_task_round_trip_through_redis(tmp_path):
    broker = os.environ.get("TEST_BROKER_URL")
    if not broker:
        pytest.skip("TEST_BROKER_URL (a Redis URL) is set by `make test`")
    from celery import Celery

    queue = f"probe-{uuid.uuid4().hex[:8]}"
    env = clean_env(tmp_path, CELERY_BROKER_URL=broker, CELERY_RESULT_BACKEND=broker)
    worker = subprocess.Popen(
        [PY, "-m", "celery", "-A", "shop", "worker", "-Q", queue, "-P", "solo", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    client = Celery("probe", broker=broker, backend=broker)
    client.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    try:
        result = client.send_task("shop.tasks.echo", args=["ping"], queue=queue, headers={"request_id": "req-abc123"})
        assert result.get(timeout=60) == {"echo": "ping", "request_id": "req-abc123"}
    finally:
        worker.terminate()
        try:
            log = worker.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            worker.kill()
            log = worker.communicate()[0]
    assert "[req-abc123]" in log, "the task's log lines carry the request id"


@pytest.mark.django_db
def test_request_log_line_and_id(client, caplog):
    with caplog.at_level(logging.INFO, logger="shop.request"):
        response = client.get("/health/?format=json", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    lines = [r for r in caplog.records if r.name == "shop.request"]
    assert len(lines) == 1
    assert lines[0].getMessage().startswith("GET /health/?format=json 200")
    generated = client.get("/health/?format=json")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/health/?format=json", HTTP_X_REQUEST_ID="bad id;drop")["X-Request-ID"] != "bad id;drop"


def test_queued_tasks_carry_the_request_id():
    from shop.celery import _propagate_request_id
    from shop.logging import set_request_id

    set_request_id("rid-42")
    try:
        headers = {}
        _propagate_request_id(headers=headers)
        assert headers == {"request_id": "rid-42"}
    finally:
        set_request_id(None)


@pytest.mark.django_db
def test_api_schema_and_docs_are_served_without_cdn(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist" in html
    assert "cdn" not in html.lower()


# --- Production by default: servers refuse debug mode, the real stack runs in production --------

PRODUCTION = {"DJANGO_DEBUG": "false", "ALLOWED_HOSTS": "shop.example", "SECRET_KEY": "Zq3" + "k7" * 30}


def test_wsgi_and_asgi_servers_refuse_debug_mode_without_the_flag(tmp_path):
    for entry in ("shop.wsgi", "shop.asgi"):
        for debug in ({}, {"DJANGO_DEBUG": "true"}):  # unset is debug (the embedded default)
            out = run(["-c", f"import {entry}"], clean_env(tmp_path, **debug))
            assert out.returncode != 0, (entry, debug)
            assert "Refusing to serve with DEBUG on" in out.stderr
            assert "ALLOW_DEBUG_SERVER=true" in out.stderr
        assert run(["-c", f"import {entry}"], clean_env(tmp_path, ALLOW_DEBUG_SERVER="true")).returncode == 0
        assert run(["-c", f"import {entry}"], clean_env(tmp_path, **PRODUCTION)).returncode == 0
    # `manage.py runserver` (make demo) loads the same WSGI application and stays in debug mode.
    runserver = run(["-c", "import sys; sys.argv = ['manage.py', 'runserver']; import shop.wsgi"], clean_env(tmp_path))
    assert runserver.returncode == 0, runserver.stderr


def test_gunicorn_does_not_start_in_debug_mode(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gunicorn = Path(PY).with_name("gunicorn")
    out = subprocess.run([str(gunicorn), "shop.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"], cwd=ROOT,
                         env=clean_env(tmp_path), capture_output=True, text=True, timeout=180)
    assert out.returncode != 0  # the master exits when its worker cannot load the application
    assert "Refusing to serve with DEBUG on" in out.stdout + out.stderr


def _serve(tmp_path, *args, **env):
    return subprocess.run(["bash", "scripts/serve.sh", *args], cwd=ROOT, env=clean_env(tmp_path, **env),
                          capture_output=True, text=True, timeout=120)


SERVE_PROBE = ("import django, json, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shop.settings'); "
               "django.setup(); from django.conf import settings; "
               "print(json.dumps({'debug': settings.DEBUG, 'key': settings.SECRET_KEY, 'hosts': settings.ALLOWED_HOSTS, "
               "'ssl_redirect': settings.SECURE_SSL_REDIRECT}))")


def test_serve_sh_runs_the_real_stack_in_production_mode(tmp_path):
    import json

    shown = _serve(tmp_path, "env")
    assert shown.returncode == 0, shown.stderr
    assert "DJANGO_DEBUG=false" in shown.stdout.splitlines()
    assert "ALLOWED_HOSTS=127.0.0.1,localhost,[::1]" in shown.stdout.splitlines()
    first = _serve(tmp_path, "run", PY, "-c", SERVE_PROBE)
    assert first.returncode == 0, first.stderr
    probe = json.loads(first.stdout.strip().splitlines()[-1])
    assert probe["debug"] is False
    assert probe["hosts"] == ["127.0.0.1", "localhost", "[::1]"]
    assert probe["ssl_redirect"] is False  # loopback BIND: plain HTTP
    # The secret key was generated once into var/, private, and is kept for the next start.
    key_file = tmp_path / "secret_key"
    assert (key_file.stat().st_mode & 0o777) == 0o600
    assert key_file.read_text().strip() == probe["key"] and len(probe["key"]) >= 50
    again = json.loads(_serve(tmp_path, "run", PY, "-c", SERVE_PROBE).stdout.strip().splitlines()[-1])
    assert again["key"] == probe["key"]
    # Given settings win; a public BIND keeps HTTPS on and needs ALLOWED_HOSTS.
    given = json.loads(_serve(tmp_path, "run", PY, "-c", SERVE_PROBE, SECRET_KEY="g" * 60, BIND="0.0.0.0:8000",
                              ALLOWED_HOSTS="shop.example").stdout.strip().splitlines()[-1])
    assert (given["key"], given["hosts"], given["ssl_redirect"]) == ("g" * 60, ["shop.example"], True)
    public = _serve(tmp_path, "env", BIND="0.0.0.0:8000")
    assert public.returncode == 2 and "set ALLOWED_HOSTS" in public.stderr


def test_serve_sh_refuses_debug_mode_unless_allowed(tmp_path):
    import json

    refused = _serve(tmp_path, "env", DJANGO_DEBUG="true")
    assert refused.returncode == 2
    assert "the real stack runs in production mode" in refused.stderr
    # A developer's .env with DJANGO_DEBUG=true does not turn the real stack into debug mode.
    env_file = tmp_path / "dev.env"
    env_file.write_text("DJANGO_DEBUG=true\n")
    out = _serve(tmp_path, "run", PY, "-c", SERVE_PROBE, ENV_FILE=str(env_file))
    assert json.loads(out.stdout.strip().splitlines()[-1])["debug"] is False
    assert "ignoring DJANGO_DEBUG=true" in out.stderr
    allowed = _serve(tmp_path, "run", PY, "-c", SERVE_PROBE, DJANGO_DEBUG="true", ALLOW_DEBUG_SERVER="true")
    assert json.loads(allowed.stdout.strip().splitlines()[-1])["debug"] is True


def test_images_and_compose_run_in_production_mode():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in ("web", "worker", "beat"):
        assert compose["services"][name]["environment"]["DJANGO_DEBUG"] == "false", name
    assert "ENV DJANGO_DEBUG=false" in (ROOT / "Dockerfile").read_text()
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert example["DJANGO_DEBUG"] == "false"
    assert example["SECRET_KEY"] == ""  # no shared placeholder key: production refuses to start until set
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored and ".venv" in ignored  # no secrets or local state baked into the image


def test_shop_var_dir_from_the_env_file(tmp_path):
    """SHOP_VAR_DIR in .env places the SQLite database, static files and models like any other
    setting there (it was read before .env was loaded, so .env's value was ignored)."""
    var = tmp_path / "var-from-env-file"
    env_file = tmp_path / "shop.env"
    env_file.write_text(f"SHOP_VAR_DIR={var}\n")
    env = clean_env(tmp_path, ENV_FILE=str(env_file))
    del env["SHOP_VAR_DIR"]
    probe = ("import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shop.settings'); django.setup();"
             "from django.conf import settings as s;"
             "print(s.VAR_DIR, s.DATABASES['default']['NAME'], s.STATIC_ROOT, s.MODEL_DIR)")
    out = run(["-c", probe], env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(var), str(var / "db.sqlite3"), str(var / "static"), str(var / "models")]


def test_image_builds_the_native_kernel_where_the_engine_loads_it():
    """The Dockerfile compiles the engine's int8 kernel in a stage of its own (no compiler in the
    image) with the engine's own build script, and copies it to the path the loader reads."""
    from recommendations.gru4rec import native

    dockerfile = (ROOT / "Dockerfile").read_text()
    source_dir = native.SOURCE.parent.relative_to(ROOT).as_posix()
    assert f"COPY {source_dir}/ /src/" in dockerfile
    assert "RUN python /src/builder.py /src/_i8gemv.so" in dockerfile
    assert f"COPY --from=native /src/_i8gemv.so {native.LIBRARY.relative_to(ROOT).as_posix()}" in dockerfile
    assert native.LIBRARY.relative_to(ROOT).as_posix() in (ROOT / ".dockerignore").read_text().splitlines()
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "gcc" not in final_stage
