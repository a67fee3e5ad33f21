"""A live shop for race and fault tests: gunicorn with several worker processes in production
mode on the test database, so parallel requests really run in parallel (one per worker), as in a
deployment. Used through the ``live_shop`` fixture (conftest.py at the project root)."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(settings_dict: dict) -> str:
    user = settings_dict.get("USER") or "postgres"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    password = settings_dict.get("PASSWORD") or ""
    auth = user + (":" + urllib.parse.quote(password) if password else "")
    return f"postgres://{auth}@{host}:{port}/{settings_dict['NAME']}"


@dataclass
class LiveShop:
    """A running gunicorn; ``url`` is its base URL, ``env`` the environment it runs with."""

    url: str
    env: dict
    process: subprocess.Popen
    log: Path
    extra: dict = field(default_factory=dict)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)

    def client(self) -> "Browser":
        return Browser(self.url)


def start(settings_dict: dict, var_dir: Path, *, workers: int = 3, extra_env: dict | None = None,
          timeout: float = 60.0) -> LiveShop:
    """Start gunicorn on a free port and wait until it answers; raises with its log if it does not."""
    var_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PYTEST", "CELERY_")) and k not in ("DATABASE_URL", "ENV_FILE")
    }
    env.update({
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "ENV_FILE": "/dev/null",
        "DATABASE_URL": database_url(settings_dict),
        "DJANGO_DEBUG": "false",
        "SECRET_KEY": "live-test-" + "k" * 50,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "SHOP_VAR_DIR": str(var_dir),
        "MODEL_DIR": str(var_dir / "models"),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra_env or {})
    static_done = var_dir / "static" / "staticfiles.json"
    if not static_done.exists():
        subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env,
                       check=True, timeout=120)
    log = var_dir / f"gunicorn-{port}.log"
    process = subprocess.Popen(
        [str(GUNICORN), "shop.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--timeout", "60", "--graceful-timeout", "5"],
        cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            # Not an API path: a probe that times out while the workers boot stays in gunicorn's
            # backlog and is answered later; on a throttled path it would spend a request of the
            # throttle tests' budget after they reset the counters (seen at load 8).
            if requests.get(url + "/admin/login/", timeout=2).status_code < 500:
                shop = LiveShop(url=url, env=env, process=process, log=log)
                _warm(shop, workers)
                return shop
        except requests.RequestException:
            pass
        time.sleep(0.25)
    text = log.read_text(errors="replace")[-4000:]
    LiveShop(url=url, env=env, process=process, log=log).stop()
    raise RuntimeError(f"gunicorn did not answer on {url}:\n{text}")


def _warm(shop: LiveShop, workers: int) -> None:
    """Every worker imports lazily on its first request; warm them all so races are not skewed."""
    def hit():
        try:
            # Long enough that no warm-up request is still in flight when a test starts (a
            # throttled one answered after the test reset the counters would count against it).
            requests.get(shop.url + "/api/categories/", timeout=180)
        except requests.RequestException:
            pass

    threads = [threading.Thread(target=hit) for _ in range(workers * 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class Browser:
    """A cookie-keeping HTTP client that also sends Django's CSRF token like a form does."""

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.base + path, timeout=kw.pop("timeout", 30), **kw)

    def csrf(self) -> str:
        token = self.http.cookies.get("csrftoken")
        if not token:
            page = self.get("/cart/")
            token = self.http.cookies.get("csrftoken")
            if not token:
                match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
                token = match.group(1) if match else ""
        return token

    def post(self, path: str, data=None, **kw) -> requests.Response:
        data = dict(data or {})
        token = self.csrf()
        data.setdefault("csrfmiddlewaretoken", token)
        headers = {"Referer": self.base + path, "X-CSRFToken": token, **kw.pop("headers", {})}
        return self.http.post(self.base + path, data=data, headers=headers, timeout=kw.pop("timeout", 30),
                              allow_redirects=kw.pop("allow_redirects", False), **kw)

    def clone(self) -> "Browser":
        """Another connection with the same cookies (a second tab, a retried request)."""
        other = Browser(self.base)
        other.http.cookies.update(self.http.cookies)
        return other


def parallel(fn, n: int) -> list:
    """Run ``fn(i)`` in ``n`` threads released together by a barrier; results in order."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
