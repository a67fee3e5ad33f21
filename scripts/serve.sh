#!/usr/bin/env bash
# The real stack without Docker: gunicorn, a Celery worker (both queues) and beat on PostgreSQL
# and Redis, as background processes. Logs in var/log/, pid files in var/run/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin
mkdir -p var/log var/run

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/shop}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/3}
export CELERY_RESULT_BACKEND=${CELERY_RESULT_BACKEND:-redis://127.0.0.1:6379/4}
BIND=${BIND:-127.0.0.1:8000}
WEB_WORKERS=${WEB_WORKERS:-2}

start_one() {  # name, command...
  local name=$1; shift
  if [ -f var/run/$name.pid ] && kill -0 "$(cat var/run/$name.pid)" 2>/dev/null; then
    echo "$name already running (pid $(cat var/run/$name.pid))"; return
  fi
  setsid "$@" >>var/log/$name.log 2>&1 < /dev/null &
  echo $! > var/run/$name.pid
  echo "started $name (pid $!), log var/log/$name.log"
}

case "${1:-start}" in
  start)
    createdb -h 127.0.0.1 -U postgres "$(basename "${DATABASE_URL%%\?*}")" 2>/dev/null || true
    $PY/python manage.py migrate --noinput
    $PY/python manage.py collectstatic --noinput >/dev/null
    start_one web $PY/gunicorn shop.wsgi --bind "$BIND" --workers "$WEB_WORKERS" --timeout 60 \
      --access-logfile - --graceful-timeout 10
    start_one worker $PY/celery -A shop worker -Q default,training -c 2 --loglevel INFO
    start_one beat $PY/celery -A shop beat --loglevel INFO --schedule var/run/celerybeat-schedule
    for _ in $(seq 1 60); do
      curl -fs -o /dev/null "http://$BIND/health/?format=json" && { echo "shop is up at http://$BIND/"; exit 0; }
      sleep 0.5
    done
    echo "the shop did not answer on http://$BIND/health/ within 30 s; see var/log/web.log" >&2; exit 1
    ;;
  stop)
    for name in beat worker web; do
      if [ -f var/run/$name.pid ]; then
        pid=$(cat var/run/$name.pid)
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -KILL -- "-$pid" 2>/dev/null || true
        rm -f var/run/$name.pid; echo "stopped $name"
      fi
    done
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
