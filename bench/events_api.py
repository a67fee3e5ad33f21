"""Benchmark: POST /api/events/ with batches of 100 events (in-process Django test client, PostgreSQL).

    .venv/bin/python bench/events_api.py [--requests 300] [--batch 100] [--database-url URL]

Prints p50/p95/p99 latency in milliseconds and events/s (request handling, validation and the
insert; no network).
"""
import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _django import reset_tracking, setup  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/shop_bench_events"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args()
    setup(args.database_url)
    reset_tracking()
    from django.test import Client

    from catalog.models import Product

    Product.objects.bulk_create(
        [Product(external_id=f"B{i}", name=f"Bench {i}", slug=f"bench-{i}") for i in range(1000)]
    )
    ids = list(Product.objects.values_list("pk", flat=True))
    client = Client()
    types = ["impression"] * 6 + ["view", "click", "add_to_cart", "impression"]
    latencies = []
    sessions = [str(uuid.uuid4()) for _ in range(20)]
    for r in range(args.requests + 20):
        events = [
            {"type": types[i % len(types)], "product": ids[(r * 7 + i) % len(ids)], "source": "grid",
             "position": i, "model_version": "gru4rec-bench", "timestamp": "2025-01-01T10:00:00Z"}
            for i in range(args.batch)
        ]
        body = json.dumps({"session": sessions[r % len(sessions)], "events": events})
        t = time.perf_counter()
        response = client.post("/api/events/", data=body, content_type="application/json")
        elapsed = (time.perf_counter() - t) * 1000
        assert response.status_code == 201, response.content
        if r >= 20:  # warm-up
            latencies.append(elapsed)
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))]  # noqa: E731
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"POST /api/events/ x {len(latencies)} requests of {args.batch} events: "
          f"p50 {statistics.median(latencies):.1f} ms, p95 {q(0.95):.1f} ms, p99 {q(0.99):.1f} ms, "
          f"{args.batch * len(latencies) / (sum(latencies) / 1000):,.0f} events/s")


if __name__ == "__main__":
    main()
