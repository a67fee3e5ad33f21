"""Security promises: CSRF on every form, staff-only actions refused to others, token auth for API
clients, throttles on anonymous endpoints that spoofed headers and parallel requests cannot lift,
the client's address only as TRUSTED_PROXIES says, the admin sign-in lockout, security headers in
production."""
import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import requests
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


# --- The client's address: TRUSTED_PROXIES, never a header taken on trust -----------------------

from shop.client_ip import client_address, trusted_proxies_parse  # noqa: E402


def _meta(peer, forwarded=None):
    meta = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return meta


def _addr(meta, proxies):
    address = client_address(meta, trusted_proxies_parse(proxies))
    return str(address) if address is not None else None


def test_without_trusted_proxies_the_peer_is_the_client():
    assert _addr(_meta("198.51.100.7", "203.0.113.1"), "") == "198.51.100.7"
    assert _addr(_meta("198.51.100.7", "203.0.113.1, 203.0.113.2"), "") == "198.51.100.7"
    assert _addr(_meta("::ffff:198.51.100.7"), "") == "198.51.100.7"  # IPv4-mapped is the IPv4 client
    assert _addr(_meta(""), "") is None


def test_proxy_hops_take_the_entry_their_proxies_wrote():
    # One proxy appends the address it saw: whatever the client wrote before it is ignored.
    assert _addr(_meta("10.0.0.2", "6.6.6.6, 203.0.113.9"), "1") == "203.0.113.9"
    assert _addr(_meta("10.0.0.2", "203.0.113.9"), "1") == "203.0.113.9"
    assert _addr(_meta("10.0.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.1"), "2") == "203.0.113.9"
    assert _addr(_meta("10.0.0.2", "203.0.113.9:5123"), "1") == "203.0.113.9"
    assert _addr(_meta("10.0.0.2", "[2001:db8::5]:443"), "1") == "2001:db8::5"
    # No header: the peer; junk where the proxy's entry should be: the peer (never the junk).
    assert _addr(_meta("10.0.0.2"), "1") == "10.0.0.2"
    assert _addr(_meta("10.0.0.2", "6.6.6.6, not-an-ip"), "1") == "10.0.0.2"


def test_proxy_networks_are_believed_only_from_those_proxies():
    proxies = "10.0.0.0/8, 192.0.2.7"
    assert _addr(_meta("10.1.2.3", "6.6.6.6, 203.0.113.9"), proxies) == "203.0.113.9"
    assert _addr(_meta("10.1.2.3", "203.0.113.9, 192.0.2.7"), proxies) == "203.0.113.9"  # two of our hops
    assert _addr(_meta("198.51.100.1", "203.0.113.9"), proxies) == "198.51.100.1"  # not our proxy: its claim
    assert _addr(_meta("10.1.2.3", "10.9.9.9"), proxies) == "10.9.9.9"  # all ours: the left-most
    assert _addr(_meta("10.1.2.3", "6.6.6.6, junk, 10.9.9.9"), proxies) == "10.9.9.9"


def test_rate_limits_count_an_ipv6_client_by_its_64():
    from django.test import RequestFactory

    from shop.client_ip import client_key

    factory = RequestFactory()
    one = factory.get("/", REMOTE_ADDR="2001:db8:1:2::1")
    other = factory.get("/", REMOTE_ADDR="2001:db8:1:2:ffff::9")
    assert client_key(one) == client_key(other) == "2001:db8:1:2::/64"
    assert client_key(factory.get("/", REMOTE_ADDR="192.0.2.1")) == "192.0.2.1"


def test_a_bad_trusted_proxies_setting_refuses_to_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env.update(SHOP_VAR_DIR=str(tmp_path), ENV_FILE=str(tmp_path / "none.env"), TRUSTED_PROXIES="proxy.example")
    out = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "TRUSTED_PROXIES: 'proxy.example' is neither a number of proxy hops nor an IP address" in out.stderr


def test_forwarded_proto_is_believed_only_with_trusted_proxies(tmp_path):
    probe = ("import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shop.settings'); django.setup();"
             "from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env.update(DJANGO_DEBUG="false", SECRET_KEY="s" + uuid.uuid4().hex * 2, ALLOWED_HOSTS="shop.example",
               SHOP_VAR_DIR=str(tmp_path), ENV_FILE=str(tmp_path / "none.env"))
    plain = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert plain.stdout.strip() == "None"
    proxied = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env={**env, "TRUSTED_PROXIES": "1"},
                             capture_output=True, text=True, check=True)
    assert proxied.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')"


