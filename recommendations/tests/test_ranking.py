"""recommend_for_session, similar_items: strategies, the popular fallback, exclude-seen, explanations."""
import uuid

import pytest

from catalog.models import Product
from recommendations import caches, ranking, selectors, serving


def _ext(pks):
    return list(Product.objects.filter(pk__in=pks).values_list("external_id", flat=True))


def test_no_model_falls_back_to_popular(catalogue):
    result = ranking.recommend_for_session(items=[catalogue[0].pk, catalogue[1].pk], k=6, explain=True)
    assert result.strategy == "popular"
    assert result.model_version is None
    assert len(result.items) == 6
    assert catalogue[0].pk not in result.product_ids and catalogue[1].pk not in result.product_ids
    assert result.explanation["reason"] == "no active model"
    assert [s.score for s in result.items] == [1.0, 0.5, 0.333333, 0.25, 0.2, 0.166667]


def test_popular_of_the_current_category_first(catalogue):
    cat = catalogue[0].category_id
    result = ranking.recommend_for_session(items=[], k=6, category=cat)
    assert {p.product.category_id for p in result.items} == {cat}


def test_popular_fallback_of_a_shop_without_popularity_is_memoised(catalogue, django_assert_num_queries):
    """No popularity yet (a young shop): the newest products of the category, then any, fill the
    pool, memoised with it, so a repeated fallback asks the database nothing; exclusions that
    empty the pool still get k products (one query)."""
    cat = catalogue[0].category_id
    first = selectors.popular_product_ids(6, category_id=cat)
    newest = [p.pk for p in sorted(catalogue, key=lambda p: -p.pk) if p.category_id == cat]
    assert first == newest[:6]
    with django_assert_num_queries(0):
        assert selectors.popular_product_ids(6, category_id=cat, exclude=[newest[0]]) == newest[1:7]
    everything = [p.pk for p in catalogue]
    with django_assert_num_queries(2):  # the pool (20 of the category + 40 others) all excluded but 3
        got = selectors.popular_product_ids(6, category_id=cat, exclude=everything[3:])
    assert sorted(got) == everything[:3]


@pytest.mark.parametrize("kind", ["gru4rec", "vsknn"])
def test_active_model_answers_and_excludes_seen(kind, request, activate):
    mv = request.getfixturevalue("gru_version" if kind == "gru4rec" else "sknn_version")
    activate(mv)
    bundle = serving.model_reload()
    seen = [int(bundle.index_pk[i]) for i in (0, 1, 2)]
    result = ranking.recommend_for_session(items=seen, k=10, explain=True)
    assert result.strategy == kind
    assert result.model_version == mv.version
    assert len(result.items) == 10
    assert not set(seen) & set(result.product_ids)
    assert len(set(result.product_ids)) == 10
    scores = [s.score for s in result.items]
    if kind == "gru4rec":
        assert scores == sorted(scores, reverse=True)
    ex = result.explanation
    assert ex["strategy"] == kind and ex["session_items_used"] == seen and ex["session_items_skipped"] == []
    assert [e["product"] for e in ex["scores"]] == result.product_ids
    assert ex["scores"][0]["score"] == scores[0]
    # without exclude_seen the seen items may come back, and the ranking is the model's
    again = ranking.recommend_for_session(items=seen, k=60, exclude_seen=False)
    assert len(again.items) == 60 if kind == "gru4rec" else len(again.items) == 60


def test_unknown_items_skipped_and_all_unknown_falls_back(gru_version, catalogue, activate):
    activate(gru_version)
    bundle = serving.model_reload()
    unknown = Product.objects.create(external_id="not-in-model", name="New", slug="new").pk
    known = int(bundle.index_pk[5])
    result = ranking.recommend_for_session(items=[unknown, known], k=4, explain=True)
    assert result.strategy == "gru4rec"
    assert result.used == [known] and result.skipped == [unknown]
    assert result.explanation["session_items_skipped"] == [unknown]
    only_unknown = ranking.recommend_for_session(items=[unknown], k=4, explain=True)
    assert only_unknown.strategy == "popular"
    assert only_unknown.model_version == gru_version.version
    assert only_unknown.explanation["reason"] == "no item of the session is known to the model"
    empty = ranking.recommend_for_session(items=[], k=4, explain=True)
    assert empty.strategy == "popular" and empty.explanation["reason"] == "empty session"
    assert len(empty.items) == 4


