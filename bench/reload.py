"""Reload time over HTTP: requests stream at a running shop (gunicorn, 2+ workers) while the active
version is switched; reports how long until every answer comes from the new version and how many
requests failed. Run against the bench database (bench/recommend_setup.py) with the server up:

    python bench/reload.py http://127.0.0.1:8765
"""
import json
import sys
import threading
import time
import urllib.request

from recommend_setup import ensure  # noqa: I001  (sets up Django)

from catalog.models import Product
from recommendations import registry

URL = (sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8765").rstrip("/")
THREADS = 4


def main():
    a, b = ensure()
    registry.model_activate(a)
    pks = list(Product.objects.filter(external_id__startswith="bench-").values_list("pk", flat=True)[:10])
    body = json.dumps({"items": pks, "k": 6}).encode()
    log: list[tuple[float, str | None, bool]] = []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            req = urllib.request.Request(f"{URL}/api/recommendations/", data=body,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    v = json.load(r)["model_version"]
                    log.append((time.monotonic(), v, r.status == 200))
            except Exception:
                log.append((time.monotonic(), None, False))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(THREADS)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    while not any(v == a.version for _, v, _ in log[-20:]) or time.monotonic() - t0 < 3:
        time.sleep(0.1)
    results = []
    for target in (b, a, b, a):
        t_act = time.monotonic()
        registry.model_activate(target)
        # every process serves it once 40 answers in a row (over both workers) carry the new version
        while True:
            recent = [x for x in log if x[0] > t_act]
            tail = recent[-40:]
            if len(tail) == 40 and all(v == target.version for _, v, _ in tail):
                first_all = next(t for i, (t, _, _) in enumerate(recent)
                                 if all(v == target.version for _, v, _ in recent[i:]))
                results.append(first_all - t_act)
                break
            if time.monotonic() - t_act > 30:
                results.append(float("nan"))
                break
            time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    errors = sum(1 for _, _, ok in log if not ok)
    print(f"{len(log)} requests, {errors} failed; reload times (activation -> all answers new version): "
          + ", ".join(f"{r:.2f} s" for r in results))


if __name__ == "__main__":
    main()
