"""Catalogue services: the functions that change products and categories."""
from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from tqdm import tqdm

from . import cache as catalog_cache
from . import db
from .currencies import currency_code
from .models import Category, Product

_CHUNK = 5000


def catalog_cache_invalidate() -> None:
    """Drop every cached catalogue read (API pages, counts, anchors, category tree): call after changes."""
    catalog_cache.bump()


def products_set_active(product_ids: Iterable[int], active: bool) -> int:
    """Activate or deactivate products; returns how many rows changed."""
    changed = (
        Product.objects.filter(pk__in=list(product_ids))
        .exclude(is_active=active)
        .update(is_active=active, updated=timezone.now())
    )
    if changed:
        catalog_cache_invalidate()
    return changed


def category_ensure_path(path: str, separator: str = ".") -> Category | None:
    """Return the leaf category of a dotted path like ``electronics.audio.headphone``, creating the chain."""
    parts = [p.strip() for p in (path or "").split(separator) if p.strip()]
    parent = None
    slug_parts: list[str] = []
    for part in parts:
        slug_parts.append(slugify(part) or "x")
        slug = "-".join(slug_parts)[:255]
        parent, _ = Category.objects.get_or_create(
            slug=slug, defaults={"name": part.replace("_", " ").title(), "parent": parent}
        )
    return parent


def product_stubs_ensure(
    external_ids: Iterable[str], categories: dict[str, str] | None = None
) -> dict[str, int]:
    """Map external item ids to product pks, creating stub products for ids not in the catalogue.

    Importers of event logs call this for items that have no metadata yet; ``categories`` maps an
    external id to a category path for the stubs. Safe under concurrency (unique external_id,
    ``ignore_conflicts``) and done in chunks so a large log never loads the whole catalogue.
    """
    ids = list(dict.fromkeys(str(x) for x in external_ids))
    categories = categories or {}
    result: dict[str, int] = {}
    category_cache: dict[str, Category | None] = {}

    def category_id(ext: str) -> int | None:
        cat_path = categories.get(ext) or ""
        if cat_path not in category_cache:
            category_cache[cat_path] = category_ensure_path(cat_path) if cat_path else None
        category = category_cache[cat_path]
        return category.pk if category is not None else None

    created = False
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        found, made = db.product_stubs_chunk(chunk, category_id, _stub_slug)
        created = created or made
        result.update(found)
    if created:
        catalog_cache_invalidate()
    return result


_PLAIN_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*\Z")


def _stub_slug(ext: str) -> str:
    low = ext.lower()
    if _PLAIN_ID.match(low):  # what slugify would return anyway, without its Unicode pass (imports
        return f"item-{low}"[:255]  # make ten thousands of these)
    return slugify(f"item-{ext}")[:255] or "item"


# --- CSV import ---------------------------------------------------------------------------------

# Target field -> CSV column. The default fits the REES46 e-commerce event logs
# (event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session).
DEFAULT_IMPORT_MAPPING = {"id": "product_id", "category": "category_code", "brand": "brand", "price": "price"}
IMPORT_FIELDS = ("id", "name", "description", "category", "brand", "price", "currency")
_MAX_PRICE = Decimal("9999999999.99")


