"""Bad input at the edges of the site: oversized bodies, garbage or deeply nested JSON, digits that
are not ASCII, unknown URLs under /api/; and the same inputs against the production stack."""
import io
import json

import pytest
from django.test import Client
from rest_framework.exceptions import ParseError

from shop.parsers import JSONParser, json_nesting


@pytest.fixture
def api():
    return Client(raise_request_exception=False)


@pytest.mark.django_db
def test_oversized_body_is_413_not_a_crash(api, settings):
    body = json.dumps({"session": "00000000-0000-4000-8000-000000000000",
                       "events": [{"type": "view", "product": 1}] * 200_000})
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = api.post("/api/events/", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large."}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/events/", "/api/recommendations/"])
@pytest.mark.parametrize("payload", ["{not json", "[]", "null", "\x00\xff", '{"events": "x"}'])
def test_garbage_bodies_are_400(api, path, payload):
    response = api.post(path, data=payload, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.django_db
def test_unknown_api_url_answers_json_404(api):
    response = api.get("/api/products/not-a-number/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    page = api.get("/no-such-page/")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_oversized_batch_is_400_with_a_message(api):
    events = [{"type": "view", "product": 1}] * 501
    response = api.post("/api/events/", data={"session": "00000000-0000-4000-8000-000000000000", "events": events},
                        content_type="application/json")
    assert response.status_code == 400
    assert "events" in response.json()


# --- JSON nested without bound -------------------------------------------------------------------

DEEP_LIST = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000
TOO_DEEP = {"detail": "JSON parse error - nested deeper than 32 levels."}


@pytest.fixture
def staff_token(db):
    from django.contrib.auth.models import Permission, User
    from rest_framework.authtoken.models import Token

    user = User.objects.create_user("staff", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="recommendations"))
    return Token.objects.create(user=user).key


@pytest.mark.django_db
@pytest.mark.parametrize("body", [DEEP_LIST, DEEP_OBJECT, '{"session": "x", "events": ' + DEEP_LIST + "}"])
@pytest.mark.parametrize("path, content_type", [
    ("/api/events/", "application/json"),
    ("/api/events/", "text/plain"),  # sendBeacon's JSON
    ("/api/recommendations/", "application/json"),
    ("/api/models/train/", "application/json"),
])
def test_deeply_nested_json_is_400_not_a_recursion_error(api, staff_token, path, content_type, body):
    """A thousand nested arrays raised RecursionError in the JSON parser: a 500, production mode too."""
    response = api.post(path, data=body, content_type=content_type, HTTP_AUTHORIZATION=f"Token {staff_token}")
    assert (response.status_code, response.json()) == (400, TOO_DEEP)


def test_every_api_view_parses_json_through_the_bounded_parser():
    """The bound holds for views that name their own parsers (the beacon parser) as for the default."""
    from django.urls import get_resolver
    from rest_framework.parsers import JSONParser as DRFJSONParser
    from rest_framework.views import APIView

    def views(patterns):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                yield from views(pattern.url_patterns)
            else:
                cls = getattr(pattern.callback, "cls", None)
                if cls is not None and issubclass(cls, APIView):
                    yield cls

    checked = set(views(get_resolver().url_patterns))
    assert len(checked) >= 10
    for cls in checked:
        parsers = cls().get_parsers()
        assert parsers, cls
        for parser in parsers:
            if isinstance(parser, DRFJSONParser):
                assert isinstance(parser, JSONParser), (cls, parser)


@pytest.mark.django_db
@pytest.mark.parametrize("path, body", [
    ("/api/recommendations/", {"items": "DEEP"}),
    ("/api/recommendations/", {"items": [], "k": "DEEP"}),
    ("/api/events/", {"session": "00000000-0000-4000-8000-000000000000", "events": "DEEP"}),
    ("/api/events/", {"session": "00000000-0000-4000-8000-000000000000", "events": [{"type": "view", "product": "DEEP"}]}),
    ("/api/models/train/", {"params": "DEEP"}),
])
def test_the_deepest_accepted_json_is_a_field_error(api, staff_token, path, body):
    """As deep as the parser allows, in every field: the serializers answer 400, they do not recurse."""
    text = json.dumps(body)
    before = text[:text.index('"DEEP"')]  # no brackets in these bodies' strings
    depth = JSONParser.max_depth - (before.count("[") + before.count("{") - before.count("]") - before.count("}"))
    deep = text.replace('"DEEP"', "[" * depth + "]" * depth)
    assert json_nesting(deep) == JSONParser.max_depth
    response = api.post(path, data=deep, content_type="application/json", HTTP_AUTHORIZATION=f"Token {staff_token}")
    assert response.status_code == 400, response.content
    assert response.json() != TOO_DEEP


def test_json_parser_bound():
    parse = lambda text: JSONParser().parse(io.BytesIO(text.encode()), "application/json", {})  # noqa: E731
    assert parse("[" * 32 + "]" * 32) == json.loads("[" * 32 + "]" * 32)
    for text in ("[" * 33 + "]" * 33, "[{" * 17 + "1" + "}]" * 17, "[" * 1000 + "]" * 1000 + "[]"):
        with pytest.raises(ParseError, match="nested deeper than 32 levels"):
            parse(text)
    # unclosed brackets are not JSON: refused before json recurses into each of them
    for text in ("[" * 100000, "[" * 1000 + "]", '{"a":' * 1000 + "1"):
        with pytest.raises(ParseError, match="unbalanced brackets"):
            parse(text)
    # brackets inside strings (escaped quotes included) nest nothing
    tricky = json.dumps({"a": "[" * 100 + '\\"' + "{" * 100, "b": ["]" * 50]})
    assert parse(tricky) == json.loads(tricky)
    texts = ("1", '"[[["', "[]", "[[], [[]]]", '{"a": [{"b": "]]"}]}', "]]][[", "[" * 33 + "]" * 33, "[" * 99 + "]" * 99)
    assert [json_nesting(t) for t in texts] == [0, 0, 1, 3, 3, -1, 33, 33]
    assert json_nesting("[" * 99 + "]" * 99, limit=200) == 99
    with pytest.raises(ParseError, match="JSON parse error"):
        parse("[1,]")
    with pytest.raises(ParseError, match="JSON parse error"):
        parse('{"x": NaN}')  # DRF's strict JSON: no NaN or Infinity


# --- Integers from clients: ASCII digits only ------------------------------------------------------

SUPERSCRIPT_1 = "%C2%B9"  # '¹': isdigit() is true, int() raises ValueError


def arabic(number: int) -> str:
    """The number in Arabic-Indic digits, which int() reads like ASCII ones."""
    return "".join(chr(0x660 + int(d)) for d in str(number))


@pytest.mark.django_db
@pytest.mark.parametrize("url, status", [
    (f"/?category={SUPERSCRIPT_1}", 404),  # as an unknown category
    (f"/api/products/?category={SUPERSCRIPT_1}", 400),
    (f"/api/clusters/?version={SUPERSCRIPT_1}", 404),
    (f"/api/clusters/1/?version={SUPERSCRIPT_1}", 404),
    (f"/api/recommendations/?k={SUPERSCRIPT_1}", 400),
    (f"/api/recommendations/?category={SUPERSCRIPT_1}", 400),
    (f"/api/products/?page={SUPERSCRIPT_1}", 404),
    (f"/api/products/?page_size={SUPERSCRIPT_1}", 400),
    (f"/?page={SUPERSCRIPT_1}", 200),  # the first page, as for any bad page number
    (f"/taste/?page={SUPERSCRIPT_1}", 200),
])
def test_superscript_digits_are_not_a_500(api, url, status):
    assert api.get(url).status_code == status


@pytest.mark.django_db
def test_arabic_indic_digits_are_not_numbers(api):
    from catalog import cache as catalog_cache
    from catalog.models import Category, Product

    catalog_cache.bump()  # a category tree cached by an earlier test is not this database's
    kitchen = Category.objects.create(name="Kitchen", slug="kitchen")
    Category.objects.create(name="Garden", slug="garden")
    for i in range(30):
        Product.objects.create(external_id=f"k{i}", name=f"Pan {i}", slug=f"pan-{i}", category=kitchen)
    page = api.get(f"/?category={kitchen.pk}")
    assert page.status_code == 200 and page.context["category"].slug == "kitchen"
    assert api.get(f"/?category={arabic(kitchen.pk)}").status_code == 404  # was the kitchen's page
    assert api.get("/?page=2").context["page_obj"].number == 2
    assert api.get(f"/?page={arabic(2)}").context["page_obj"].number == 1  # was page 2
    response = api.get(f"/api/products/?category={arabic(kitchen.pk)}")
    assert (response.status_code, list(response.json())) == (400, ["category"])
    response = api.get(f"/api/recommendations/?k={arabic(3)}")
    assert (response.status_code, list(response.json())) == (400, ["k"])


def test_ascii_int_and_the_fields_built_on_it():
    from django import forms
    from rest_framework import serializers

    from shop.validators import AsciiIntegerField, AsciiIntegerFormField, ascii_int

    assert [ascii_int(v) for v in ("0", "42", "-7", "007", "9" * 32)] == [0, 42, -7, 7, int("9" * 32)]
    for bad in ("", " 1", "1 ", "+1", "1_000", "1.0", "\u0663", "\u00b9", "\uff11", "9" * 33, None, 3, "--1"):
        with pytest.raises(ValueError):
            ascii_int(bad)

    field = AsciiIntegerField(min_value=1)
    assert (field.run_validation("12"), field.run_validation(12)) == (12, 12)
    for bad in ("\u0663", "\u00b9", "1.0", "x"):
        with pytest.raises(serializers.ValidationError) as error:
            field.run_validation(bad)
        assert error.value.detail == ["A valid integer is required."]

    class Form(forms.Form):
        quantity = AsciiIntegerFormField(min_value=1, max_value=99)

    form = Form({"quantity": " 3 "})
    assert form.is_valid() and form.cleaned_data == {"quantity": 3}
    for bad, message in (("\u0663", "Enter a whole number."), ("\u00b9", "Enter a whole number."),
                         ("0", "Ensure this value is greater than or equal to 1."), ("", "This field is required.")):
        assert Form({"quantity": bad}).errors == {"quantity": [message]}, bad


@pytest.mark.django_db
@pytest.mark.parametrize("url, names", [
    ("/api/products/?page=x&page=2", ["page"]),  # was page 2: the last value counted
    ("/api/products/?ordering=colour&ordering=id&search=a&search=b", ["ordering", "search"]),
    ("/api/recommendations/?k=abc&k=6", ["k"]),
    ("/api/clusters/?version=a&version=", ["version"]),
])
def test_a_repeated_api_query_parameter_is_400(api, url, names):
    response = api.get(url)
    assert (response.status_code, response.json()) == (400, {name: ["Give this parameter once."] for name in names})


@pytest.mark.django_db
def test_repeated_parameters_elsewhere_keep_djangos_last_value(api):
    import re

    from catalog.tests.factories import ProductFactory

    # names in the order of the ids: sorted by name is oldest first, by -id newest first
    products = [ProductFactory(name=name) for name in ("Aa", "Bb", "Cc")]
    for query, order in (("sort=name&sort=-id", "-id"), ("sort=-id&sort=name", "name")):
        response = api.get(f"/?{query}")
        assert response.status_code == 200
        shown = [int(x) for x in re.findall(r'data-product="(\d+)" data-source="grid"', response.content.decode())]
        expected = sorted(products, key=lambda p: p.name) if order == "name" else products[::-1]
        assert shown == [p.pk for p in expected], query
    # and an API parameter given once is taken as it is
    response = api.get("/api/products/?page=1&page_size=2")
    assert response.status_code == 200 and len(response.json()["results"]) == 2


# --- Unmatched API paths: JSON in every mode -----------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
def test_unmatched_api_paths_answer_json_404_in_debug_too(api, settings, debug):
    """handler404 is not used in debug mode: Django answered its HTML technical page there."""
    settings.DEBUG = debug
    for method, path in (("get", "/api/nope/"), ("get", "/api/nope"), ("post", "/api/nope/"), ("post", "/api/events"),
                         ("get", "/api/products/x/"), ("delete", "/api/a/b/c"), ("get", "/api/products/1/similar/x/")):
        response = getattr(api, method)(path)
        assert (response.status_code, response["Content-Type"], response.json()) == (
            404, "application/json", {"detail": "Not found."}), (method, path)
    # a GET that only lacks its slash is still redirected, as APPEND_SLASH does
    response = api.get("/api/products?page=2")
    assert (response.status_code, response["Location"]) == (301, "/api/products/?page=2")
    page = api.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


# --- The same inputs against the production stack (gunicorn, DJANGO_DEBUG=false) -----------------

@pytest.mark.slow  # a live shop per module runs collectstatic: the in-process tests above cover the default run
@pytest.mark.django_db(transaction=True)
def test_bad_input_in_production_mode(live_shop):
    from catalog.models import Category

    Category.objects.create(name="Kitchen", slug="kitchen")
    http = live_shop.client()
    for path, content_type in (("/api/events/", "application/json"), ("/api/events/", "text/plain"),
                               ("/api/recommendations/", "application/json")):
        for body in (DEEP_LIST, DEEP_OBJECT):
            response = http.http.post(live_shop.url + path, data=body, headers={"Content-Type": content_type},
                                      timeout=30)
            assert (response.status_code, response.json()) == (400, TOO_DEEP), (path, content_type)
    for url, status in ((f"/?category={SUPERSCRIPT_1}", 404), (f"/api/products/?category={SUPERSCRIPT_1}", 400),
                        (f"/api/clusters/?version={SUPERSCRIPT_1}", 404), (f"/?category={arabic(1)}", 404),
                        ("/api/nope/", 404)):
        assert http.get(url).status_code == status, url
