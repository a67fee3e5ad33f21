"""Every admin page renders: each registered model's changelist (plain, each filter choice, a search,
each sortable column), add page and one change page, as a superuser and as a view-only staff user."""
import re
import uuid
from decimal import Decimal
from html import unescape
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.urls import reverse

from catalog.models import Category, Product
from recommendations import registry, serving
from recommendations.clusters import synthetic
from recommendations.clusters import services as cluster_services
from recommendations.models import TrainingRun
from tracking import services as tracking_services
from tracking.models import Visit

N_ITEMS = 120
FILTER_LINK = re.compile(r'<a href="(\?[^"]*)"')


@pytest.fixture
def shop_data(db, settings, tmp_path, django_capture_on_commit_callbacks):
    """A bit of everything: categories, products, a visit with events, popularity, an order, an
    active model version with clusters and a retrieval index, a training run."""
    settings.MODEL_DIR = Path(tmp_path) / "models"
    settings.MODEL_RELOAD_INTERVAL_SECONDS = 0.0
    cache.clear()
    serving.model_unload()
    syn = synthetic.structured_output(N_ITEMS, hidden=8, n_topics=4, n_categories=3, seed=0)
    root = Category.objects.create(name="Home", slug="home")
    cats = [Category.objects.create(name=f"Cat {c}", slug=f"cat-{c}", parent=root) for c in range(3)]
    Product.objects.bulk_create(
        Product(external_id=str(i), name=f"Product {i}", slug=f"product-{i}", category=cats[int(syn.category[i])],
                brand="Acme" if i % 2 else "", price=Decimal("9.99"))
        for i in range(N_ITEMS)
    )
    products = list(Product.objects.order_by("pk")[:5])
    visit = Visit.objects.create(uuid=uuid.uuid4())
    for i, p in enumerate(products):
        tracking_services.event_record(visit, "view", p, source="grid", position=i)
    tracking_services.popularity_refresh()
    mv = registry.model_version_register(kind="gru4rec", model=synthetic.structured_gru4rec(syn), version="v-walk",
                                         parameters={}, metrics={"model": {"recall@20": 0.5, "mrr@20": 0.2}})
    with django_capture_on_commit_callbacks(execute=True):
        registry.model_activate(mv)
    cluster_services.clusters_build(mv, k=4)
    cluster_services.retrieval_index_build(mv)
    TrainingRun.objects.create(status=TrainingRun.Status.SUCCEEDED, params="n_epochs=1")
    yield
    serving.model_unload()
    cache.clear()


def _order(product):
    """An ordered cart and an open one (the cart and order admins list both)."""
    from shop.models import Cart, CartItem, Order, OrderLine

    ordered = Cart.objects.create(owner=uuid.uuid4(), status=Cart.Status.ORDERED)
    CartItem.objects.create(cart=ordered, product=product, quantity=1)
    order = Order.objects.create(cart=ordered, owner=ordered.owner, name="Ann", email="ann@example.com",
                                 total=product.price)
    OrderLine.objects.create(order=order, product=product, product_name=product.name, unit_price=product.price,
                             quantity=1)
    CartItem.objects.create(cart=Cart.objects.create(owner=uuid.uuid4()), product=product, quantity=2)
    return order


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root", "root@example.com", "pw-123456-long")


@pytest.fixture
def viewer(db):
    user = User.objects.create_user("viewer", password="pw-123456-long", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    return user


def _pages(client, model, model_admin):
    """(url, expected statuses) of every page of one registered model."""
    info = model._meta.app_label, model._meta.model_name
    changelist = reverse("admin:%s_%s_changelist" % info)
    page = client.get(changelist)
    assert page.status_code == 200, (changelist, page.status_code)
    html = page.content.decode()
    urls = [changelist, changelist + "?p=1"]
    filters = html.split('id="changelist-filter"', 1)
    if len(filters) == 2:  # Django hides a filter with a single choice, and the sidebar with it
        urls += [changelist + unescape(q) for q in FILTER_LINK.findall(filters[1].split("</nav>", 1)[0])]
    if model_admin.search_fields:
        urls.append(changelist + "?q=1")
    for i, _ in enumerate(model_admin.list_display):
        urls += [f"{changelist}?o={i + 1}", f"{changelist}?o=-{i + 1}"]
    obj = model_admin.get_queryset(_request(client)).first()
    if obj is not None:
        urls.append(reverse("admin:%s_%s_change" % info, args=[obj.pk]))
    return urls, reverse("admin:%s_%s_add" % info)


def _request(client):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = User.objects.get(pk=client.session["_auth_user_id"])
    return request


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["superuser", "viewer"])
def test_every_admin_page_renders(client, shop_data, who, request):
    user = request.getfixturevalue(who)
    _order(Product.objects.first())
    client.force_login(user)
    assert client.get("/admin/").status_code == 200
    failures, walked = [], []
    for model, model_admin in admin.site._registry.items():
        urls, add_url = _pages(client, model, model_admin)
        walked += urls
        for url in urls:
            status = client.get(url).status_code
            if status != 200:
                failures.append((url, status))
        add_status = client.get(add_url).status_code
        allowed = model_admin.has_add_permission(_request(client)) if model_admin.has_module_permission(
            _request(client)) else False
        if add_status != (200 if allowed else 403):
            failures.append((add_url, add_status))
    assert failures == []
    # The walk reached the filters (product: active, currency, category; events: type, source, staff).
    assert {"/admin/catalog/product/?is_active__exact=1", "/admin/tracking/event/?event_type__exact=view"} <= set(walked)
    assert len(walked) > 150