@dataclass
class ImportSummary:
    rows: int = 0
    products_seen: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    categories_created: int = 0
    bad_rows: list[tuple[int, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.categories_created)


def import_mapping_parse(text: str | None) -> dict[str, str]:
    """``"id=product_id,category=category_code"`` -> mapping; unset fields keep the default mapping."""
    mapping = dict(DEFAULT_IMPORT_MAPPING)
    for part in (text or "").split(","):
        if not part.strip():
            continue
        target, sep, column = part.partition("=")
        target, column = target.strip(), column.strip()
        if not sep or target not in IMPORT_FIELDS:
            raise ValueError(f"bad mapping {part.strip()!r}: use FIELD=COLUMN with FIELD one of {', '.join(IMPORT_FIELDS)}")
        if column:
            mapping[target] = column
        else:
            mapping.pop(target, None)  # "brand=" unmaps a field
    if "id" not in mapping:
        raise ValueError("the mapping needs id=COLUMN")
    return mapping


def _generated_name(external_id: str, brand: str, category_path: str) -> str:
    leaf = category_path.rsplit(".", 1)[-1].replace("_", " ") if category_path else ""
    words = [w for w in (brand.title() if brand else "", leaf, external_id) if w]
    if len(words) < 2:
        return f"Item {external_id}"
    name = " ".join(words)
    return name[0].upper() + name[1:]  # "Bed 7101454" for a product without a brand


def _parse_row(row: dict, mapping: dict[str, str], header_len: int) -> dict:
    """One CSV row -> clean values for the mapped fields; raises ValueError with a readable reason."""
    if row.get(None):
        raise ValueError(f"{header_len + len(row[None])} columns, the header has {header_len}")
    missing = [column for column in mapping.values() if row.get(column) is None]
    if missing:
        raise ValueError(f"missing column(s) {', '.join(missing)} (short row)")
    values = {target: (row[column] or "").strip() for target, column in mapping.items()}
    nul = [mapping[target] for target, value in values.items() if "\x00" in value]
    if nul:  # PostgreSQL text cannot store NUL: report the row instead of failing the batch
        raise ValueError(f"NUL character in {', '.join(nul)}")
    if not values["id"]:
        raise ValueError(f"empty {mapping['id']}")
    if len(values["id"]) > 64:
        raise ValueError(f"{mapping['id']} longer than 64 characters")
    if "price" in values:
        raw = values["price"]
        try:
            price = Decimal(raw or "0")
        except InvalidOperation:
            raise ValueError(f"{mapping['price']} {raw!r} is not a number") from None
        if not price.is_finite() or price < 0 or price > _MAX_PRICE:
            raise ValueError(f"{mapping['price']} {raw!r} is out of range")
        values["price"] = price.quantize(Decimal("0.01"))
    if "currency" in values:
        raw = values["currency"]
        try:
            # Cutting to the column once stored "<b>X" as "<B>": a code is checked, not trimmed.
            values["currency"] = currency_code(raw) if raw else "EUR"
        except ValueError:
            raise ValueError(f"{mapping['currency']} {raw[:20]!r} is not an ISO 4217 currency code") from None
    if "name" in values:
        values["name"] = values["name"][:255]
    if "brand" in values:
        values["brand"] = values["brand"][:120]
    return values


def _import_flush(batch: dict[str, dict], mapping: dict, categories: dict, currency: str) -> tuple[list, list]:
    """Upsert one batch (external id -> values): create new products, update changed ones, skip the rest.

    Returns the external ids created and updated.
    """
    existing = {p.external_id: p for p in Product.objects.filter(external_id__in=list(batch))}
    now = timezone.now()
    to_create, to_update, update_fields = [], [], set()
    for ext, values in batch.items():
        path = values.get("category", "")
        if "category" in mapping and path not in categories:
            categories[path] = category_ensure_path(path) if path else None
        wanted = {}
        if "category" in mapping:
            category = categories[path]
            wanted["category_id"] = category.pk if category else None
        for name in ("description", "brand", "price", "currency"):
            if name in values:
                wanted[name] = values[name]
        product = existing.get(ext)
        if "name" in values and values["name"]:
            wanted["name"] = values["name"]
        elif product is None or product.name == f"Item {ext}":
            # No name column: a readable generated one for new products and stubs, never over a real name.
            wanted["name"] = _generated_name(ext, values.get("brand", ""), path)
        if "name" in wanted:
            wanted["slug"] = (slugify(wanted["name"]) or "item")[:255]
        if product is None:
            to_create.append(Product(external_id=ext, **{"currency": currency, **wanted}))
            continue
        diff = {k: v for k, v in wanted.items() if getattr(product, k) != v}
        if diff:
            for k, v in diff.items():
                setattr(product, k, v)
            product.updated = now
            update_fields.update(diff)
            to_update.append(product)
    with transaction.atomic():
        if to_create:
            # ignore_conflicts: a concurrent importer (or the event-log stubs) may create the same id.
            Product.objects.bulk_create(to_create, batch_size=_CHUNK, ignore_conflicts=True)
        if to_update:
            Product.objects.bulk_update(to_update, sorted(update_fields | {"updated"}), batch_size=1000)
    return [p.external_id for p in to_create], [p.external_id for p in to_update]


def catalog_import_csv(
    path: str | Path,
    mapping: dict[str, str] | None = None,
    *,
    currency: str = "EUR",
    batch_size: int = _CHUNK,
    progress: bool = True,
    progress_file=None,
) -> ImportSummary:
    """Import a product CSV: one product per distinct id (the last row of an id wins), categories from
    the dotted category path, upserts in bulk (a re-run changes nothing). Bad rows are reported with
    their line number and skipped; the good rows are kept.
    """
    mapping = dict(mapping or DEFAULT_IMPORT_MAPPING)
    try:
        currency = currency_code(currency)
    except ValueError as exc:
        raise ValueError(f"currency of new products: {exc}") from None
    summary = ImportSummary()
    categories_before = Category.objects.count()
    categories: dict[str, Category | None] = {}
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        unknown = [column for column in mapping.values() if column not in header]
        if unknown:
            raise ValueError(f"column(s) {', '.join(unknown)} not in the header ({', '.join(header) or 'empty file'})")
        batch: dict[str, dict] = {}
        # An id can come back in a later batch (event logs): count each product once per run.
        seen: set[str] = set()
        created: set[str] = set()
        updated: set[str] = set()

        def flush():
            new, changed = _import_flush(batch, mapping, categories, currency)
            created.update(new)
            updated.update(changed)

        rows = tqdm(reader, unit=" rows", file=progress_file or sys.stderr, disable=not progress, desc="import")
        for row in rows:
            summary.rows += 1
            try:
                values = _parse_row(row, mapping, len(header))
            except ValueError as exc:
                # reader.line_num is the physical line the row ended on (the header is line 1).
                summary.bad_rows.append((reader.line_num, str(exc)))
                continue
            seen.add(values["id"])
            batch[values["id"]] = values  # the latest row of an id wins
            if len(batch) >= batch_size:
                flush()
                batch = {}
        if batch:
            flush()
    summary.products_seen = len(seen)
    summary.created = len(created)
    summary.updated = len(updated - created)
    summary.unchanged = summary.products_seen - summary.created - summary.updated
    summary.categories_created = Category.objects.count() - categories_before
    if summary.changed:
        catalog_cache_invalidate()
    return summary
