from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from catalog import cache as catalog_cache
from catalog.models import Category, Product
from catalog.services import catalog_import_csv, import_mapping_parse
from catalog.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

REES46 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rees46-head" / "2019-Oct-head.csv"
HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"


def write(tmp_path, text, name="products.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_mapping_parse():
    assert import_mapping_parse("") == {"id": "product_id", "category": "category_code", "brand": "brand", "price": "price"}
    assert import_mapping_parse("id=sku,name=title,brand=") == {
        "id": "sku", "category": "category_code", "price": "price", "name": "title"
    }
    with pytest.raises(ValueError, match="bad mapping 'colour=c'"):
        import_mapping_parse("colour=c")
    with pytest.raises(ValueError, match="needs id"):
        import_mapping_parse("id=")


def test_import_keeps_good_rows_and_reports_bad_ones_with_line_numbers(tmp_path):
    path = write(tmp_path, HEADER + (
        "t,view,1,0,electronics.audio.headphone,sony,10.50,u,s\n"          # line 2
        "t,view,2,0,electronics.audio.headphone,,abc,u,s\n"                 # line 3: bad price
        "t,view,,0,electronics,acme,1,u,s\n"                                # line 4: no id
        "t,view,3,0,kids\n"                                                 # line 5: short row
        "t,view,4,0,kids,acme,1,u,s,extra\n"                                # line 6: extra column
        "t,view,5,0,kids,acme,-1,u,s\n"                                     # line 7: negative price
        't,view,6,0,"kids.toys",lego,"2,5",u,s\n'                           # line 8: comma decimal
        "t,cart,1,0,electronics.audio.headphone,sony,12.00,u,s\n"           # line 9: same id, later price wins
        "t,view,7,0,,,0,u,s\n"                                              # line 10: no category/brand: fine
    ))
    summary = catalog_import_csv(path, progress=False)
    assert summary.bad_rows == [
        (3, "price 'abc' is not a number"),
        (4, "empty product_id"),
        (5, "missing column(s) brand, price (short row)"),
        (6, "10 columns, the header has 9"),
        (7, "price '-1' is out of range"),
        (8, "price '2,5' is not a number"),
    ]
    assert (summary.rows, summary.products_seen, summary.created, summary.updated, summary.unchanged) == (9, 2, 2, 0, 0)
    assert summary.categories_created == 3
    p1 = Product.objects.get(external_id="1")
    assert (p1.name, p1.slug, p1.price, p1.brand, p1.category.slug) == (
        "Sony headphone 1", "sony-headphone-1", Decimal("12.00"), "sony", "electronics-audio-headphone"
    )
    p7 = Product.objects.get(external_id="7")
    assert (p7.name, p7.price, p7.category, p7.currency) == ("Item 7", Decimal("0.00"), None, "EUR")


def test_reimport_changes_nothing_and_updates_only_what_changed(tmp_path):
    text = HEADER + "t,view,1,0,a.b,acme,1.00,u,s\nt,view,2,0,a,zeta,2.00,u,s\n"
    catalog_import_csv(write(tmp_path, text), progress=False)
    before = {p.external_id: p.updated for p in Product.objects.all()}
    version = catalog_cache.version()
    again = catalog_import_csv(write(tmp_path, text), progress=False)
    assert (again.created, again.updated, again.unchanged, again.categories_created) == (0, 0, 2, 0)
    assert {p.external_id: p.updated for p in Product.objects.all()} == before
    assert catalog_cache.version() == version  # nothing changed: caches stay valid
    changed = catalog_import_csv(write(tmp_path, HEADER + "t,view,1,0,a.b,acme,1.50,u,s\n"), progress=False)
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 0)
    assert Product.objects.get(external_id="1").price == Decimal("1.50")
    assert catalog_cache.version() != version


def test_import_does_not_rename_real_products_but_names_stubs(tmp_path):
    ProductFactory(external_id="1", name="Hand-written name")
    ProductFactory(external_id="2", name="Item 2")
    summary = catalog_import_csv(write(tmp_path, HEADER + "t,v,1,0,x,acme,1,u,s\nt,v,2,0,x,acme,1,u,s\n"), progress=False)
    assert summary.updated == 2
    assert list(Product.objects.order_by("external_id").values_list("name", flat=True)) == ["Hand-written name", "Acme x 2"]


