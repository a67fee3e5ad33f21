"""Operator commands behave like Unix tools: a failure is a non-zero exit status with the error as
one line on stderr (no traceback, no library's message), a success a summary line on stdout. Each
command runs as a real process, as a shell or cron sees it, against this test run's database."""
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)  # the child process must see the rows a test writes


@pytest.fixture(scope="module")
def env(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        db = connection.settings_dict
    var = tmp_path_factory.mktemp("commands-var")
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    if connection.vendor == "sqlite":  # the test database is a file (shop/settings.py) the child opens too
        url = f"sqlite:///{db['NAME']}"
    elif db.get("PASSWORD"):
        url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    drop = {"TEST_DATABASE_NAME", "CELERY_BROKER_URL", "DEMO_DATA", "DJANGO_SETTINGS_MODULE"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, "DATABASE_URL": url,
            "SHOP_VAR_DIR": str(var), "MODEL_DIR": str(var / "models"), "CELERY_TASK_ALWAYS_EAGER": "1"}


def manage_many(env, *commands):
    """Run the commands side by side (a process start costs seconds: most of it Python's imports)."""
    procs = [subprocess.Popen([sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=env, text=True,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for args in commands]
    done = []
    for args, proc in zip(commands, procs):
        out, err = proc.communicate(timeout=180)
        assert "Traceback" not in out + err, err
        done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return done


def manage(env, *args, **extra_env):
    return manage_many({**env, **extra_env}, args)[0]


def fails_with_one_line(done, *words):
    """Exit status 1 and one non-empty stderr line (Django prints a CommandError as 'CommandError: ...')."""
    lines = done.stderr.splitlines()
    assert done.returncode != 0, (done.stdout, done.stderr)
    assert len(lines) == 1 and lines[0].strip(), lines
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


YOOCHOOSE_GOOD = "".join(f"{s},2014-04-0{d}T10:5{i}:09.277Z,21453650{i},0\n"
                         for s, d in ((1, 1), (2, 2), (3, 3)) for i in range(3))


def test_import_events(env, tmp_path):
    bad = tmp_path / "bad.dat"
    bad.write_text("SessionId,TimeStamp,ItemId,Category\n" + "x,not a time,1,0\n" * 3 + "1,2014-04-07T10:51:09.277Z\n")
    all_bad, missing = manage_many(env, ("import_events", str(bad), "--format", "yoochoose"),
                                   ("import_events", str(tmp_path / "missing.dat")))
    line = fails_with_one_line(all_bad, "all 4 rows are bad", "nothing imported", "line 2: bad session id")
    assert line.startswith("CommandError: ")
    fails_with_one_line(missing, "missing.dat: no such file")

    some_bad = tmp_path / "clicks.dat"
    some_bad.write_text(YOOCHOOSE_GOOD + "x,bad,1,0\n")
    done = manage(env, "import_events", str(some_bad))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [line for line in done.stdout.splitlines() if line.startswith(str(some_bad))]
    assert len(done.stdout.splitlines()) == 1
    assert ("(yoochoose): rows read 10, imported 9, skipped 1, duplicates 0, sessions 3 (3 new), "
            "products created 3") in done.stdout
    assert done.stderr.splitlines() == ["skipped line 10: bad session id (expected an integer)"]
    assert "\r" not in done.stderr + done.stdout  # no progress bar into a pipe


def test_export_sessions_with_nothing_to_export(env, tmp_path):
    fails_with_one_line(manage(env, "export_sessions", str(tmp_path / "out"), "--since", "2030-01-01"),
                        "nothing to export", "--since")
    assert not (tmp_path / "out" / "train.tsv").exists()


def test_unknown_model_version(env):
    commands = ("activate_model", "evaluate_model", "inspect_model")
    for done in manage_many(env, *((command, "UNKNOWN") for command in commands)):
        fails_with_one_line(done, "no model version 'UNKNOWN'", "train_model")


def test_train_model_without_its_data(env, tmp_path):
    fails_with_one_line(manage(env, "train_model", "--data", str(tmp_path / "none.tsv")), "no such file", "--data")


def test_import_catalog_with_only_bad_rows(env, tmp_path):
    path = tmp_path / "products.csv"
    path.write_text("event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
                    "t,v,1,0,a,acme,x,u,s\nt,v,2,0,a,acme,y,u,s\n")
    fails_with_one_line(manage(env, "import_catalog", str(path)), "all 2 rows are bad",
                        "line 2: price 'x' is not a number")


def test_demo_setup_with_a_missing_data_file(env, tmp_path):
    fails_with_one_line(manage(env, "demo_setup", DEMO_DATA=str(tmp_path / "none.csv")), "DEMO_DATA=", "no such file")


def test_inspect_model_shows_neighbours_with_product_names(tmp_path, settings, capsys):
    """In process (a model is quick to make, a process start is not): a GRU4Rec version lists a few
    items' nearest neighbours by item embedding, named from the catalogue; V-SKNN says they are per session."""
    from django.core.management import call_command

    from catalog.models import Product
    from recommendations import registry
    from recommendations.clusters import synthetic

    settings.MODEL_DIR = tmp_path / "models"
    syn = synthetic.structured_output(40, hidden=8, n_topics=4, n_categories=2, seed=0)
    model = synthetic.structured_gru4rec(syn)
    Product.objects.bulk_create(Product(external_id=str(i), name=f"Lamp {i}", slug=f"lamp-{i}") for i in range(40))
    registry.model_version_register(kind="gru4rec", model=model, version="v-syn", parameters={}, metrics={})
    call_command("inspect_model", "v-syn", "--items", "3,7", "--neighbours", "2")
    out = capsys.readouterr().out.splitlines()
    start = out.index("neighbours by item embedding (cosine), 2 each:")
    for n, item in enumerate(("3", "7")):
        block = out[start + 1 + 3 * n: start + 4 + 3 * n]
        expected = model.similar_items(item, 2)
        assert block == [f"  Lamp {item} ({item})"] + [f"    {s:6.3f}  Lamp {j} ({j})" for j, s in expected]
    assert out[-1] == "artifact OK: sha256 verified, loads with 40 items"

    import pandas as pd

    from recommendations import engine

    clicks = pd.DataFrame({"SessionId": [1, 1, 2, 2], "ItemId": ["3", "7", "3", "7"], "Time": [1.0, 2.0, 3.0, 4.0]})
    registry.model_version_register(kind="vsknn", model=engine.vsknn_train(clicks), version="v-knn", parameters={},
                                    metrics={})
    call_command("inspect_model", "v-knn")
    assert ("neighbours  none per item: vsknn finds neighbours per session (the sessions most like the shopper's), "
            "not per item") in capsys.readouterr().out.splitlines()