def test_inactive_products_filtered_still_exactly_k(gru_version, catalogue, activate):
    activate(gru_version)
    serving.model_reload()
    first = ranking.recommend_for_session(items=[catalogue[0].pk], k=5)
    from catalog.services import products_set_active

    products_set_active(first.product_ids[:3], False)
    second = ranking.recommend_for_session(items=[catalogue[0].pk], k=5)
    assert len(second.items) == 5
    assert not set(first.product_ids[:3]) & set(second.product_ids)
    assert second.product_ids[:2] == first.product_ids[3:5]


@pytest.mark.parametrize("kind", ["gru4rec", "vsknn"])
def test_the_same_question_is_answered_from_the_bundle_cache(kind, request, activate, monkeypatch):
    """A repeated session (the page's block, a reload) is not scored again by the same loaded model;
    another history, another k or exclude_seen, another product's similar items are; a reloaded
    version starts empty; the answers are those the engine gave."""
    activate(request.getfixturevalue("gru_version" if kind == "gru4rec" else "sknn_version"))
    bundle = serving.model_reload()
    calls = []
    engine = bundle.engine
    top_items, similar = engine.top_items, engine.similar
    monkeypatch.setattr(engine, "top_items", lambda *a, **kw: calls.append("top") or top_items(*a, **kw))
    monkeypatch.setattr(engine, "similar", lambda *a, **kw: calls.append("similar") or similar(*a, **kw))
    items = [int(bundle.index_pk[i]) for i in (0, 1, 2)]
    first = ranking.recommend_for_session(items=items, k=5)
    again = ranking.recommend_for_session(items=items, k=5)
    assert calls == ["top"]
    assert again.product_ids == first.product_ids and [s.score for s in again.items] == [s.score for s in first.items]
    ranking.recommend_for_session(items=items[:2], k=5)
    ranking.recommend_for_session(items=items, k=20)
    ranking.recommend_for_session(items=items, k=5, exclude_seen=False)
    assert calls == ["top"] * 4
    product = Product.objects.get(pk=items[0])
    assert ranking.similar_items(product, k=4).product_ids == ranking.similar_items(product, k=4).product_ids
    assert calls == ["top"] * 4 + ["similar"]
    assert bundle.answers.hits == 2
    serving.model_unload()
    fresh = serving.model_reload()
    assert fresh is not bundle and len(fresh.answers) == 0
    assert ranking.recommend_for_session(items=items, k=5).product_ids == first.product_ids


