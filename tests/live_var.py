"""Static files collected once, with time to spare, in the run's shared live var dir (conftest's
``live_var_dir``): production mode's collectstatic (hashing and compressing every file) can take
minutes on a loaded machine, longer than tests.live.start allows for it."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from tests.live import ROOT

_lock = threading.Lock()


def static_collected(var_dir: Path) -> Path:
    with _lock:
        if not (var_dir / "static" / "staticfiles.json").exists():
            env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
            env.update(DJANGO_SETTINGS_MODULE="shop.settings", ENV_FILE="/dev/null", DJANGO_DEBUG="false",
                       SECRET_KEY="collectstatic-" + "k" * 50, ALLOWED_HOSTS="127.0.0.1", SHOP_VAR_DIR=str(var_dir))
            subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env,
                           check=True, timeout=900)
    return var_dir
