#!/usr/bin/env bash
# HTTP latency of GET /api/recommendations/ vs the same server's cheapest DRF endpoint, with wrk:
# gunicorn 2 workers, PostgreSQL, Redis, 30 s, 32 connections, loopback only; then the reload bench
# and the workers' RSS. The first GET names a visit with a 10-item history (bench/recommend_setup.py):
# the history query, then the model's answer (after the first request, from the loaded model's
# answer cache: the same question asked again, as a page's block, a reload or the next page asks);
# the second GET 20,000 visits in turn, each with its own history (a new question every request:
# the model scores each time); the third an unknown visit (the popular fallback). MODEL_DIR must be
# absolute (the setup runs in bench/). RECOMMEND_ANSWER_CACHE=0 turns the answer cache off.
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/shop_h6_bench REDIS_URL=redis://127.0.0.1:6379/6 \
#   MODEL_DIR=$PWD/var/bench-models [KIND=hybrid] bash bench/recommend_http.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PORT=${PORT:-8765}
DURATION=${DURATION:-30s}
# UserRateThrottle also keys anonymous clients (by IP): lift both rates for the single load client.
# Per second, not per minute: DRF keeps every request of the window in one pickled list per key,
# read and written on each request, so a minute window grew to ~20,000 entries (300 KB of pickle
# per request, per throttle) and the run after /api/categories/ inherited its history. A second's
# window holds at most a second of requests, as a real client's minute window holds <= 600.
export DJANGO_SETTINGS_MODULE=shop.settings THROTTLE_ANON=1000000/s THROTTLE_USER=1000000/s TORCH_NUM_THREADS=1 LOG_LEVEL=WARNING
# Production mode, as deployed (DEBUG off: no per-query logging); plain HTTP on loopback, so no
# redirect to HTTPS (a deployment has TLS in front and sets X-Forwarded-Proto).
export DJANGO_DEBUG=${DJANGO_DEBUG:-false} SECRET_KEY=${SECRET_KEY:-bench-only-$(head -c 24 /dev/urandom | base64)} \
  ALLOWED_HOSTS=${ALLOWED_HOSTS:-127.0.0.1,localhost} SECURE_SSL_REDIRECT=${SECURE_SSL_REDIRECT:-false}
