"""Admin pages render with metrics side by side; actions need the custom permissions."""
from django.contrib.auth.models import Permission, User

from catalog.models import Product
from recommendations.models import TrainingRun


def _login(client, perms=(), superuser=False):
    user = User.objects.create_user("staff", password="pw", is_staff=True, is_superuser=superuser)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="recommendations"))
    for codename in ("view_modelversion", "view_trainingrun"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    return user


def test_changelist_compare_and_run_page(client, gru_version, sknn_version, activate):
    activate(gru_version)
    _login(client, superuser=True)
    html = client.get("/admin/recommendations/modelversion/").content.decode()
    assert "v-gru" in html and "v-sknn" in html and "Retrain now" in html and "Roll back" in html
    assert f"{gru_version.metric('recall@20'):.4f}" in html
    r = client.post("/admin/recommendations/modelversion/",
                    {"action": "action_compare", "_selected_action": [gru_version.pk, sknn_version.pk]})
    assert r.status_code == 200 and "recall@20" in r.content.decode() and "v-sknn" in r.content.decode()
    run = TrainingRun.objects.create(status="running", stage="train gru4rec", progress=0.4, log_tail="epoch 1/2")
    page = client.get(f"/admin/recommendations/trainingrun/{run.pk}/change/").content.decode()
    progress_url = f"/admin/recommendations/trainingrun/{run.pk}/progress/"
    assert f'data-progress-url="{progress_url}" data-active="true"' in page and "epoch 1/2" in page
    assert 'data-chart="training-loss"' in page and "chart-4.6.1.umd.min" in page


def test_actions_need_permissions(client, gru_version, sknn_version, activate):
    activate(gru_version)
    _login(client)  # staff with view permissions only
    html = client.get("/admin/recommendations/modelversion/").content.decode()
    assert "Retrain now" not in html and "action_activate" not in html
    assert client.post("/admin/recommendations/modelversion/train/").status_code == 403
    assert client.post("/admin/recommendations/modelversion/rollback/").status_code == 403
    assert TrainingRun.objects.count() == 0


def test_registry_pages_chart_offline_and_online_results(client, gru_version, sknn_version, activate):
    """The list charts Recall@20 / MRR@20 beside the baselines and the daily CTR; a version's page
    its metrics at every cutoff and its served results per day; the figures are the selector's."""
    import json
    import re

    from tracking.models import Event, Visit

    activate(gru_version)
    gru_version.metrics = {"model": {"recall@20": 0.5, "mrr@20": 0.2},
                           "baselines": {"popularity": {"recall@20": 0.3, "mrr@20": 0.1},
                                         "itemknn": {"recall@20": 0.4, "mrr@20": 0.15}}}
    gru_version.save()
    visit = Visit.objects.create()
    product = Product.objects.first()
    Event.objects.bulk_create([
        Event(visit=visit, product=product, event_type=kind, source="recommended", model_version="v-gru")
        for kind in ("impression", "impression", "click")] + [
        Event(visit=visit, product=product, event_type="add_to_cart", source="cart")])
    _login(client, superuser=True)

    def charts(html):
        return {m.group(1): json.loads(m.group(2)) for m in re.finditer(
            r'<script id="([\w-]+)" type="application/json">(.*?)</script>', html)}

    html = client.get("/admin/recommendations/modelversion/").content.decode()
    specs = charts(html)
    recall = specs["offline-recall-20"]
    gru = recall["labels"].index("v-gru")
    assert [d["data"][gru] for d in recall["datasets"]] == [0.5, 0.3, 0.4]
    ctr = specs["online-ctr"]
    assert [d["label"] for d in ctr["datasets"]] == ["v-gru"] and ctr["datasets"][0]["data"][-1] == 1.0
    assert "1 / 1 / 100.00%" in html and "1 / 0" in html  # impressions / clicks / CTR; add to cart / orders
    assert 'data-chart="online-ctr"' in html and "recommendations/admin-charts" in html

    html = client.get(f"/admin/recommendations/modelversion/{gru_version.pk}/change/").content.decode()
    specs = charts(html)
    online = {d["label"]: d["data"][-1] for key in ("version-served", "version-outcomes")
              for d in specs[key]["datasets"]}
    assert online == {"impressions": 1, "clicks": 1, "add to cart": 1, "orders": 0, "CTR": 1.0}
    offline = specs["version-offline"]
    assert offline["datasets"][0]["data"][offline["labels"].index("recall@20")] == 0.5


def test_training_run_progress_is_polled_as_json(client, db):
    run = TrainingRun.objects.create(status="running", stage="train gru4rec (3 epochs)", progress=0.3,
                                     loss_curve={"epochs": [{"epoch": 1, "loss": 5.5, "seconds": 1.0}],
                                                 "current": {"epoch": 2, "n_epochs": 3, "fraction": 0.5, "loss": 5.1}})
    url = f"/admin/recommendations/trainingrun/{run.pk}/progress/"
    assert client.get(url).status_code == 302  # to the login page
    _login(client)  # view-only staff may follow a run
    state = client.get(url).json()
    assert state["active"] is True and state["progress"] == 0.3 and state["status"] == "running"
    chart = state["loss_chart"]
    assert chart["labels"] == ["epoch 1", "epoch 2", "epoch 3"]
    assert chart["datasets"][0]["data"] == [5.5, None, None] and chart["datasets"][1]["data"] == [None, 5.1, None]
    assert client.get("/admin/recommendations/trainingrun/999999/progress/").status_code == 404
    shopper = User.objects.create_user("shopper-x", password="x", is_staff=True)  # staff without view permission
    client.force_login(shopper)
    assert client.get(url).status_code == 403
