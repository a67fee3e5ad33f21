"""The experiment results page in a real browser: two weeks of an A/B experiment's trusted events
(the treatment's recommendations clicked and bought more often), the superuser's results page with
its table, SRM line and Chart.js charts drawn; the screenshot is docs/screenshots/experiment-results.png
with ``make screenshots``."""
import datetime
import random
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from tests.e2e.test_shopper_and_staff import (  # noqa: F401  (fixtures and helpers of the e2e run)
    SHOTS, _orm_beside_playwright, browser, closes_its_connections, shot)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DAYS = 14
VISITS_PER_DAY = 160
SHOWN = 6


def experiment_with_two_weeks_of_events():
    from catalog.models import Category, Product
    from recommendations import experimenting
    from recommendations.models import ModelVersion
    from shop.models import Order
    from tracking.models import Event, Visit

    cat = Category.objects.create(name="Shoes", slug="shoes")
    Product.objects.bulk_create(Product(external_id=f"e{i}", name=f"Product {i}", slug=f"product-e{i}",
                                        category=cat, price=Decimal("20.00")) for i in range(120))
    products = list(Product.objects.values_list("pk", flat=True))
    versions = [ModelVersion.objects.create(version=v, kind="gru4rec", artifact=f"{v}.safetensors",
                                            artifact_sha256="0" * 64, artifact_size=30 * 2**20, n_items=120)
                for v in ("20261120-gru4rec", "20261127-gru4rec")]
    e = experimenting.experiment_create(
        name="Nov 27 model vs Nov 20", surface="recommended", mde=0.1, baseline_rate=0.05,
        arms=[experimenting.ArmInput("current", versions[0], 0.5), experimenting.ArmInput("new", versions[1], 0.5)])
    e = experimenting.experiment_start(e)
    start = timezone.now() - datetime.timedelta(days=DAYS - 1, hours=12)
    type(e).objects.filter(pk=e.pk).update(started_at=start)
    e.refresh_from_db()
    arms = list(e.arms.order_by("id"))
    rng = random.Random(5)
    ctr = {arms[0].pk: 0.050, arms[1].pk: 0.060}
    buy = {arms[0].pk: 0.030, arms[1].pk: 0.036}
    events, orders = [], []
    for day in range(DAYS):
        for n in range(VISITS_PER_DAY):
            arm = arms[rng.random() < 0.5]  # what the salted hash does, in effect
            source = f"recommended-x{e.pk}-{arm.pk}"
            at = start + datetime.timedelta(days=day, minutes=rng.randrange(0, 600))
            visit = Visit.objects.create(started=at, last_seen=at)
            shown = rng.sample(products, SHOWN)
            for pk in shown:
                events.append(Event(visit=visit, event_type="impression", product_id=pk, source=source,
                                    model_version=arm.model_version.version, timestamp=at))
                if rng.random() < ctr[arm.pk]:
                    events.append(Event(visit=visit, event_type="click", product_id=pk, source=source,
                                        model_version=arm.model_version.version,
                                        timestamp=at + datetime.timedelta(seconds=20)))
                    if rng.random() < 0.4:
                        events.append(Event(visit=visit, event_type="add_to_cart", product_id=pk, source="cart",
                                            timestamp=at + datetime.timedelta(seconds=60)))
            if rng.random() < buy[arm.pk]:
                orders.append((visit, at + datetime.timedelta(minutes=5), Decimal(rng.choice(["19.90", "42.50", "64.00"]))))
    Event.objects.bulk_create(events, batch_size=5000)
    for visit, at, total in orders:
        o = Order.objects.create(visit=visit, name="Shopper", email="s@example.com", total=total)
        Order.objects.filter(pk=o.pk).update(created=at)
    return e


@closes_its_connections
def test_experiment_results_page(live_server, browser):  # noqa: F811
    e = experiment_with_two_weeks_of_events()
    User.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(live_server.url + f"/admin/login/?next=/admin/recommendations/experiment/{e.pk}/results/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw-boss-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#result-table")
    for chart in ("experiment-ctr", "experiment-conversion", "experiment-visits", "experiment-p"):
        page.wait_for_selector(f'canvas[data-chart="{chart}"][data-drawn="true"]', timeout=15000)
    rows = page.eval_on_selector_all("#result-table tbody tr", "rs => rs.map(r => r.cells[0].innerText)")
    assert rows == ["current (control)", "new"]
    assert "Sample ratio check" in page.content()
    shot(page, "experiment-results.png", full_page=True)
