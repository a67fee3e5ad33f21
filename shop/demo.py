"""Demo data for `make demo`: a generated catalogue so a newcomer sees a working shop at once, or a
real data set (``make demo DATA=rees46``: products, categories, brands, prices and shopper sessions)."""
from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils.text import slugify

from catalog.models import Category, Product
from catalog.services import catalog_cache_invalidate, catalog_import_csv, category_ensure_path

# `make demo DATA=NAME`: short names of the shared data sets, relative to the project root.
DEMO_DATASETS = {
    "rees46": "../shared/data/rees46-head/2019-Oct-head.csv",
    "yoochoose": "../shared/data/yoochoose-week/yoochoose-clicks-week.dat",
}
# REES46 prices carry no currency; the store's are US dollars in its published descriptions.
REES46_CURRENCY = "USD"
_CATALOGUE_COLUMNS = {"product_id", "category_code", "brand", "price"}
_GENERATED_PREFIX = "demo-"


class DemoDataError(ValueError):
    """An unknown data set name, a missing file, or a database that holds another data set."""


@dataclass(frozen=True)
class DemoData:
    name: str  # the short name, or the file's stem for DEMO_DATA=path
    path: Path
    has_catalogue: bool  # product columns (REES46): names, categories, brands, prices; else stubs

    @property
    def label(self) -> str:
        return self.name if self.name in DEMO_DATASETS else str(self.path)


def _has_catalogue(path: Path) -> bool:
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        header = next(csv.reader(handle), [])
    return _CATALOGUE_COLUMNS <= {column.strip() for column in header}


def demo_data_resolve(name: str = "", path: str = "") -> DemoData | None:
    """The data set a demo is built from: ``name`` (``DATA``, one of ``DEMO_DATASETS``) or ``path``
    (``DEMO_DATA``); None for the generated demo. Raises :class:`DemoDataError` with one line that
    says what to do for an unknown name or a missing file."""
    name, path = (name or "").strip(), (path or "").strip()
    if name:
        if name not in DEMO_DATASETS:
            raise DemoDataError(f"DATA={name}: unknown data set; use DATA={' or DATA='.join(DEMO_DATASETS)}, "
                                "DEMO_DATA=path for another event file, or neither for generated data")
        file = (Path(settings.BASE_DIR) / DEMO_DATASETS[name]).resolve()
        if not file.is_file():
            raise DemoDataError(f"DATA={name}: {file} not found (the shared data sets live in ../shared/data)")
    elif path:
        file = Path(path).expanduser().resolve()
        if not file.is_file():
            raise DemoDataError(f"DEMO_DATA={path}: no such file; point it at an event file or leave it unset "
                                "for generated sessions")
        name = file.stem
    else:
        return None
    return DemoData(name=name, path=file, has_catalogue=_has_catalogue(file))


def _database_check(data: DemoData | None) -> None:
    """Refuse to mix generated demo products with a real data set's in one database."""
    generated = Product.objects.filter(external_id__startswith=_GENERATED_PREFIX).exists()
    if data is not None and generated:
        raise DemoDataError(
            f"this database holds the generated demo catalogue; a real data set gets its own database: run "
            f"`make demo DATA={data.name}` (var/demo-{data.name}.sqlite3), or delete the database and run again")
    if data is None and not generated and Product.objects.exists():
        raise DemoDataError("this database holds a real data set's products, not the generated demo; run "
                            "`make demo` without DATA/DEMO_DATA on its own database (var/db.sqlite3)")

DEMO_CATEGORIES = {
    "electronics.audio.headphones": ["Studio", "Wireless", "Noise-cancelling", "Sport", "Kids"],
    "electronics.smartphone": ["Phone", "Phone Pro", "Phone Mini", "Phone Max", "Phone Lite"],
    "electronics.computers.notebook": ["Notebook", "Ultrabook", "Gaming laptop", "Chromebook"],
    "appliances.kitchen.coffee": ["Espresso machine", "Grinder", "Drip brewer", "Milk frother"],
    "apparel.shoes.running": ["Runner", "Trail shoe", "Racer", "Daily trainer"],
    "apparel.jackets": ["Rain jacket", "Down jacket", "Softshell", "Windbreaker"],
    "furniture.living_room.sofa": ["Sofa", "Corner sofa", "Armchair", "Footstool"],
    "sport.bicycle": ["City bike", "Road bike", "Gravel bike", "E-bike"],
}
BRANDS = ["acme", "nordic", "vertex", "lumen", "orbit", "kestrel", "sola", "tundra"]


def demo_catalogue_generate(n_products: int = 600, seed: int = 7) -> int:
    """Create ``n_products`` demo products spread over the demo categories; returns how many were added."""
    if Product.objects.exists():
        return 0
    rng = random.Random(seed)
    leaves = [(category_ensure_path(path), names) for path, names in DEMO_CATEGORIES.items()]
    products = []
    for i in range(n_products):
        category, names = leaves[i % len(leaves)]
        brand = rng.choice(BRANDS)
        name = f"{brand.title()} {rng.choice(names)} {100 + i}"
        products.append(
            Product(
                external_id=f"{_GENERATED_PREFIX}{i + 1}",
                name=name,
                slug=slugify(name)[:255],
                description=f"{name}: a demo product in {category.name}, made by {brand.title()}.",
                price=Decimal(rng.randrange(500, 150000)) / 100,
                category=category,
                brand=brand,
            )
        )
    with transaction.atomic():
        Product.objects.bulk_create(products, batch_size=1000)
    # bulk_create bypasses the services: drop cached API pages and counts explicitly.
    catalog_cache_invalidate()
    return len(products)


def _is_terminal(stdout) -> bool:
    return bool(stdout is not None and getattr(stdout, "isatty", lambda: False)())


def demo_setup(stdout=None, data: DemoData | None = None) -> dict:
    """Everything `make demo` needs on the embedded default; a second run reuses what exists.

    ``data`` (see ``demo_data_resolve``): a real data set instead of the generated catalogue and
    sessions; its products come from the file when it has product columns (REES46), else they are
    stubs named by their id. Progress bars only when ``stdout`` is a terminal."""
    _database_check(data)
    progress = _is_terminal(stdout)

    def say(msg):
        if stdout is not None:
            stdout.write(msg)

    if data is None:
        added = demo_catalogue_generate()
        source = "generated"
    elif data.has_catalogue:
        imported = catalog_import_csv(data.path, currency=REES46_CURRENCY, progress=progress)
        added = imported.created
        source = f"from {data.label}"
    else:
        added = 0
        source = f"from {data.label}: product stubs named by their id (the file has no product data)"
    summary = {"products_added": added, "products": Product.objects.count(), "categories": Category.objects.count(),
               "data": data.label if data else "generated"}
    say(f"demo catalogue: {summary['products']} products in {summary['categories']} categories"
        f" ({added} added now; {source})")
    # why: the recommender's demo pulls pandas and torch; only `make demo` needs them here
    from recommendations.demo import demo_model_ensure

    summary["recommendations"] = demo_model_ensure(
        stdout=stdout, data_path=str(data.path) if data else "", progress=progress)
    return summary
