"""Schemathesis against the shop's own OpenAPI schema, with all of its checks (no 5xx; status codes,
content types, headers and bodies as documented; invalid data rejected, valid data accepted; auth
not ignored; ...), once anonymously and once with a staff token (a staff user holding every
permission of the catalogue, tracking and recommendations apps).

The shop holds data with every nullable value the schema promises (a model activated by nobody, a
product without a category, a training run not started, a cluster without a dominant category), so
the response-schema check meets them. The default run uses a small budget per operation (the
coverage phase's boundary and negative cases, plus a few random ones); the ``slow`` test runs the
few-hundred-examples sweep: ``make test PYTEST_ARGS="-m slow tests/test_api_fuzz.py"``
(``SCHEMATHESIS_MAX_EXAMPLES`` sets its budget).
"""
import os
from decimal import Decimal
from pathlib import Path

import pytest
import schemathesis
from django.core.cache import cache
from django.test import override_settings
from hypothesis import HealthCheck, settings as hsettings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from django.core.wsgi import get_wsgi_application

# The WSGI handler, not shop.wsgi: that entry point is for servers and refuses the tests' debug settings.
application = get_wsgi_application()

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "300"))
QUICK_EXAMPLES = 5

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
staff_schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
# The staff user's token, fixed: schemathesis asks for it while it collects the tests, before any fixture.
STAFF_TOKEN = "fuzz-staff-token-".ljust(40, "0")


@staff_schema.auth(refresh_interval=None)
class StaffToken:
    """DRF token authentication of the staff user: known to schemathesis as the run's credentials,
    so its auth check also sends each request without them and with invalid ones (401/403 expected)."""

    def get(self, case, context):
        return STAFF_TOKEN

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Token {data}"}

HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much,
          HealthCheck.data_too_large]


@pytest.fixture(scope="module")
def shop_data(django_db_setup, django_db_blocker, tmp_path_factory):
    """Committed once for the module (a generated model, its clusters: too slow to build per
    operation), removed with a flush at the end as transactional tests do."""
    from django.contrib.auth.models import Permission, User
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from catalog.models import Category, Product
    from recommendations import registry, serving
    from recommendations.clusters import services as cluster_services, synthetic
    from recommendations.models import TrainingRun
    from tracking.models import Visit

    override = override_settings(MODEL_DIR=Path(tmp_path_factory.mktemp("fuzz-models")),
                                 MODEL_RELOAD_INTERVAL_SECONDS=0.0)
    override.enable()
    cache.clear()
    serving.model_unload()
    with django_db_blocker.unblock():
        syn = synthetic.structured_output(60, hidden=8, n_topics=4, n_categories=3, seed=0)
        root = Category.objects.create(name="Root", slug="root")
        cats = [Category.objects.create(name=f"Cat {c}", slug=f"cat-{c}", parent=root) for c in range(3)]
        Product.objects.bulk_create(
            Product(external_id=str(i), name=f"Fuzz product {i}", slug=f"fuzz-{i}", price=Decimal("9.99"),
                    category=cats[int(syn.category[i])] if i % 10 else None, is_active=i != 7)
            for i in range(60)
        )
        mv = registry.model_version_register(kind="gru4rec", model=synthetic.structured_gru4rec(syn), version="v-fuzz",
                                             parameters={}, metrics={})
        registry.model_activate(mv)  # activated by nobody: activated_by is null
        cluster_services.clusters_build(mv, k=3)
        TrainingRun.objects.create(params="layers=8")  # queued: not started, no duration
        staff = User.objects.create_user("fuzz-staff", "staff@example.com", "x", is_staff=True)
        staff.user_permissions.set(Permission.objects.filter(
            content_type__app_label__in=["catalog", "tracking", "recommendations", "clusters"]))
        token = Token.objects.create(user=staff, key=STAFF_TOKEN)
        visit = Visit.objects.create()
    yield {"token": token.key, "visit": str(visit.uuid), "version": mv}
    serving.model_unload()
    cache.clear()
    override.disable()
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def wsgi_calls(shop_data, db, monkeypatch):
    """In-process WSGI calls inside the test's transaction, without throttling."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections
    from rest_framework.views import APIView

    # As Django's test client does: the WSGI handler must not close the test's transaction connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    monkeypatch.setattr(APIView, "throttle_classes", [])  # thousands of requests from one client in seconds
    yield shop_data
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# Requests the schema calls valid that name rows the database does not hold (products, categories) or a
# training parameter string the trainer cannot read: documented 400s naming that field. The
# valid-data check is replaced for them by this narrower one; any other 400 on valid data fails.
DATA_DEPENDENT_400 = {
    ("GET", "/api/products/"): {"category"},
    ("POST", "/api/events/"): {"events"},
    ("POST", "/api/recommendations/"): {"items"},
    ("POST", "/api/models/train/"): {"params"},
    # arms naming model versions the shop does not hold, or breaking a rule across arms (names, control)
    ("POST", "/api/experiments/"): {"arms"},
    ("POST", "/api/experiments/{id}/promote/"): {"arm"},  # an arm id of no arm of this experiment
}


def check(case):
    """All of schemathesis's checks (the ones registered, with their default settings), the
    valid-data one narrowed as said above."""
    fields = DATA_DEPENDENT_400.get((case.method.upper(), case.path))
    if fields is None:
        return case.call_and_validate()
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    if case.meta is not None and case.meta.generation.mode.is_positive and response.status_code == 400:
        assert set(response.json()) <= fields, f"{case.method} {case.path}: valid data refused: {response.text[:300]}"
    return response


@pytest.mark.django_db
@schema.parametrize()
@hsettings(max_examples=QUICK_EXAMPLES, deadline=None, suppress_health_check=HEALTH)
def test_api_anonymous(case, wsgi_calls):
    check(case)


@pytest.mark.django_db
@staff_schema.parametrize()
@hsettings(max_examples=QUICK_EXAMPLES, deadline=None, suppress_health_check=HEALTH)
def test_api_staff(case, wsgi_calls):
    check(case)


@pytest.mark.slow
@pytest.mark.django_db
@schema.parametrize()
@hsettings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=HEALTH)
def test_api_sweep_anonymous(case, wsgi_calls):
    check(case)


@pytest.mark.slow
@pytest.mark.django_db
@staff_schema.parametrize()
@hsettings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=HEALTH)
def test_api_sweep_staff(case, wsgi_calls):
    check(case)
