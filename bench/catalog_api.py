"""Benchmark: products API and storefront pages over a 1,000,000-product catalogue in PostgreSQL.

    .venv/bin/python bench/catalog_api.py [--products 1000000] [--samples 60]

Uses its own database (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/shop_bench): creates it,
migrates it and fills it with COPY the first time (indexes dropped during the load, rebuilt after).
Requests go through Django's test client in process (the full middleware and view stack, no network).
Prints a table of p50/p95 per case; each case runs after a warm-up, so it measures the steady state
(cached count and anchors) -- the one-off cost after a catalogue change is printed separately.
"""
from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shop_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/5")
os.environ.setdefault("CACHE_KEY_PREFIX", "shop-bench")
os.environ.setdefault("THROTTLE_ANON", "100000000/min")  # the bench is one client hammering the API
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

import psycopg2  # noqa: E402
from psycopg2 import sql as pgsql  # noqa: E402

WORDS = ["Studio", "Wireless", "Sport", "Classic", "Compact", "Pro", "Max", "Lite", "Ultra", "Eco", "Smart", "Mini"]
NOUNS = ["headphones", "phone", "notebook", "grinder", "runner", "jacket", "sofa", "bike", "lamp", "kettle", "watch"]
BRANDS = ["acme", "nordic", "vertex", "lumen", "orbit", "kestrel", "sola", "tundra", "zephyr", "quartz"]


def database_ensure(url: str) -> None:
    import environ

    cfg = environ.Env.db_url_config(url)
    conn = psycopg2.connect(host=cfg["HOST"], port=cfg["PORT"] or 5432, user=cfg["USER"], dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [cfg["NAME"]])
        if not cur.fetchone():
            cur.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(cfg["NAME"])))
            print(f"created database {cfg['NAME']}", file=sys.stderr)
    conn.close()


class _Rows(io.RawIOBase):
    """A file-like stream of COPY text rows generated on the fly (never the whole catalogue in memory)."""

    def __init__(self, lines):
        self._lines, self._buffer = lines, b""

    def readable(self):
        return True

    def readinto(self, b):
        while len(self._buffer) < len(b):
            chunk = "".join(line for _, line in zip(range(2000), self._lines))
            if not chunk:
                break
            self._buffer += chunk.encode()
        n = min(len(b), len(self._buffer))
        b[:n], self._buffer = self._buffer[:n], self._buffer[n:]
        return n


def catalogue_fill(n_products: int) -> None:
    from django.db import connection

    from catalog.models import Category, Product
    from catalog.services import catalog_cache_invalidate, category_ensure_path

    have = Product.objects.count()
    if have >= n_products:
        print(f"shop_bench already holds {have} products", file=sys.stderr)
        return
    leaves = []
    for root in ["electronics", "appliances", "apparel", "furniture", "sport", "kids", "garden", "auto", "books", "beauty"]:
        for mid in ["alpha", "beta", "gamma", "delta"]:
            for leaf in ["one", "two", "three", "four"]:
                leaves.append(category_ensure_path(f"{root}.{mid}.{leaf}").pk)
    rng = random.Random(1)
    start = have

    def lines():
        now = "2026-01-01 00:00:00+00"
        for i in range(start, n_products):
            name = f"{rng.choice(BRANDS).title()} {rng.choice(WORDS)} {rng.choice(NOUNS)} {i}"
            active = "f" if i % 100 == 99 else "t"
            yield (f"bench-{i}\t{name}\t{name.lower().replace(' ', '-')}\t\t{rng.randrange(100, 200000) / 100:.2f}\tEUR\t"
                   f"{leaves[i % len(leaves)]}\t{rng.choice(BRANDS)}\t{active}\t{now}\t{now}\n")

    with connection.cursor() as cur:
        cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'catalog_product' "
                    "AND indexname NOT LIKE '%%pkey' AND indexdef NOT LIKE 'CREATE UNIQUE%%'")
        indexes = cur.fetchall()
        t0 = time.perf_counter()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        cur.cursor.copy_expert(
            "COPY catalog_product (external_id, name, slug, description, price, currency, category_id, brand, "
            "is_active, created, updated) FROM STDIN",
            io.BufferedReader(_Rows(lines()), buffer_size=1 << 20),
        )
        t1 = time.perf_counter()
        print(f"COPY {n_products - start} products: {t1 - t0:.1f} s", file=sys.stderr)
        cur.execute("SET maintenance_work_mem = '256MB'")
        for _, definition in indexes:
            cur.execute(definition)
        print(f"rebuilt {len(indexes)} indexes: {time.perf_counter() - t1:.1f} s", file=sys.stderr)
    with connection.cursor() as cur:  # autocommit: VACUUM cannot run in a transaction
        cur.execute("VACUUM ANALYZE catalog_product")
    catalog_cache_invalidate()
    print(f"categories: {Category.objects.count()}", file=sys.stderr)