def test_custom_mapping_with_names_and_small_batches(tmp_path):
    path = write(tmp_path, "sku,title,cat,cost,cur\nA,Red lamp,home.light,5,usd\nB,Blue lamp,home.light,6,usd\nA,Red lamp XL,home.light,7,usd\n")
    summary = catalog_import_csv(
        path, import_mapping_parse("id=sku,name=title,category=cat,price=cost,currency=cur,brand="),
        batch_size=1, progress=False,
    )
    assert (summary.rows, summary.products_seen, summary.created, summary.updated, summary.unchanged) == (3, 2, 2, 0, 0)
    assert list(Product.objects.order_by("external_id").values_list("external_id", "name", "price", "currency")) == [
        ("A", "Red lamp XL", Decimal("7.00"), "USD"), ("B", "Blue lamp", Decimal("6.00"), "USD")
    ]


def test_unknown_column_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="column\\(s\\) sku not in the header"):
        catalog_import_csv(write(tmp_path, HEADER), {"id": "sku"}, progress=False)


def test_command_prints_bad_rows_and_summary(tmp_path, capsys):
    path = write(tmp_path, HEADER + "t,v,1,0,a,acme,1,u,s\nt,v,2,0,a,acme,x,u,s\n")
    call_command("import_catalog", str(path), "--no-progress")
    out, err = capsys.readouterr()
    assert out.strip() == (
        "2 rows, 1 distinct products: 1 created, 0 updated, 0 unchanged; 1 categories created; 1 bad rows skipped"
    )
    assert err.strip() == "line 3: price 'x' is not a number (skipped)"
    with pytest.raises(CommandError, match="missing.csv: no such file"):
        call_command("import_catalog", str(tmp_path / "missing.csv"), "--no-progress")
    with pytest.raises(CommandError, match="bad mapping"):
        call_command("import_catalog", str(path), "--map", "oops")


@pytest.mark.skipif(not REES46.is_file(), reason=f"REES46 sample not present at {REES46}")
def test_import_rees46_head_then_rerun_changes_nothing():
    summary = catalog_import_csv(REES46, progress=False)
    assert (summary.rows, summary.products_seen, summary.created, summary.updated, summary.bad_rows) == (
        17435, 6493, 6493, 0, []
    )
    assert summary.categories_created == Category.objects.count() == 148
    assert Product.objects.count() == 6493
    heater = Product.objects.get(external_id="3900821")
    assert (heater.name, heater.brand, heater.category.slug) == (
        "Aqua water heater 3900821", "aqua", "appliances-environment-water_heater"
    )
    again = catalog_import_csv(REES46, progress=False)
    assert (again.created, again.updated, again.unchanged, again.categories_created) == (0, 0, 6493, 0)


def test_currency_must_be_an_iso_4217_code(tmp_path, capsys):
    """'<b>X' was cut and upper-cased to '<B>' and stored; now every code is checked, with the line."""
    path = write(tmp_path, "sku,cur\nA,usd\nB,<b>X\nC,XYZ\nD,eu\nE, gbp \nF,\nG,€UR\nH,EURO\n")
    summary = catalog_import_csv(path, import_mapping_parse("id=sku,currency=cur,category=,brand=,price="),
                                 progress=False)
    assert summary.bad_rows == [
        (3, "cur '<b>X' is not an ISO 4217 currency code"),
        (4, "cur 'XYZ' is not an ISO 4217 currency code"),
        (5, "cur 'eu' is not an ISO 4217 currency code"),
        (8, "cur '€UR' is not an ISO 4217 currency code"),
        (9, "cur 'EURO' is not an ISO 4217 currency code"),
    ]
    assert list(Product.objects.order_by("external_id").values_list("external_id", "currency")) == [
        ("A", "USD"), ("E", "GBP"), ("F", "EUR"),
    ]
    call_command("import_catalog", str(path), "--map", "id=sku,currency=cur,category=,brand=,price=", "--no-progress")
    assert capsys.readouterr().err.splitlines()[0] == "line 3: cur '<b>X' is not an ISO 4217 currency code (skipped)"
    with pytest.raises(CommandError, match="currency of new products: '<b>X' is not an ISO 4217 currency code"):
        call_command("import_catalog", str(path), "--currency", "<b>X", "--no-progress")
