"""Property tests: random malformed rows never crash the importer and never cost a valid row;
random event payloads never crash the API and are either stored whole or not at all."""
import json
import string

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from rest_framework.test import APIClient

from tracking.importers import detect_layout, parse_block
from tracking.models import Event

VALID = st.builds(
    lambda s, d, h, m, ms, item: f"{s},2014-04-{d:02d}T{h:02d}:{m:02d}:00.{ms:03d}Z,{item},0",
    st.integers(1, 10**9), st.integers(1, 28), st.integers(0, 23), st.integers(0, 59), st.integers(0, 999),
    st.integers(1, 10**12),
)
GARBAGE = st.one_of(
    st.text(alphabet=string.printable.replace("\n", "").replace("\r", "").replace("\x0b", "").replace("\x0c", ""),
            max_size=60),
    st.builds(lambda a, b: f"{a},{b}", st.text(alphabet="0123456789,-:TZ.", max_size=30), st.integers()),
    st.just("1,2014-04-07T10:51:09.277Z,abc,0"),
    st.just("1,2014-13-07T10:51:09.277Z,5,0"),
    st.just("1,2014-04-07T10:51:09.277Z,5"),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), VALID, GARBAGE), min_size=1, max_size=30))
def test_parser_keeps_every_valid_row(tmp_path_factory, rows):
    lines = [valid if keep else garbage for keep, valid, garbage in rows]
    path = tmp_path_factory.mktemp("p") / "c.dat"
    path.write_text("1,2014-04-07T10:51:09.277Z,214536502,0\n")
    layout = detect_layout(str(path), "yoochoose")
    block = ("\n".join(lines) + "\n").encode()
    chunk, errors, _ = parse_block(block, 1, layout)
    valid_lines = {i + 1 for i, (keep, _, _) in enumerate(rows) if keep}
    error_lines = {e.line for e in errors}
    assert not (valid_lines & error_lines)  # no valid row is refused
    blank = {i + 1 for i, line in enumerate(lines) if not line.strip()}
    # every line is either kept or reported (blank lines are neither)
    assert len(chunk) + len(error_lines) == len(lines) - len(blank)
    assert len(chunk) >= len(valid_lines)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
EVENT = st.fixed_dictionaries(
    {"type": st.sampled_from(["view", "click", "impression", "hover", 3])},
    optional={"product": JSON_VALUES, "position": JSON_VALUES, "source": JSON_VALUES,
              "timestamp": JSON_VALUES | st.just("2025-01-01T00:00:00Z"), "model_version": JSON_VALUES},
)


@pytest.mark.django_db
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(EVENT, min_size=1, max_size=5))
def test_events_api_is_all_or_nothing(products, events):
    before = Event.objects.count()
    body = {"session": "5b0c2a9e-8c4f-4d0a-9e2b-7f6a1c3d2e10", "events": events}
    response = APIClient().post("/api/events/", data=json.dumps(body), content_type="application/json")
    assert response.status_code in (201, 400)
    stored = Event.objects.count() - before
    assert stored == (len(events) if response.status_code == 201 else 0)
