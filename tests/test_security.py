"""Security promises: CSRF on every form, staff-only actions refused to others, token auth for API
clients, throttles on anonymous endpoints, security headers in production."""
import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from rest_framework.authtoken.models import Token

from catalog.models import Product

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def product(db):
    return Product.objects.create(external_id="sec-1", name="Lamp", slug="lamp", price=Decimal("10.00"))


@pytest.fixture
def user(db):
    return User.objects.create_user("shopper", password="pw-123456-long")


@pytest.fixture
def staff_without_perms(db):
    return User.objects.create_user("clerk", password="pw-123456-long", is_staff=True)


@pytest.fixture
def staff(db):
    u = User.objects.create_user("ops", password="pw-123456-long", is_staff=True)
    u.user_permissions.add(*Permission.objects.filter(codename__in=[
        "activate_modelversion", "train_model", "view_modelversion", "view_trainingrun"]))
    return u


@pytest.mark.django_db
@pytest.mark.parametrize("path,data", [
    ("/cart/add/{pk}/", {"quantity": 1}),
    ("/cart/update/{pk}/", {"quantity": 2}),
    ("/cart/remove/{pk}/", {}),
    ("/checkout/", {"name": "A", "email": "a@example.com"}),
    ("/admin/login/", {"username": "x", "password": "y"}),
])
def test_forms_need_a_csrf_token(product, path, data):
    client = Client(enforce_csrf_checks=True)
    response = client.post(path.format(pk=product.pk), data)
    assert response.status_code == 403
    assert b"CSRF" in response.content


# (method, path, body, needs a permission beyond is_staff)
STAFF_ENDPOINTS = [
    ("get", "/api/models/", None, False),
    ("post", "/api/models/1/activate/", {}, True),
    ("post", "/api/models/train/", {}, True),
    ("get", "/api/training-runs/1/", None, False),
]


@pytest.mark.django_db
@pytest.mark.parametrize("method,path,body,needs_perm", STAFF_ENDPOINTS)
def test_staff_endpoints_refuse_others(method, path, body, needs_perm, user, staff_without_perms):
    anonymous = getattr(Client(), method)(path, data=body, content_type="application/json")
    assert anonymous.status_code in (401, 403)
    refused = [user, staff_without_perms] if needs_perm else [user]
    for who in refused:
        client = Client()
        client.force_login(who)
        response = getattr(client, method)(path, data=body, content_type="application/json")
        assert response.status_code == 403, (who.username, path, response.content)


@pytest.mark.django_db
def test_token_authentication_for_api_clients(staff):
    token = Token.objects.create(user=staff)
    client = Client()
    assert client.get("/api/models/").status_code in (401, 403)
    response = client.get("/api/models/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    # 403 rather than 401: session authentication comes first and sends no WWW-Authenticate challenge.
    assert client.get("/api/models/", HTTP_AUTHORIZATION="Token not-a-real-token").status_code in (401, 403)


@pytest.mark.django_db
def test_admin_actions_need_the_permission(staff_without_perms, staff):
    clerk = Client()
    clerk.force_login(staff_without_perms)
    assert clerk.post("/admin/recommendations/modelversion/train/").status_code == 403
    assert clerk.post("/admin/recommendations/modelversion/rollback/").status_code == 403
    shopper = Client()
    assert shopper.get("/admin/recommendations/modelversion/").status_code == 302  # to the login page


@pytest.mark.django_db
def test_anonymous_endpoints_are_throttled(monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    # DRF reads the rates once at import; lower them for this test only.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "3/min", "user": "100/min"})

    cache.clear()
    client = Client(REMOTE_ADDR=f"10.{uuid.uuid4().int % 250}.0.1")
    codes = [client.get("/api/products/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    cache.clear()


PROBE = """
import django, json, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
django.setup()
from django.test import Client
r = Client().get("/health/?format=json", secure=True, HTTP_HOST="shop.example")
plain = Client().get("/health/?format=json", HTTP_HOST="shop.example")
print(json.dumps({"headers": dict(r.headers), "plain_status": plain.status_code, "plain_location": plain.get("Location")}))
"""


def test_security_headers_in_production(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env.update(DJANGO_DEBUG="false", SECRET_KEY="s" + uuid.uuid4().hex * 2, ALLOWED_HOSTS="shop.example",
               SHOP_VAR_DIR=str(tmp_path), ENV_FILE=str(tmp_path / "none.env"))
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    headers = {k.lower(): v for k, v in probe["headers"].items()}
    assert headers["strict-transport-security"].startswith("max-age=31536000")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert probe["plain_status"] == 301 and probe["plain_location"].startswith("https://")