def measure(client, url_for, samples: int, warmup: int = 5):
    for i in range(warmup):
        response = client.get(url_for(-1 - i))
        assert response.status_code == 200, (url_for(-1), response.status_code, response.content[:300])
    times, cpu = [], []
    for i in range(samples):
        url = url_for(i)
        t0, c0 = time.perf_counter(), time.process_time()
        response = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], times[-1], statistics.median(cpu)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=60)
    args = parser.parse_args()

    database_ensure(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    catalogue_fill(args.products)

    from catalog import pagination
    from catalog.models import Product
    from catalog.selectors import product_list
    from catalog.services import catalog_cache_invalidate

    client = Client()
    count = product_list().count()
    size = 24
    last_page = (count + size - 1) // size
    mid_page = last_page // 2
    last_100 = (count + 99) // 100
    some = Product.objects.filter(is_active=True).order_by("-id").values_list("id", flat=True)[:1][0]

    # One-off costs right after a catalogue change (count + anchors computed again), then cached.
    catalog_cache_invalidate()
    t0 = time.perf_counter()
    client.get("/api/products/?page=1")
    cold_first = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    client.get(f"/api/products/?page={last_page - 1}")
    cold_deep = (time.perf_counter() - t0) * 1000

    # `_=` makes every request a response-cache miss while count and anchors stay cached:
    # this is the real query cost, not a Redis read.
    cases = [
        ("API page 1 (response cache miss)", lambda i: f"/api/products/?page=1&_={i}"),
        ("API page 1 (response cache hit)", lambda i: "/api/products/?page=1"),
        ("API page 1 (cache miss, page_size=100)", lambda i: f"/api/products/?page=1&page_size=100&_={i}"),
        (f"API page {last_page - 1} near the end (miss)", lambda i: f"/api/products/?page={last_page - 1}&_={i}"),
        (f"API last page {last_page} (miss)", lambda i: f"/api/products/?page={last_page}&_={i}"),
        (f"API middle page {mid_page} (miss)", lambda i: f"/api/products/?page={mid_page}&_={i}"),
        (f"API page {last_100 - 1}, page_size=100 (miss)",
         lambda i: f"/api/products/?page={last_100 - 1}&page_size=100&_={i}"),
        ("API category=electronics page 1 (miss)", lambda i: f"/api/products/?category=electronics&_={i}"),
        ("API ordering=-price page 1 (miss)", lambda i: f"/api/products/?ordering=-price&_={i}"),
        ("API search=kettle page 1 (miss)", lambda i: f"/api/products/?search=kettle&_={i}"),
        ("Index / page 1", lambda i: "/"),
        (f"Index /?page={last_page - 1} near the end", lambda i: f"/?page={last_page - 1}"),
        ("Index /?category=electronics", lambda i: "/?category=electronics"),
        ("Product page /products/<id>/", lambda i: f"/products/{some}/"),
    ]
    print(f"\nload average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (shared machine)")
    print(f"{count:,} active products (of {Product.objects.count():,}); page_size 24 -> {last_page:,} pages; "
          f"anchor every {pagination.ANCHOR_EVERY} rows; {args.samples} samples per case\n")
    # cpu: this process's CPU time per request (p50): what a request costs in Python, whatever the
    # machine's load; the wall figures include waiting for the CPU, PostgreSQL and Redis.
    print(f"{'case':<46} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'cpu ms':>8}")
    print("-" * 82)
    for label, url_for in cases:
        p50, p95, worst, cpu = measure(client, url_for, args.samples)
        print(f"{label:<46} {p50:8.1f} {p95:8.1f} {worst:8.1f} {cpu:8.1f}")
    print("-" * 82)
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"one-off after a catalogue change: page 1 {cold_first:.0f} ms (COUNT), "
          f"page {last_page - 1} {cold_deep:.0f} ms (anchors)")


if __name__ == "__main__":
    main()
