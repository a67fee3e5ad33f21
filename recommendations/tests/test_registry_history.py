"""The activation history: who activated what, when, from which version; roll back walks it
backwards; the active version (and work in a worker's hands) cannot be deleted."""
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import User

from catalog.models import Product
from recommendations import artifacts, registry, serving
from recommendations.models import ModelActivation, ModelVersion, TrainingRun

from .conftest import version_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def three(sessions):
    return [version_register("vsknn", sessions, name) for name in ("v-a", "v-b", "v-c")]


@pytest.fixture
def ops(db):
    return User.objects.create_superuser("ops", "ops@example.com", "pw-123456-long")


def _active():
    return ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE).version


def test_each_activation_is_recorded_and_roll_back_walks_the_history(three, activate, ops):
    a, b, c = three
    for mv in three:
        activate(mv, user=ops)
    assert [(h.version_name, h.previous_name, h.action, h.undone, h.by) for h in ModelActivation.objects.order_by("id")] == [
        ("v-a", "", "activate", False, ops), ("v-b", "v-a", "activate", False, ops), ("v-c", "v-b", "activate", False, ops),
    ]
    registry.model_rollback(user=ops)
    assert _active() == "v-b"
    registry.model_rollback(user=ops)
    assert _active() == "v-a"  # a second roll back goes further back, not back to v-c
    with pytest.raises(registry.ActivationRefused, match="v-a is the first activated version"):
        registry.model_rollback(user=ops)
    assert _active() == "v-a"
    history = list(ModelActivation.objects.order_by("id").values_list("version_name", "previous_name", "action", "undone"))
    assert history == [
        ("v-a", "", "activate", False), ("v-b", "v-a", "activate", True), ("v-c", "v-b", "activate", True),
        ("v-b", "v-c", "rollback", True), ("v-a", "v-b", "rollback", True),
    ]


def test_an_activation_after_a_roll_back_is_the_new_top(three, activate):
    a, b, c = three
    activate(a)
    activate(b)
    registry.model_rollback()
    assert _active() == "v-a"
    activate(c)
    registry.model_rollback()
    assert _active() == "v-a"  # c's previous, not b (b's activation was undone)
    with pytest.raises(registry.ActivationRefused):
        registry.model_rollback()


def test_a_refused_roll_back_leaves_the_history_as_it_was(three, activate, settings):
    a, b, _ = three
    activate(a)
    activate(b)
    artifacts.local_path(a).write_bytes(b"not a model")
    before = list(ModelActivation.objects.values_list("id", "undone"))
    with pytest.raises(registry.ActivationRefused, match="artifact refused"):
        registry.model_rollback()
    assert _active() == "v-b"
    assert list(ModelActivation.objects.values_list("id", "undone")) == before


def test_the_active_version_cannot_be_deleted(three, activate, django_capture_on_commit_callbacks):
    a, b, _ = three
    activate(a)
    activate(b)
    with pytest.raises(registry.ActivationRefused, match="v-b is the active version"):
        registry.model_version_delete(b)
    assert ModelVersion.objects.filter(pk=b.pk).exists()
    path = artifacts.local_path(a)
    assert path.exists()
    with django_capture_on_commit_callbacks(execute=True):  # the file goes once the delete commits
        registry.model_version_delete(a)
    assert not ModelVersion.objects.filter(pk=a.pk).exists()
    assert not path.exists()  # the artifact goes with its row
    # The history keeps the deleted version's name, and roll back says why it cannot return to it.
    assert ModelActivation.objects.filter(version_name="v-b").first().previous_name == "v-a"
    with pytest.raises(registry.ActivationRefused, match=r"v-b is the first activated version \(v-a was deleted\)"):
        registry.model_rollback()


def test_admin_refuses_to_delete_the_active_version_single_and_bulk(client, three, activate, ops,
                                                                   django_capture_on_commit_callbacks):
    a, b, _ = three
    activate(a)
    activate(b)
    client.force_login(ops)
    page = client.post(f"/admin/recommendations/modelversion/{b.pk}/delete/", {"post": "yes"})
    assert page.status_code == 200
    assert "v-b: the active version (activate another version first)" in page.content.decode()
    bulk = client.post("/admin/recommendations/modelversion/", {
        "action": "delete_selected", "_selected_action": [a.pk, b.pk], "post": "yes"})
    assert "v-b: the active version (activate another version first)" in bulk.content.decode()
    assert set(ModelVersion.objects.values_list("version", flat=True)) == {"v-a", "v-b", "v-c"}
    # A version that is not active goes, with its artifact.
    path = artifacts.local_path(a)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/admin/recommendations/modelversion/{a.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not ModelVersion.objects.filter(pk=a.pk).exists() and not path.exists()


@pytest.mark.parametrize("status,refused", [("queued", True), ("running", True), ("failed", False)])
def test_admin_refuses_to_delete_a_run_in_a_workers_hands(client, ops, status, refused):
    run = TrainingRun.objects.create(status=status)
    client.force_login(ops)
    page = client.post(f"/admin/recommendations/trainingrun/{run.pk}/delete/", {"post": "yes"})
    assert TrainingRun.objects.filter(pk=run.pk).exists() is refused
    if refused:
        assert f"training run {run.pk}: {status} (wait until it has finished or failed)" in page.content.decode()


def test_admin_refuses_to_delete_a_product_in_a_cart(client, ops):
    from shop.models import Cart, CartItem

    product = Product.objects.create(external_id="x1", name="Lamp", slug="lamp", price=Decimal("5.00"))
    CartItem.objects.create(cart=Cart.objects.create(owner=uuid.uuid4()), product=product, quantity=1)
    client.force_login(ops)
    page = client.post(f"/admin/catalog/product/{product.pk}/delete/", {"post": "yes"})
    assert Product.objects.filter(pk=product.pk).exists()
    assert "Cart item: 1 x product" in page.content.decode()


def test_training_run_page_shows_the_log_once_and_wraps_the_parameters(client, ops):
    params = "loss=cross-entropy,layers=100,batch_size=32,dropout_p_embed=0.0,dropout_p_hidden=0.4,n_epochs=10"
    run = TrainingRun.objects.create(status="succeeded", params=params, log_tail="epoch 1/10 loss 5.4321\n")
    client.force_login(ops)
    html = client.get(f"/admin/recommendations/trainingrun/{run.pk}/change/").content.decode()
    assert html.count("epoch 1/10 loss 5.4321") == 1
    assert ('<code class="training-params" style="white-space:normal;overflow-wrap:anywhere">loss=cross-entropy, '
            "layers=100, batch_size=32, dropout_p_embed=0.0, dropout_p_hidden=0.4, n_epochs=10</code>") in html
