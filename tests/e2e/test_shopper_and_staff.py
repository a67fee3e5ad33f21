"""End to end in a real browser: Playwright driving Debian's chromium (nothing downloads a browser).

A visitor opens the shop, scrolls the grid (infinite scroll loads page 2), opens three products,
sees "Recommended for you" change, clicks a recommendation (the click is recorded with its source
and model version), adds to cart, checks out and sees the order. A staff user logs into the admin,
retrains, and activates a version. Screenshots go to a temporary folder, or to SCREENSHOTS_DIR when it
is set: `make screenshots` refreshes docs/screenshots/ (the README shows them); a plain test run
leaves the checkout untouched.
"""
import functools
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import User


pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or tempfile.mkdtemp(prefix="shop-e2e-shots-"))
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
SMALL_PARAMS = "loss=cross-entropy,layers=32,batch_size=32,n_sample=64,learning_rate=0.1,momentum=0.1,n_epochs=3"

if not Path(CHROMIUM).exists():  # make test installs Debian's chromium; a bare checkout may lack it
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls of the test
    # itself are ordinary blocking calls, which Django allows with this flag (for these tests only).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def closes_its_connections(test):
    """The test body's ORM calls (beside Playwright's loop) use connections that fixture teardown
    does not see; closed in the body's own context, so that dropping the test database at the end
    does not find them ("being accessed by other users")."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        try:
            return test(*args, **kwargs)
        finally:
            from django.db import connections

            connections.close_all()

    return run


def poll(fn, timeout=10.0, interval=0.2):
    end = time.time() + timeout
    while True:
        value = fn()
        if value or time.time() > end:
            return value
        time.sleep(interval)


def shot(page, name: str, full_page: bool = False) -> None:
    """A screenshot once every image in view has loaded (product images are lazy and async: a shot
    taken at once showed empty recommendation cards); an image that never loads fails the test."""
    page.wait_for_function(
        """() => Array.from(document.images)
                 .filter(i => { const r = i.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; })
                 .every(i => i.complete && i.naturalWidth > 0)""",
        timeout=10_000,
    )
    page.screenshot(path=str(SHOTS / name), full_page=full_page)


@pytest.fixture
def shop(settings, tmp_path):
    """Demo catalogue, generated browsing sessions imported as events, a small model trained and active."""
    from catalog.models import Product
    from recommendations import engine, registry, serving
    from recommendations.demo import sessions_generate
    from recommendations.gru4rec.formats import write_tsv
    from shop.demo import demo_catalogue_generate
    from tracking.services import events_import

    settings.MODEL_DIR = tmp_path / "models"
    settings.MODEL_RELOAD_INTERVAL_SECONDS = 0.0
    settings.MODEL_TRAIN_PARAMS = SMALL_PARAMS
    serving.model_unload()
    demo_catalogue_generate(n_products=240)
    products = list(Product.objects.values_list("external_id", "category_id"))
    sessions = sessions_generate(products, n_sessions=800, days=5, seed=11)
    path = tmp_path / "sessions.tsv"
    write_tsv(sessions, path)
    events_import(str(path))
    train, test, stats = engine.events_split(sessions)
    model = engine.gru4rec_train(train, SMALL_PARAMS)
    mv = registry.model_version_register(kind="gru4rec", model=model, version="e2e-v1", parameters={},
                                         metrics={"model": engine.evaluate("gru4rec", model, test)},
                                         train_range=stats["train"], test_range=stats["test"])
    registry.model_activate(mv)
    yield mv
    serving.model_unload()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"])
        yield b
        b.close()


def rec_ids(page):
    page.wait_for_selector("#recommended-for-you article.product-card", timeout=15000)
    return page.eval_on_selector_all("#recommended-for-you article.product-card", "els => els.map(e => e.dataset.product)")


@closes_its_connections
def test_shopper_journey(live_server, shop, browser):
    from shop.models import Order
    from tracking.models import Event

    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live_server.url + "/")
    grid = "main article.product-card[data-source='grid']"
    page.wait_for_selector(grid)
    first_count = page.locator(grid).count()
    shot(page, "storefront.png")
    # Recommended cards (drawn by recommendations.js) name the category as the grid's cards do.
    from catalog.models import Product

    rec = page.locator("#recommended-for-you article.product-card").first
    product = Product.objects.select_related("category").get(pk=int(rec.get_attribute("data-product")))
    assert rec.locator(".product-meta").inner_text().endswith(product.category.name)
    # Infinite scroll: reaching the bottom fetches page 2 from the API.
    for _ in range(10):
        page.mouse.wheel(0, 6000)
        page.wait_for_timeout(400)
        if page.locator(grid).count() > first_count:
            break
    assert page.locator(grid).count() > first_count, "infinite scroll did not load page 2"

    # Open three products from the grid; "Recommended for you" follows the visit.
    seen_recs = []
    for i in range(3):
        page.goto(live_server.url + "/")
        page.locator(grid).nth(i * 7).locator("a.product-link").click()
        page.wait_for_url("**/products/*/**")
        seen_recs.append(rec_ids(page))
    shot(page, "product.png", full_page=True)
    assert seen_recs[0] != seen_recs[2], f"recommendations did not change: {seen_recs}"
    visit_id = page.evaluate("window.SHOP.visitId")
    assert Event.objects.filter(visit__uuid=visit_id, event_type="view").count() >= 3

    # Click a recommendation: tracking.js logs the click with source and model version.
    card = page.locator("#recommended-for-you article.product-card").first
    clicked = int(card.get_attribute("data-product"))
    assert card.get_attribute("data-model-version") == shop.version
    card.locator("a.product-link").click()
    page.wait_for_url(f"**/products/{clicked}/**")
    click = poll(lambda: Event.objects.filter(visit__uuid=visit_id, event_type="click", product_id=clicked,
                                              source="recommended").first())
    assert click is not None, "the recommendation click was not recorded"
    assert click.model_version == shop.version
    assert click.position is not None

    # Add to cart, check out, see the order.
    page.locator("form[action*='/cart/add/'] button[type=submit]").first.click()
    page.wait_for_url("**/cart/**")
    page.goto(live_server.url + "/checkout/")
    page.fill("input[name=name]", "Ada Shopper")
    page.fill("input[name=email]", "ada@example.com")
    page.locator("main form button[type=submit]").last.click()
    page.wait_for_url("**/orders/*/**")
    shot(page, "order.png")
    order = Order.objects.get()
    assert order.lines.get().product_id == clicked
    assert "Ada Shopper" in page.content() or str(order.pk) in page.content()
    assert Event.objects.filter(visit__uuid=visit_id, event_type="purchase", product_id=clicked).exists()


@closes_its_connections
def test_staff_retrains_and_activates(live_server, shop, browser):
    from recommendations.models import ModelVersion, TrainingRun

    User.objects.create_superuser("admin", "admin@example.com", "admin-pass-123")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(live_server.url + "/admin/login/?next=/admin/recommendations/modelversion/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin-pass-123")
    page.locator("input[type=submit]").click()
    page.wait_for_url("**/admin/recommendations/modelversion/")
    # Retrain now: Celery runs eagerly in tests, so the run finishes inside the request.
    page.locator("form[action$='/train/'] [type=submit]").click()
    page.wait_for_url("**/admin/recommendations/modelversion/")
    run = TrainingRun.objects.latest("created")
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert ModelVersion.objects.count() >= 2
    page.reload()
    shot(page, "admin-models.png", full_page=True)
    # Activate a version that is not active, with the admin action.
    candidate = ModelVersion.objects.exclude(status=ModelVersion.Status.ACTIVE).order_by("-created").first()
    page.locator(f"input[name=_selected_action][value='{candidate.pk}']").check()
    page.select_option("select[name=action]", "action_activate")
    page.locator("button[name=index]").click()
    page.wait_for_load_state()
    candidate.refresh_from_db()
    assert candidate.status == ModelVersion.Status.ACTIVE, page.inner_text(".messagelist") if page.locator(".messagelist").count() else ""