def test_answer_cache_is_bounded_and_can_be_off():
    lru = caches.AnswerCache(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # a is now the most recent
    lru.put("c", 3)
    assert lru.get("b") is None and lru.get("a") == 1 and lru.get("c") == 3 and len(lru) == 2
    off = caches.AnswerCache(0)
    off.put("a", 1)
    assert off.get("a") is None and len(off) == 0


def test_model_failure_never_raises(gru_version, catalogue, monkeypatch, activate):
    activate(gru_version)
    serving.model_reload()

    def boom(*a, **k):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(ranking, "_model_candidates", boom)
    result = ranking.recommend_for_session(items=[catalogue[0].pk], k=3, explain=True)
    assert result.strategy == "popular" and len(result.items) == 3
    assert result.explanation["reason"] == "the model failed; popular items answer"


def test_similar_items_by_embedding_and_itemknn(gru_version, sknn_version, catalogue, activate):
    activate(gru_version)
    bundle = serving.model_reload()
    product = Product.objects.get(pk=int(bundle.index_pk[0]))
    result = ranking.similar_items(product, k=5)
    assert result.strategy == "embedding" and len(result.items) == 5 and product.pk not in result.product_ids
    activate(sknn_version)
    bundle = serving.model_reload()
    product = Product.objects.get(pk=int(bundle.index_pk[0]))
    result = ranking.similar_items(product, k=5)
    assert result.strategy == "itemknn" and len(result.items) == 5 and product.pk not in result.product_ids
    new = Product.objects.create(external_id="zzz", name="Z", slug="z", category=product.category)
    fallback = ranking.similar_items(new, k=3)
    assert fallback.strategy == "popular" and {p.product.category_id for p in fallback.items} == {product.category_id}


def test_session_history_is_one_query_and_matches_tracking(catalogue, django_assert_num_queries):
    """The one-statement history of a visit uuid: tracking's session_history, order and limit."""
    from datetime import timedelta

    from django.utils import timezone

    from tracking.models import Event, Visit
    from tracking.selectors import session_history

    visit = Visit.objects.create()
    other = Visit.objects.create()
    t0 = timezone.now()
    rows = []
    for i in range(70):  # more than SESSION_ITEMS_MAX, with impressions and ties in time
        kind = "impression" if i % 7 == 3 else ("click" if i % 5 == 0 else "view")
        rows.append(Event(visit=visit, event_type=kind, product=catalogue[i % 50], timestamp=t0 + timedelta(seconds=i // 2)))
    rows.append(Event(visit=other, event_type="view", product=catalogue[59], timestamp=t0))
    Event.objects.bulk_create(rows)
    want = session_history(visit.pk, limit=selectors.SESSION_ITEMS_MAX)
    assert len(want) == selectors.SESSION_ITEMS_MAX
    with django_assert_num_queries(1):
        got = selectors.session_product_ids(str(visit.uuid))
    assert got == want
    assert selectors.session_product_ids(visit.uuid) == want
    assert selectors.session_product_ids(str(visit.uuid).upper()) == want
    assert selectors.session_product_ids(visit.pk) == want
    assert selectors.session_product_ids(str(uuid.uuid4())) == []
    assert selectors.session_product_ids("not-a-uuid") == []


def test_recommend_for_a_visit_reads_its_history(gru_version, catalogue, activate):
    from tracking.services import events_record_for_api

    activate(gru_version)
    bundle = serving.model_reload()
    seen = [int(bundle.index_pk[i]) for i in (1, 2, 3)]
    visit = uuid.uuid4()
    events_record_for_api(visit, [{"type": "view", "product": pk} for pk in seen])
    by_visit = ranking.recommend_for_session(session=str(visit), k=5, explain=True)
    by_items = ranking.recommend_for_session(items=seen, k=5)
    assert by_visit.strategy == "gru4rec" and by_visit.used == seen
    assert by_visit.product_ids == by_items.product_ids and not set(seen) & set(by_visit.product_ids)


def test_products_known_from_the_cache(catalogue, django_assert_num_queries):
    catalogue[1].is_active = False
    catalogue[1].save()
    pks = [catalogue[0].pk, catalogue[1].pk, 10**9]
    assert caches.products_known(pks) == {catalogue[0].pk, catalogue[1].pk}  # inactive is still known
    with django_assert_num_queries(0):
        assert caches.products_known(pks[::-1]) == {catalogue[0].pk, catalogue[1].pk}
    assert caches.products_known([]) == set()


def _fields(product) -> dict:
    return {f.attname: getattr(product, f.attname) for f in Product._meta.concrete_fields}


def test_the_whole_catalogue_is_read_once_per_catalogue_version(catalogue, django_assert_num_queries, monkeypatch):
    """A catalogue of at most MAX_ENTRIES products is read whole on the first lookup of a catalogue
    version: every other product, its category and a pk that names no product then cost no query
    (a model answers from its whole catalogue); the products are what the ORM gives; a catalogue
    change is read afresh."""
    from catalog import cache as catalog_cache
    from catalog.api.serializers import ProductSerializer
    from catalog.services import products_set_active

    monkeypatch.setattr(catalog_cache, "VERSION_MEMO_SECONDS", 3600.0)  # no version query in the blocks below
    caches.reset()
    pks = [p.pk for p in catalogue]
    catalog_cache.version()
    with django_assert_num_queries(2):  # the products' rows and the categories
        assert caches.products_active(pks[:1]).keys() == {pks[0]}
    with django_assert_num_queries(0):
        got = caches.products_active(pks[1:] + [10**9])
        assert got.keys() == set(pks[1:])
        assert caches.products_known([pks[2], 10**9]) == {pks[2]}
        data = {pk: ProductSerializer(p).data for pk, p in got.items()}  # the category is attached
    orm = {p.pk: p for p in Product.objects.select_related("category").filter(pk__in=pks[1:])}
    assert {pk: _fields(p) for pk, p in got.items()} == {pk: _fields(p) for pk, p in orm.items()}
    assert data == {pk: ProductSerializer(p).data for pk, p in orm.items()}
    products_set_active([pks[3]], False)  # a new catalogue version
    with django_assert_num_queries(2):
        assert caches.products_active(pks[:5]).keys() == {pks[0], pks[1], pks[2], pks[4]}
    assert caches.products_known([pks[3]]) == {pks[3]}  # inactive, still a product


def test_a_catalogue_over_the_limit_is_read_one_miss_at_a_time(catalogue, django_assert_num_queries, monkeypatch):
    from catalog import cache as catalog_cache

    monkeypatch.setattr(catalog_cache, "VERSION_MEMO_SECONDS", 3600.0)
    monkeypatch.setattr(caches._ProductCache, "MAX_ENTRIES", 10)
    caches.reset()
    pks = [p.pk for p in catalogue]
    catalog_cache.version()
    with django_assert_num_queries(2):  # 11 rows: too many; then the misses
        assert caches.products_active(pks[:2]).keys() == set(pks[:2])
    with django_assert_num_queries(1):  # the size is known now: only the misses
        assert caches.products_active(pks[:4]).keys() == set(pks[:4])
    with django_assert_num_queries(0):
        assert caches.products_active(pks[:4]).keys() == set(pks[:4])
    caches.reset()


@pytest.mark.django_db(transaction=True)  # the prepared statement is used outside transactions only
def test_session_history_prepared_statement_survives_deallocation_and_reconnects(settings):
    """On PostgreSQL the history is a server-side prepared statement, prepared once per connection:
    the same rows as the plain statement, prepared again after DEALLOCATE ALL (a pooler's reset)
    and on a new connection; with DB_PREPARED_STATEMENTS off it is never prepared."""
    from django.db import connection

    from tracking import db as tracking_db
    from tracking.models import Event, Visit

    if connection.vendor != "postgresql":
        pytest.skip("server-side prepared statements are a PostgreSQL path")
    statement = tracking_db.history_statement_name(selectors.SESSION_ITEMS_MAX)
    product = Product.objects.create(external_id="p-prep", name="Prepared", price="1.00")
    other = Product.objects.create(external_id="p-prep-2", name="Prepared 2", price="1.00")
    visit = Visit.objects.create()
    Event.objects.create(visit=visit, event_type="view", product=product)
    Event.objects.create(visit=visit, event_type="click", product=other)
    want = [product.pk, other.pk]

    def prepared() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM pg_prepared_statements")
            return {row[0] for row in cursor.fetchall()}

    settings.DB_PREPARED_STATEMENTS = False
    connection.close()
    assert selectors.session_product_ids(visit.uuid) == want
    assert statement not in prepared()

    settings.DB_PREPARED_STATEMENTS = True
    assert selectors.session_product_ids(visit.uuid) == want
    assert statement in prepared()
    assert selectors.session_product_ids(str(uuid.uuid4())) == []
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    assert selectors.session_product_ids(visit.uuid) == want  # prepared again, no error
    assert statement in prepared()
    connection.close()
    assert selectors.session_product_ids(visit.uuid) == want  # a new connection is prepared too
    assert statement in prepared()
