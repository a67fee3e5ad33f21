"""Where the catalogue's SQL differs between PostgreSQL (make test, make serve) and SQLite (make demo):
the stub products importers of event logs create by the thousand."""
from __future__ import annotations

from collections.abc import Callable

from django.db import connection, transaction
from django.utils import timezone

from .models import Product


def product_stubs_chunk(chunk: list[str], category_id: Callable[[str], int | None],
                        slug: Callable[[str], str]) -> tuple[dict[str, int], bool]:
    """One chunk of ``services.product_stubs_ensure``: {external id: pk} for every id of ``chunk``,
    creating stubs ("Item <id>", the model's defaults) for unknown ones, and whether any were
    created. Safe under concurrency: the unique external_id decides, a parallel stub is read back."""
    if connection.vendor == "postgresql":
        return _product_stubs_postgres(chunk, category_id, slug)
    found = dict(Product.objects.filter(external_id__in=chunk).values_list("external_id", "pk"))
    missing = [x for x in chunk if x not in found]
    if not missing:
        return found, False
    stubs = [Product(external_id=ext, name=f"Item {ext}", slug=slug(ext), category_id=category_id(ext))
             for ext in missing]
    with transaction.atomic():
        Product.objects.bulk_create(stubs, ignore_conflicts=True, batch_size=len(stubs))
    found.update(Product.objects.filter(external_id__in=missing).values_list("external_id", "pk"))
    return found, True


def _product_stubs_postgres(chunk: list[str], category_id, slug) -> tuple[dict[str, int], bool]:
    """Set-based: one SELECT of the known ids, and one ``INSERT ... SELECT FROM unnest(...) ON
    CONFLICT (external_id) DO NOTHING RETURNING`` for the rest (a stub created concurrently is then
    read back), instead of one model object per stub."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT external_id, id FROM catalog_product WHERE external_id = ANY(%s)", [chunk])
        found = dict(cursor.fetchall())
        missing = [x for x in chunk if x not in found]
        if not missing:
            return found, False
        now = timezone.now()
        cursor.execute(
            "INSERT INTO catalog_product (external_id, name, slug, description, price, currency, brand, is_active, "
            "created, updated, category_id) "
            "SELECT ext, 'Item ' || ext, slug, '', 0, 'EUR', '', true, %s, %s, cat "
            "FROM unnest(%s::varchar[], %s::varchar[], %s::bigint[]) AS s(ext, slug, cat) "
            "ON CONFLICT (external_id) DO NOTHING RETURNING external_id, id",
            [now, now, missing, [slug(x) for x in missing], [category_id(x) for x in missing]],
        )
        found.update(cursor.fetchall())
        if len(found) < len(chunk):  # created by a concurrent transaction meanwhile
            rest = [x for x in chunk if x not in found]
            cursor.execute("SELECT external_id, id FROM catalog_product WHERE external_id = ANY(%s)", [rest])
            found.update(cursor.fetchall())
    return found, True
