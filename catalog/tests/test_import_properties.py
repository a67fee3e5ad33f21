"""Property-based: a catalogue CSV with random valid rows and random garbage rows mixed in never crashes
the importer, every valid row lands, and every bad row is reported with its line number."""
import csv
import io
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from catalog.models import Product
from catalog.services import catalog_import_csv

HEADER = ["event_time", "event_type", "product_id", "category_id", "category_code", "brand", "price", "user_id",
          "user_session"]

valid_row = st.fixed_dictionaries({
    "product_id": st.integers(min_value=1, max_value=10**12).map(str),
    "category_code": st.lists(st.text("abcdefghij_", min_size=1, max_size=8), min_size=0, max_size=3).map(".".join),
    "brand": st.text("abcdefxyz", max_size=12),
    "price": st.decimals(min_value=0, max_value=99999, places=2, allow_nan=False, allow_infinity=False).map(str),
})
garbage = st.sampled_from(["not-a-number", "", "-5", "1e400", "NaN", "12.3.4", "\x00", "99999999999999999999"])
# One physical line per record (no line breaks inside fields), so line numbers are easy to predict.
one_line_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=10)
bad_row = st.fixed_dictionaries({
    "product_id": st.one_of(st.just(""), st.text(" ", max_size=2)),
    "category_code": one_line_text,
    "brand": one_line_text,
    "price": one_line_text,
}) | st.fixed_dictionaries({
    "product_id": st.integers(min_value=1, max_value=10**6).map(str),
    "category_code": st.just("x"),
    "brand": st.just("b"),
    "price": garbage,
})


@pytest.mark.django_db
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(st.booleans(), valid_row, bad_row), min_size=1, max_size=25))
def test_random_rows_never_crash_and_keep_every_valid_row(tmp_path_factory, rows):
    Product.objects.all().delete()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HEADER)
    writer.writeheader()
    expected: dict[str, Decimal] = {}
    bad_lines = []
    for line, (use_valid, good, bad) in enumerate(rows, start=2):
        row = good if use_valid else bad
        writer.writerow({**{k: "" for k in HEADER}, **row, "event_time": "2019-10-01 00:00:00 UTC",
                         "event_type": "view"})
        if use_valid:
            expected[good["product_id"]] = Decimal(good["price"]).quantize(Decimal("0.01"))
        else:
            bad_lines.append(line)
    path = tmp_path_factory.mktemp("csv") / "products.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")

    summary = catalog_import_csv(path, progress=False)

    stored = dict(Product.objects.values_list("external_id", "price"))
    for ext, price in expected.items():  # every valid row landed (the last row of an id wins)
        assert ext in stored
    last_valid_price = {}
    for use_valid, good, _ in rows:
        if use_valid:
            last_valid_price[good["product_id"]] = Decimal(good["price"]).quantize(Decimal("0.01"))
    for ext, price in last_valid_price.items():
        if ext not in {b["product_id"] for v, _, b in rows if not v}:
            assert stored[ext] == price
    reported = {line for line, _ in summary.bad_rows}
    # a bad row whose id also has valid rows may still be reported; every reported line is a real line
    assert reported <= set(range(2, len(rows) + 2))
    for line in bad_lines:
        bad = rows[line - 2][2]
        if bad["product_id"].strip() and bad["price"] == "":
            continue  # an empty price is a valid 0.00, not a bad row
        assert line in reported, f"bad row {line} ({bad}) was not reported"


@pytest.mark.django_db
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40))
def test_any_text_in_text_columns_never_crashes(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("csv") / "odd.csv"
    with open(path, "w", newline="", encoding="utf-8", errors="surrogatepass") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerow(["2019-10-01", "view", "77", "1", text, text, "1.00", "1", "s"])
        writer.writerow(["2019-10-01", "view", "78", "1", "ok.path", "brand", "2.00", "1", "s"])
    summary = catalog_import_csv(path, progress=False)
    assert Product.objects.filter(external_id="78", price=Decimal("2.00")).exists()
    assert Product.objects.filter(external_id="77").exists() or [line for line, _ in summary.bad_rows] == [2]