# --- API throttles against a live shop: spoofed headers and parallel requests ------------------

from tests import live  # noqa: E402
from tests.live_var import static_collected  # noqa: E402

THROTTLE = 20


def _live_shop(settings_dict, var_dir, **extra):
    prefix = f"thr{uuid.uuid4().hex[:10]}"
    shop = live.start(settings_dict, var_dir, timeout=240, extra_env={
        "THROTTLE_ANON": f"{THROTTLE}/min", "THROTTLE_USER": "100000/min", "CACHE_KEY_PREFIX": prefix, **extra})
    shop.extra["prefix"] = prefix
    return shop


def _counters_reset(shop):
    """Forget the server's throttle windows (its own key prefix in the test Redis database)."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = list(client.scan_iter(f"{shop.extra['prefix']}:*throttle*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="module")
def throttled_shop(django_db_setup, django_db_blocker, live_var_dir):
    from django.db import connection

    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        pytest.skip("the live shop runs on PostgreSQL and Redis (make test sets DATABASE_URL and REDIS_URL)")
    with django_db_blocker.unblock():
        settings_dict = dict(connection.settings_dict)
    shop = _live_shop(settings_dict, static_collected(live_var_dir))
    yield shop
    shop.stop()


@pytest.fixture(scope="module")
def proxied_shop(django_db_setup, django_db_blocker, live_var_dir):
    """The same behind one trusted proxy hop (TRUSTED_PROXIES=1): the tests play the proxy."""
    from django.db import connection

    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        pytest.skip("the live shop runs on PostgreSQL and Redis (make test sets DATABASE_URL and REDIS_URL)")
    with django_db_blocker.unblock():
        settings_dict = dict(connection.settings_dict)
    shop = _live_shop(settings_dict, static_collected(live_var_dir), TRUSTED_PROXIES="1")
    yield shop
    shop.stop()


def _random_ip() -> str:
    n = uuid.uuid4().int
    return f"{n % 223 + 1}.{n >> 8 & 255}.{n >> 16 & 255}.{n >> 24 & 255}"


def _get(shop, path="/api/categories/", forwarded=None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return requests.get(shop.url + path, headers=headers, timeout=30)


@pytest.mark.django_db(transaction=True)
def test_random_forwarded_for_values_do_not_lift_the_limit(throttled_shop):
    """With no trusted proxy, X-Forwarded-For is the client's own claim: 40 requests from one
    address, each claiming another, get exactly the limit through."""
    _counters_reset(throttled_shop)
    responses = [_get(throttled_shop, forwarded=f"{_random_ip()}, {_random_ip()}") for _ in range(2 * THROTTLE)]
    codes = [r.status_code for r in responses]
    assert codes == [200] * THROTTLE + [429] * THROTTLE
    refused = responses[-1]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["detail"].startswith("Request was throttled.")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("ways", [4, 20])
def test_parallel_requests_pass_exactly_the_limit(throttled_shop, ways):
    """Rounds of ``ways`` requests released together by a barrier, 2x the limit in all, through 3
    gunicorn processes: exactly the limit passes (the read-then-write history leaked under 4-way)."""
    _counters_reset(throttled_shop)
    codes = []
    for _ in range(2 * THROTTLE // ways):
        codes += [r.status_code if isinstance(r, requests.Response) else r
                  for r in live.parallel(lambda i: _get(throttled_shop, "/api/products/?page_size=1"), ways)]
    assert sorted(codes) == [200] * THROTTLE + [429] * THROTTLE, codes


@pytest.mark.django_db(transaction=True)
def test_behind_one_trusted_proxy_the_last_forwarded_entry_is_the_client(proxied_shop):
    _counters_reset(proxied_shop)
    client, neighbour = "203.0.113.7", "198.51.100.9"
    # Whatever the client writes in front, the proxy's entry (the last) names it.
    codes = [_get(proxied_shop, forwarded=f"{_random_ip()}, {client}").status_code for _ in range(THROTTLE + 5)]
    assert codes == [200] * THROTTLE + [429] * 5
    # Another client behind the same proxy has its own budget, even when it claims to be the first.
    codes = [_get(proxied_shop, forwarded=f"{client}, {neighbour}").status_code for _ in range(THROTTLE + 1)]
    assert codes == [200] * THROTTLE + [429]
    # And the proxy's own requests (no header) are counted as the proxy.
    assert _get(proxied_shop).status_code == 200


# --- Throttles when Redis is down or stalled ----------------------------------------------------

@pytest.fixture
def private_redis_cache(settings):
    """The default cache on a private Redis server the test can stop or freeze."""
    from django.core.cache import caches

    from shop import throttling
    from tests.faults import PrivateRedis

    redis = PrivateRedis()
    settings.CACHES = {"default": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": redis.url(0), "KEY_PREFIX": "t",
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient", "IGNORE_EXCEPTIONS": True,
                    "SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5}}}
    throttling.fallback_reset()
    yield redis
    caches["default"].close()
    throttling.fallback_reset()
    redis.close()


@pytest.fixture
def redis_asked(monkeypatch):
    """How many times the throttle asked Redis (one pipeline per window_hit that reaches it)."""
    from django_redis.client import DefaultClient

    asked = []
    original = DefaultClient.get_client

    def get_client(self, *args, **kwargs):
        asked.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DefaultClient, "get_client", get_client)
    return asked


def test_throttle_counts_in_redis_and_falls_back_to_the_process_when_it_is_down(private_redis_cache, monkeypatch,
                                                                                redis_asked, caplog):
    from shop import throttling

    assert [throttling.window_hit("k", 60)[0] for _ in range(3)] == [1, 2, 3]
    assert len(redis_asked) == 3
    private_redis_cache.stop()
    redis_asked.clear()
    # Down: counted in this process from 1, so the limit still holds per process; no error. Redis is
    # asked once (refused), then not again for FALLBACK_SECONDS: no request waits on a dead Redis.
    assert [throttling.window_hit("k", 60)[0] for _ in range(3)] == [1, 2, 3]
    assert len(redis_asked) == 1
    assert "throttle: Redis unavailable (ConnectionError)" in caplog.text
    private_redis_cache.start()
    # Within FALLBACK_SECONDS Redis is not asked again; after it, it is (a fresh, empty Redis here).
    assert throttling.window_hit("k", 60)[0] == 4
    assert len(redis_asked) == 1
    monkeypatch.setattr(throttling, "_redis_down_until", 0.0)
    assert throttling.window_hit("k", 60)[0] == 1
    assert len(redis_asked) == 2


def test_a_stalled_redis_costs_one_socket_timeout_per_process_not_one_per_request(private_redis_cache, redis_asked,
                                                                                  caplog):
    from shop import throttling

    throttling.window_hit("s", 60)
    redis_asked.clear()
    with private_redis_cache.stalled():
        throttling.window_hit("s", 60)  # waits out one socket timeout (0.5 s), then falls back
        assert len(redis_asked) == 1
        assert "throttle: Redis unavailable (TimeoutError)" in caplog.text
        counts = [throttling.window_hit("s", 60)[0] for _ in range(50)]
    # the 50 requests after it never asked the stalled Redis (none waited for a socket timeout)
    assert len(redis_asked) == 1
    assert counts == list(range(2, 52))


# --- Admin sign-in lockout ------------------------------------------------------------------------

ADMIN_LOGIN = "/admin/login/?next=/admin/"
BOSS_PASSWORD = "right-pw-123456-long"
WRONG_PASSWORD = "Please enter the correct username and password for a staff account."


@pytest.fixture
def boss(db):
    return User.objects.create_user("boss", password=BOSS_PASSWORD, is_staff=True, is_superuser=True)


@pytest.fixture
def password_checks(monkeypatch):
    """How many times the sign-in form asked the auth backends to check a password."""
    from django.contrib.auth import forms as auth_forms

    calls = []
    real = auth_forms.authenticate

    def counting(*args, **kwargs):
        calls.append(kwargs.get("username"))
        return real(*args, **kwargs)

    monkeypatch.setattr(auth_forms, "authenticate", counting)
    return calls


def _sign_in(username, password, address="192.0.2.10", client=None):
    client = client or Client()
    return client.post(ADMIN_LOGIN, {"username": username, "password": password, "next": "/admin/"},
                       REMOTE_ADDR=address)


def test_admin_sign_in_locks_a_username_after_five_failures(boss, password_checks, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from shop import login_guard

    for _ in range(5):
        response = _sign_in("boss", "wrong")
        assert response.status_code == 200 and WRONG_PASSWORD in response.text
    assert len(password_checks) == 5
    locked = _sign_in("boss", BOSS_PASSWORD)  # the right password, and it is not even checked
    assert locked.status_code == 429
    assert ("Too many failed sign-in attempts for this account or from this address. Try again in 15 minutes."
            in locked.text)
    assert 890 <= int(locked["Retry-After"]) <= 900
    assert _sign_in("BOSS ", BOSS_PASSWORD).status_code == 429  # another spelling of the name
    assert _sign_in("boss", BOSS_PASSWORD, address="198.51.100.1").status_code == 429  # another address
    assert len(password_checks) == 5
    assert not _sign_in("boss", BOSS_PASSWORD).wsgi_request.user.is_authenticated
    # Once the window is over the password is checked again.
    later = timezone.now() + timedelta(minutes=15, seconds=1)
    monkeypatch.setattr(login_guard.timezone, "now", lambda: later)
    assert _sign_in("boss", BOSS_PASSWORD).status_code == 302


def test_a_successful_sign_in_clears_the_username_count(boss):
    for _ in range(4):
        assert _sign_in("boss", "wrong").status_code == 200
    assert _sign_in("boss", BOSS_PASSWORD).status_code == 302
    for _ in range(5):
        assert WRONG_PASSWORD in _sign_in("boss", "wrong").text
    assert _sign_in("boss", BOSS_PASSWORD).status_code == 429


def test_an_address_is_locked_after_twenty_failures(boss, password_checks):
    from shop.login_attempts import LoginAttempt

    for i in range(20):
        assert _sign_in(f"guess{i}", "wrong", address="203.0.113.50").status_code == 200
    assert _sign_in("boss", BOSS_PASSWORD, address="203.0.113.50").status_code == 429
    # Locked by address before any username is counted: spraying names adds no rows.
    for i in range(30):
        assert _sign_in(f"spray{i}", "wrong", address="203.0.113.50").status_code == 429
    assert not LoginAttempt.objects.filter(key__startswith="spray").exists()
    assert not LoginAttempt.objects.filter(kind="username", key="boss").exists()
    assert len(password_checks) == 20
    assert _sign_in("boss", BOSS_PASSWORD, address="203.0.113.51").status_code == 302  # others are not locked


def test_the_lockout_outlives_the_cache(boss, settings):
    """Counted in PostgreSQL: flushing the cache or losing it altogether does not lift a lock."""
    from django.core.cache import cache

    for _ in range(5):
        _sign_in("boss", "wrong")
    cache.clear()
    assert _sign_in("boss", BOSS_PASSWORD).status_code == 429
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    assert _sign_in("boss", BOSS_PASSWORD).status_code == 429


def test_expired_counters_are_deleted(boss):
    from datetime import timedelta

    from django.utils import timezone

    from shop.login_attempts import LoginAttempt

    old = timezone.now() - timedelta(minutes=16)
    LoginAttempt.objects.bulk_create([LoginAttempt(kind="address", key=f"198.18.0.{i}", failures=3, window_start=old)
                                      for i in range(100)])
    _sign_in("boss", "wrong")
    assert sorted(LoginAttempt.objects.values_list("kind", "key", "failures")) == [
        ("address", "192.0.2.10", 1), ("username", "boss", 1)]


@pytest.mark.django_db(transaction=True)
def test_parallel_sign_in_attempts_check_at_most_five_passwords(proxied_shop):
    """20 attempts released together through 3 gunicorn processes: exactly 5 passwords are checked
    (wrong), the other 15 answer 429; then the right password is refused too."""
    User.objects.create_user("boss", password=BOSS_PASSWORD, is_staff=True, is_superuser=True)
    address = _random_ip()
    browsers = [proxied_shop.client() for _ in range(21)]
    for browser in browsers:
        browser.csrf()

    def attempt(i, password=None):
        return browsers[i].post(ADMIN_LOGIN, {"username": "boss", "password": password or f"wrong-{i}",
                                              "next": "/admin/"}, headers={"X-Forwarded-For": address})

    results = live.parallel(attempt, 20)
    assert sorted(r.status_code for r in results) == [200] * 5 + [429] * 15, results
    assert sum(WRONG_PASSWORD in r.text for r in results) == 5
    assert all("Too many failed sign-in attempts" in r.text for r in results if r.status_code == 429)
    assert attempt(20, BOSS_PASSWORD).status_code == 429
