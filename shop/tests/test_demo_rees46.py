"""`make demo DATA=rees46`: the demo built from the REES46 sample (real products with their category
tree, brand and price; real view/cart/purchase sessions; a model trained on them and activated), the
data set names, and the guard against mixing generated and real products in one database."""
import io
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db.models import Count

from catalog.models import Category, Product
from recommendations import serving
from recommendations.models import ModelVersion
from shop.demo import DEMO_DATASETS, DemoDataError, demo_catalogue_generate, demo_data_resolve, demo_setup
from tracking.models import Event, ProductPopularity

REES46 = (Path(settings.BASE_DIR) / DEMO_DATASETS["rees46"]).resolve()
needs_rees46 = pytest.mark.skipif(not REES46.is_file(), reason=f"REES46 sample not available: {REES46} "
                                  "(../shared/data/rees46-head, only inside the project workspace)")


@pytest.fixture
def isolated_models(settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"
    settings.MODEL_RELOAD_INTERVAL_SECONDS = 0.0
    settings.DEMO_DATA = ""
    serving.model_unload()
    yield
    serving.model_unload()


@needs_rees46
@pytest.mark.django_db
def test_rees46_demo_builds_a_real_shop(client, isolated_models):
    out = io.StringIO()  # not a terminal: no progress bars in the output
    summary = demo_setup(stdout=out, data=demo_data_resolve(name="rees46"))
    text = out.getvalue()
    assert "it/s" not in text and "\r" not in text and "%|" not in text, text
    assert re.search(r"demo catalogue: 6493 products in \d+ categories \(6493 added now; from rees46\)", text), text

    # the catalogue: the file's products, their category tree, brand and price
    phone = Product.objects.select_related("category__parent").get(external_id="1004856")
    assert (phone.name, phone.brand, phone.currency) == ("Samsung smartphone 1004856", "samsung", "USD")
    assert phone.price > 0
    assert (phone.category.name, phone.category.parent.name) == ("Smartphone", "Electronics")
    bed = Product.objects.get(external_id="7101454")  # no brand in the file: the category leaf leads
    assert (bed.name, bed.brand, bed.category.name) == ("Bed 7101454", "", "Bed")
    assert Product.objects.exclude(category=None).count() > 3000
    assert Category.objects.filter(parent=None, slug="appliances").exists()
    assert not Product.objects.filter(external_id__startswith="demo-").exists()

    # the sessions: views, carts and purchases, in 2019
    kinds = dict(Event.objects.values_list("event_type").annotate(n=Count("id")))
    assert kinds["view"] > 16000 and kinds["add_to_cart"] > 100 and kinds["purchase"] > 100, kinds
    assert Event.objects.latest("timestamp").timestamp < datetime(2019, 10, 2, tzinfo=timezone.utc)

    # popular lists count back from the data's end, not from today
    assert ProductPopularity.objects.filter(window_days=1).count() > 1000

    # a trained, active model from these sessions; the split held out the log's last part, not all of it
    active = ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE)
    assert summary["recommendations"]["active"] == active.version and summary["recommendations"]["trained"]
    data = active.metrics["data"]
    assert data["train"]["events"] > 3 * data["test"]["events"] > 0, data
    assert data["train"]["start"].startswith("2019-10-01T00:00")

    # a product page: name, price with currency, breadcrumbs, recommendations by the active model
    html = client.get(f"/products/{phone.pk}/").content.decode()
    assert "<h1>Samsung smartphone 1004856</h1>" in html
    assert f"{phone.price} USD" in html
    assert re.search(r"All products</a>\s*› <a [^>]+>Electronics</a> › <a [^>]+>Smartphone</a>", html)
    recommended = html.split('id="recommended-for-you"')[1].split("</section>")[0]
    cards = re.findall(r'data-source="recommended" data-position="\d+" data-model-version="([^"]*)"', recommended)
    assert len(cards) >= 4 and set(cards) == {active.version}, recommended[:500]
    index = client.get("/").content.decode()
    assert "Samsung smartphone" in index

    # a second run changes nothing and keeps the model
    again = io.StringIO()
    demo_setup(stdout=again, data=demo_data_resolve(name="rees46"))
    assert "(0 added now; from rees46)" in again.getvalue()
    assert f"model {active.version} is active" in again.getvalue()
    assert ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).get() == active


@needs_rees46
@pytest.mark.django_db
def test_real_data_refuses_a_database_with_the_generated_demo(isolated_models):
    demo_catalogue_generate(n_products=20)
    with pytest.raises(DemoDataError, match=r"generated demo catalogue.*make demo DATA=rees46"):
        demo_setup(data=demo_data_resolve(name="rees46"))
    assert Product.objects.count() == 20 and not Event.objects.exists()


@pytest.mark.django_db
def test_generated_demo_refuses_a_database_with_real_products(isolated_models):
    Product.objects.create(external_id="1004856", name="Samsung smartphone 1004856", slug="samsung")
    with pytest.raises(DemoDataError, match="real data set"):
        demo_setup()


def test_unknown_data_name_is_one_clear_error():
    with pytest.raises(DemoDataError, match=r"DATA=nope: unknown data set; use DATA=rees46"):
        demo_data_resolve(name="nope")
    with pytest.raises(CommandError, match="DATA=nope: unknown data set"):
        call_command("demo_setup", "--check", "--data", "nope")
    with pytest.raises(DemoDataError, match="DEMO_DATA=/no/such.csv: no such file"):
        demo_data_resolve(path="/no/such.csv")
    assert demo_data_resolve() is None


@needs_rees46
def test_data_names_resolve_to_the_shared_files(tmp_path):
    rees46 = demo_data_resolve(name="rees46")
    assert rees46.path == REES46 and rees46.has_catalogue and rees46.label == "rees46"
    clicks = tmp_path / "clicks.dat"
    clicks.write_text("1,2014-04-01T10:51:09.277Z,214536502,0\n")
    plain = demo_data_resolve(path=str(clicks))
    assert (plain.name, plain.has_catalogue) == ("clicks", False)


def test_make_demo_with_an_unknown_data_name_exits_non_zero(tmp_path):
    """What a newcomer sees: one line that says what to do, a failed make, and no database made."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    base = Path(settings.BASE_DIR)
    done = subprocess.run(
        [make, "-s", "-o", ".venv/.installed", "demo", "DATA=nope", f"PY={sys.executable}",
         f"DEMO_DB={tmp_path / 'demo-nope.sqlite3'}"],
        cwd=base, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("CommandError")]
    assert errors == ["CommandError: DATA=nope: unknown data set; use DATA=rees46 or DATA=yoochoose, "
                      "DEMO_DATA=path for another event file, or neither for generated data"], done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "demo-nope.sqlite3").exists()
