"""A scripted shopper mix for `make stress`: browse, view products, impressions and clicks through the
events API, recommendations, add to cart, checkout.

Every write the server accepts is written to a ledger (``STRESS_LEDGER``, JSON lines) so that the
orchestrator can check afterwards that each accepted event and order is in the database.
"""
import json
import os
import random
import re
import threading
import time
import uuid

from locust import HttpUser, between, events, task

LEDGER_PATH = os.environ.get("STRESS_LEDGER", "var/reports/stress-ledger.jsonl")
_ledger_lock = threading.Lock()
_ledger = None
VISIT_RE = re.compile(r'visitId: "([0-9a-f-]{36})"')
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def ledger(record: dict) -> None:
    global _ledger
    with _ledger_lock:
        if _ledger is None:
            os.makedirs(os.path.dirname(LEDGER_PATH) or ".", exist_ok=True)
            _ledger = open(LEDGER_PATH, "a", buffering=1)
        _ledger.write(json.dumps(record) + "\n")


@events.test_stop.add_listener
def _close_ledger(**kwargs):
    with _ledger_lock:
        if _ledger is not None:
            _ledger.flush()


class Shopper(HttpUser):
    wait_time = between(0.05, 0.3)

    def on_start(self):
        self.visit = None
        self.product_ids: list[int] = []
        self.seen: list[int] = []
        page = self.client.get("/", name="page: index")
        self._remember(page.text)
        listing = self.client.get("/api/products/?page_size=48", name="api: products").json()
        self.product_ids = [p["id"] for p in listing.get("results", [])] or [1]

    def _remember(self, html: str) -> None:
        match = VISIT_RE.search(html or "")
        if match:
            self.visit = match.group(1)

    def _csrf(self) -> str:
        return self.client.cookies.get("csrftoken", "")

    @task(6)
    def browse(self):
        page = random.randint(1, 20)
        self.client.get(f"/?page={page}", name="page: index ?page")
        res = self.client.get(f"/api/products/?page={page}&page_size=24", name="api: products ?page")
        if res.ok:
            ids = [p["id"] for p in res.json().get("results", [])]
            if ids:
                self.product_ids = ids
                self._impressions(ids[:8], source="grid")

    @task(8)
    def view_product(self):
        pid = random.choice(self.product_ids)
        res = self.client.get(f"/products/{pid}/?src=grid", name="page: product")
        self._remember(res.text)
        self.seen.append(pid)
        self._events([{"type": "click", "product": pid, "source": "grid", "position": random.randint(0, 23)}])

    @task(5)
    def recommendations(self):
        if not self.visit:
            return
        res = self.client.get(f"/api/recommendations/?session={self.visit}&k=6", name="api: recommendations")
        if res.ok:
            body = res.json()
            items = [it["product"]["id"] for it in body.get("items", [])]
            if items:
                version = body.get("model_version") or ""
                pos = random.randrange(len(items))
                self._events([
                    {"type": "impression", "product": p, "source": "recommended", "position": i,
                     "model_version": version} for i, p in enumerate(items)
                ] + [{"type": "click", "product": items[pos], "source": "recommended", "position": pos,
                      "model_version": version}])

    @task(2)
    def add_to_cart(self):
        pid = random.choice(self.seen or self.product_ids)
        self.client.post(f"/cart/add/{pid}/", data={"quantity": 1, "csrfmiddlewaretoken": self._csrf()},
                         headers={"Referer": self.host + "/"}, name="form: cart add")

    @task(1)
    def checkout(self):
        if not self.seen:
            return
        pid = random.choice(self.seen)
        self.client.post(f"/cart/add/{pid}/", data={"quantity": 1, "csrfmiddlewaretoken": self._csrf()},
                         headers={"Referer": self.host + "/"}, name="form: cart add")
        with self.client.post("/checkout/", data={"name": "Stress Shopper", "email": "stress@example.com",
                                                   "csrfmiddlewaretoken": self._csrf()},
                              headers={"Referer": self.host + "/checkout/"}, name="form: checkout",
                              catch_response=True) as res:
            match = re.search(r"/orders/(\d+)/", res.url or "")
            if res.ok and match:
                ledger({"kind": "order", "order": int(match.group(1)), "t": time.time()})
                res.success()
            else:
                res.failure(f"checkout did not place an order (status {res.status_code}, url {res.url})")

    def _impressions(self, ids, source):
        self._events([{"type": "impression", "product": p, "source": source, "position": i} for i, p in enumerate(ids)])

    def _events(self, batch):
        if not self.visit:
            self.visit = str(uuid.uuid4())
        with self.client.post("/api/events/", json={"session": self.visit, "events": batch},
                              headers={"X-CSRFToken": self._csrf(), "Referer": self.host + "/"},
                              name="api: events", catch_response=True) as res:
            if res.status_code == 201:
                ledger({"kind": "events", "visit": self.visit, "count": len(batch), "t": time.time()})
                res.success()
            else:
                res.failure(f"events rejected: {res.status_code} {res.text[:200]}")
