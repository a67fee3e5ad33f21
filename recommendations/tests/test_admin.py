"""Admin pages render with metrics side by side; actions need the custom permissions."""
from django.contrib.auth.models import Permission, User

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
    assert 'http-equiv="refresh"' in page and "epoch 1/2" in page


def test_actions_need_permissions(client, gru_version, sknn_version, activate):
    activate(gru_version)
    _login(client)  # staff with view permissions only
    html = client.get("/admin/recommendations/modelversion/").content.decode()
    assert "Retrain now" not in html and "action_activate" not in html
    assert client.post("/admin/recommendations/modelversion/train/").status_code == 403
    assert client.post("/admin/recommendations/modelversion/rollback/").status_code == 403
    assert TrainingRun.objects.count() == 0
