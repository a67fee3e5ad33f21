"""The embedded default (no broker): tasks run eagerly and quietly, without kombu looking for an
AMQP host on localhost (its "No hostname was supplied" warning filled make demo's output)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import django
django.setup()
from django.conf import settings
from shop.celery import app

@app.task
def add(a, b):
    return a + b

print(settings.CELERY_TASK_ALWAYS_EAGER, add.delay(2, 3).get())
"""


def test_a_task_without_a_broker_runs_eagerly_without_kombu_warnings(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "REDIS_", "DATABASE_"))}
    env.update(DJANGO_SETTINGS_MODULE="shop.settings", ENV_FILE="/dev/null", SHOP_VAR_DIR=str(tmp_path),
               DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    res = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True", "5"]
    assert "No hostname was supplied" not in res.stderr
    assert "kombu" not in res.stderr
