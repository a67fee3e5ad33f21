"""Schemathesis against the shop's own OpenAPI schema: every operation, generated inputs,
no 5xx and responses that conform to the schema.

The default run uses a small budget per operation (CI); `SCHEMATHESIS_MAX_EXAMPLES=300 make test
PYTEST_ARGS=tests/test_api_fuzz.py` runs the full few-hundred-examples sweep.
"""
import os
from decimal import Decimal

import pytest
import schemathesis
from hypothesis import HealthCheck, settings as hsettings

from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from django.core.wsgi import get_wsgi_application

# The WSGI handler, not shop.wsgi: that entry point is for servers and refuses the tests' debug settings.
application = get_wsgi_application()

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "15"))

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def shop_data(db, monkeypatch):
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from catalog.models import Category, Product

    # As Django's test client does: the WSGI handler must not close the test's transaction connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)

    from rest_framework.views import APIView

    monkeypatch.setattr(APIView, "throttle_classes", [])  # thousands of requests from one client in seconds
    root = Category.objects.create(name="Root", slug="root")
    for i in range(30):
        Product.objects.create(external_id=f"fz{i}", name=f"Fuzz product {i}", slug=f"fuzz-{i}",
                               price=Decimal("9.99"), category=root)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@hsettings(max_examples=MAX_EXAMPLES, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                  HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_api_never_errors_and_conforms(case, shop_data):
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    # Response-side checks: status codes, content types, headers and bodies as documented.
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                             response_headers_conformance, response_schema_conformance])
