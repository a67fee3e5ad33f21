"""One var dir (static files collected once) for the live shops a test session starts beyond the
``live_shop`` fixture: production mode's collectstatic (hashing and compressing every file) takes
minutes on a loaded machine, so it runs once per session here, with a timeout that allows for that."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from tests.live import ROOT

_lock = threading.Lock()


def shared_var_dir(tmp_path_factory) -> Path:
    var_dir = tmp_path_factory.getbasetemp() / "live-var-shared"
    with _lock:
        var_dir.mkdir(exist_ok=True)
        if not (var_dir / "static" / "staticfiles.json").exists():
            env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
            env.update(DJANGO_SETTINGS_MODULE="shop.settings", ENV_FILE="/dev/null", DJANGO_DEBUG="false",
                       SECRET_KEY="collectstatic-" + "k" * 50, ALLOWED_HOSTS="127.0.0.1", SHOP_VAR_DIR=str(var_dir))
            subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env,
                           check=True, timeout=900)
    return var_dir
