"""The query-parameter fast path of the recommendations API gives exactly what the serializer
gives, or defers to it."""
import uuid

from django.http import QueryDict
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from recommendations.api.serializers import (
    RecommendationQuerySerializer,
    SimilarQuerySerializer,
    query_validated_fast,
)

NAMES = ["session", "k", "exclude_seen", "explain", "category", "page", "K"]
VALUES = st.one_of(
    st.sampled_from(["", "0", "1", "6", "06", "100", "101", "-1", "6.0", "1e2", " 6", "٣", "²", "99999999999",
                     "true", "True", "YES", "off", "n", "null", "maybe", "on"]),
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: "{%s}" % u),
    st.text(max_size=12),
    st.integers(-5, 200).map(str),
)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=6))
def test_fast_path_agrees_with_the_serializer(pairs):
    query = QueryDict(mutable=True)
    for name, value in pairs:
        query.appendlist(name, value)
    for serializer_class in (RecommendationQuerySerializer, SimilarQuerySerializer):
        fast = query_validated_fast(serializer_class, query)
        if fast is None:
            continue
        s = serializer_class(data=query)
        assert s.is_valid(), (query, s.errors)
        assert fast == dict(s.validated_data)
        assert {type(v) for v in fast.values()} == {type(v) for v in s.validated_data.values()}


def test_plain_queries_take_the_fast_path_and_bad_ones_defer():
    visit = uuid.uuid4()
    assert query_validated_fast(RecommendationQuerySerializer, QueryDict(f"session={visit}&k=6")) == {
        "session": visit, "k": 6, "exclude_seen": True, "explain": False,
    }
    assert query_validated_fast(RecommendationQuerySerializer, QueryDict("k=3&explain=yes&category=2&utm=x")) == {
        "k": 3, "exclude_seen": True, "explain": True, "category": 2,
    }
    for bad in ("k=0", "k=101", "k=abc", "session=nope", "explain=maybe", "category=0", "k=", "k=6.0"):
        assert query_validated_fast(RecommendationQuerySerializer, QueryDict(bad)) is None, bad


def test_a_serializer_that_validates_more_is_never_fast():
    class Checked(serializers.Serializer):
        k = serializers.IntegerField(default=6)

        def validate_k(self, value):
            raise serializers.ValidationError("no")

    class Sourced(serializers.Serializer):
        k = serializers.IntegerField(default=6, source="n")

    assert query_validated_fast(Checked, QueryDict("k=3")) is None
    assert query_validated_fast(Sourced, QueryDict("k=3")) is None


def test_digits_other_than_ascii_are_refused_by_both_paths():
    """int() reads '٣' as 3 and isdigit() passes '³' (int() refuses it): neither is a number here."""
    for bad in ("k=\u0663", "k=\u00b3", "category=\u0661", "k=%2B3", "k=3%20"):
        query = QueryDict(bad)
        for serializer_class in (RecommendationQuerySerializer, SimilarQuerySerializer):
            if not any(name in serializer_class._declared_fields for name in query):
                continue
            assert query_validated_fast(serializer_class, query) is None, bad
            s = serializer_class(data=query.dict())
            assert not s.is_valid() and list(s.errors) == [next(iter(query))], bad