(cd bench && "../$PY" recommend_setup.py >/dev/null)
# KIND=hybrid: the 40k-item hybrid (bench/recommend_setup.py hybrid_ensure) is the active model.
KIND=${KIND:-gru4rec}
VISIT=$("$PY" -c "import sys; sys.path.insert(0,'bench'); from recommend_setup import bench_visit, ensure, hybrid_ensure; from recommendations import registry; registry.model_activate(hybrid_ensure() if '$KIND' == 'hybrid' else ensure()[0]); print(bench_visit())" | tail -1)
NEW_VISIT=$("$PY" -c "import uuid; print(uuid.uuid4())")
# 2 x VISITS distinct visits with their own 10-item histories (bench/recommend_setup.py bench_visits),
# asked in turn: every request a question no worker answered before, while the run asks fewer
# than VISITS (more than two workers' answer caches, RECOMMEND_ANSWER_CACHE each, hold). The first
# VISITS, unmeasured, warm each worker as a running shop is warm: its product cache reads the
# catalogue's rows whole on the first lookup, and builds a product object and its JSON the first
# time one is answered; the second VISITS are measured.
VISITS=${VISITS:-20000}
"$PY" -c "import sys; sys.path.insert(0,'bench'); from recommend_setup import bench_visits; print('\n'.join(bench_visits(2 * $VISITS)))" | tail -n "$((2 * VISITS))" > /tmp/rec_visits_all.txt
head -n "$VISITS" /tmp/rec_visits_all.txt > /tmp/rec_visits_warm.txt
tail -n "$VISITS" /tmp/rec_visits_all.txt > /tmp/rec_visits.txt
# EXPERIMENT=ab: an A/B experiment of the two 40k-item GRU4Rec versions runs on "Recommended for
# you" while the server is measured (stopped on exit); the bench visit is in one of its arms.
EXPERIMENT=${EXPERIMENT:-}
exp_stop() { :; }
if [ "$EXPERIMENT" = ab ]; then
  EXP=$("$PY" -c "
import sys, time; sys.path.insert(0, 'bench'); from recommend_setup import ensure
from recommendations import experimenting; from recommendations.models import Experiment
for old in Experiment.objects.filter(status=Experiment.Status.RUNNING, surface='recommended'): experimenting.experiment_stop(old)
a, b = ensure()
exp = experimenting.experiment_start(experimenting.experiment_create(name=f'http bench {time.time():.0f}', surface='recommended',
    arms=[experimenting.ArmInput('a', a, 0.5), experimenting.ArmInput('b', b, 0.5)]))
print(exp.pk)" | tail -1)
  echo "== experiment $EXP running (A/B of bench-40k-a and bench-40k-b on recommended)"
  exp_stop() { "$PY" -c "import django; django.setup(); from recommendations import experimenting; from recommendations.models import Experiment; experimenting.experiment_stop(Experiment.objects.get(pk=$EXP))"; }
fi
.venv/bin/gunicorn shop.wsgi -w 2 -b 127.0.0.1:$PORT --access-logfile /dev/null --log-level warning &
GPID=$!
trap 'kill $GPID; exp_stop' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/api/categories/" >/dev/null && break; sleep 0.3; done
PK=$("$PY" -c "import django; django.setup(); from catalog.models import Product; print(Product.objects.filter(external_id='bench-7').values_list('pk', flat=True)[0])")
# warm both workers (model load) before measuring
for _ in $(seq 20); do curl -sf "http://127.0.0.1:$PORT/api/recommendations/?session=$VISIT&k=6" >/dev/null; done
cat > /tmp/rec_post.lua <<LUA
wrk.method = "POST"
wrk.body = '{"items": [$PK], "k": 6}'
wrk.headers["Content-Type"] = "application/json"
response = function(status, headers, body)
  if status ~= 200 and not shown then shown = true; io.stderr:write("first non-200: ", status, " ", body:sub(1, 200), "\n") end
end
LUA
cat > /tmp/rec_status.lua <<'LUA'
-- report the first non-200 answer, so an error rate is explained, not just counted
response = function(status, headers, body)
  if status ~= 200 and not shown then shown = true; io.stderr:write("first non-200: ", status, " ", body:sub(1, 200), "\n") end
end
LUA
visits_lua() {  # visits_lua FILE: a wrk script asking FILE's visits in turn
{ echo "local visits = {"; sed 's/.*/"&",/' "$1"; echo "}"; cat <<'LUA'
local counter = 0
local threads = 0
setup = function(thread) thread:set("offset", threads * math.floor(#visits / 2)); threads = threads + 1 end
request = function()
  counter = counter + 1
  local v = visits[(offset + counter) % #visits + 1]
  return wrk.format("GET", "/api/recommendations/?session=" .. v .. "&k=6")
end
response = function(status, headers, body)
  if status ~= 200 and not shown then shown = true; io.stderr:write("first non-200: ", status, " ", body:sub(1, 200), "\n") end
end
LUA
}
}
visits_lua /tmp/rec_visits.txt > /tmp/rec_visits.lua
visits_lua /tmp/rec_visits_warm.txt > /tmp/rec_visits_warm.lua
declare -A P50 P99
# run NAME TITLE wrk-args...: the wrk figures, and p50/p99 kept for the ratios below
run() {
  echo "== $2 (load $(cut -d' ' -f1 /proc/loadavg))"
  wrk -t2 -c32 -d"$DURATION" --latency "${@:3}" | grep -E "50%|90%|99%|Requests/sec|Non-2xx|Socket errors|requests in" | tee /tmp/rec_wrk.txt
  P50[$1]=$(awk '$1 == "50%" {print $2}' /tmp/rec_wrk.txt); P99[$1]=$(awk '$1 == "99%" {print $2}' /tmp/rec_wrk.txt)
}
# Two baselines: the API root (DRF's APIRootView: no database query, the cheapest DRF endpoint)
# and /api/categories/ (the cheapest endpoint that reads the database: one query; an empty table here).
run root "cheapest DRF endpoint: GET /api/ (API root, no query)" -s /tmp/rec_status.lua "http://127.0.0.1:$PORT/api/"
run categories "cheapest DRF endpoint with a query: GET /api/categories/" -s /tmp/rec_status.lua "http://127.0.0.1:$PORT/api/categories/"
run visit "GET /api/recommendations/?session=<visit with 10 views>&k=6" -s /tmp/rec_status.lua "http://127.0.0.1:$PORT/api/recommendations/?session=$VISIT&k=6"
wrk -t2 -c32 -d"$DURATION" -s /tmp/rec_visits_warm.lua "http://127.0.0.1:$PORT" >/dev/null  # warm-up, not measured
run visits "GET /api/recommendations/?session=<one of $VISITS visits with 10 views, in turn>&k=6 (a new question each time)" -s /tmp/rec_visits.lua "http://127.0.0.1:$PORT"
run fallback "GET /api/recommendations/?session=<unknown visit>&k=6 (popular fallback)" -s /tmp/rec_status.lua "http://127.0.0.1:$PORT/api/recommendations/?session=$NEW_VISIT&k=6"
run post "POST /api/recommendations/ {items:[1 product], k:6}" -s /tmp/rec_post.lua "http://127.0.0.1:$PORT/api/recommendations/"
ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) print v / 1000; else if (v ~ /ms$/) print v + 0; else print v * 1000 }'; }
echo "== latency ratios (target: p99 <= 1.3x the cheapest DRF endpoint's)"
for name in visit visits fallback post; do
  for base in root categories; do
    awk -v n="$name" -v b="$base" -v a50="$(ms "${P50[$name]}")" -v b50="$(ms "${P50[$base]}")" \
        -v a99="$(ms "${P99[$name]}")" -v b99="$(ms "${P99[$base]}")" \
        'BEGIN { printf "%-9s vs %-11s p50 %.2fx  p99 %.2fx\n", n, b, a50 / b50, a99 / b99 }'
  done
done
rss() { for p in $(pgrep -P $GPID); do awk '/VmRSS/ {printf "%s %.0f\n", FILENAME, $2/1024}' /proc/$p/status; done; }
echo "== worker RSS (MB) after the runs above, load $(cut -d' ' -f1-3 /proc/loadavg)"
rss
echo "== reload"
(cd bench && "../$PY" reload.py "http://127.0.0.1:$PORT")
echo "== worker RSS (MB) after the reloads, load $(cut -d' ' -f1-3 /proc/loadavg)"
rss
