#!/usr/bin/env bash
# The real stack without Docker: gunicorn, a Celery worker (both queues) and beat on PostgreSQL
# and Redis, as background processes, in production mode (DJANGO_DEBUG=false). Logs in var/log/,
# pid files in var/run/.
#
#   scripts/serve.sh start|stop
#   scripts/serve.sh env          the settings it runs with (the secret key masked)
#   scripts/serve.sh run CMD...   a command in that environment (e.g. .venv/bin/python manage.py createsuperuser)
#
# Production mode needs SECRET_KEY and ALLOWED_HOSTS. When they are not set: the secret key is
# generated once into $SHOP_VAR_DIR/secret_key (mode 600) and kept, and ALLOWED_HOSTS is the loopback
# names when BIND is a loopback address (otherwise it must be set). On a loopback BIND the site is
# plain HTTP, so the HTTPS redirect and secure-only cookies are off unless set; any other BIND keeps
# production's HTTPS defaults. Debug mode is refused (ALLOW_DEBUG_SERVER=true overrides, on purpose).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin
VAR=${SHOP_VAR_DIR:-var}
mkdir -p var/log var/run "$VAR"

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/shop}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/3}
export CELERY_RESULT_BACKEND=${CELERY_RESULT_BACKEND:-redis://127.0.0.1:6379/4}
BIND=${BIND:-127.0.0.1:8000}
WEB_WORKERS=${WEB_WORKERS:-2}

ENV_FILE_PATH=${ENV_FILE:-.env}
envfile_get() {  # NAME: its value in the env file the settings read (empty when absent)
  [ -f "$ENV_FILE_PATH" ] || return 0
  sed -n "s/^[[:space:]]*\(export[[:space:]]\+\)\?$1=//p" "$ENV_FILE_PATH" | tail -n 1 | sed "s/^[\"']//; s/[\"']\$//"
}

serve_env() {
  local allow=${ALLOW_DEBUG_SERVER:-$(envfile_get ALLOW_DEBUG_SERVER)}
  if [ "${allow,,}" != "true" ]; then
    if [ -n "${DJANGO_DEBUG:-}" ] && [ "${DJANGO_DEBUG,,}" != "false" ]; then
      echo "serve.sh: DJANGO_DEBUG=$DJANGO_DEBUG: the real stack runs in production mode;" \
           "unset it, or set ALLOW_DEBUG_SERVER=true to serve debug mode on purpose" >&2
      exit 2
    fi
    local from_file
    from_file=$(envfile_get DJANGO_DEBUG)
    if [ -n "$from_file" ] && [ "${from_file,,}" != "false" ]; then
      echo "serve.sh: ignoring DJANGO_DEBUG=$from_file from $ENV_FILE_PATH: the real stack runs in production mode" >&2
    fi
    export DJANGO_DEBUG=false
  fi
  [ -n "${SECRET_KEY:-}" ] || SECRET_KEY=$(envfile_get SECRET_KEY)
  [ -n "${ALLOWED_HOSTS:-}" ] || ALLOWED_HOSTS=$(envfile_get ALLOWED_HOSTS)
  if [ -z "${SECRET_KEY:-}" ]; then
    if [ ! -s "$VAR/secret_key" ]; then
      (umask 077 && "$PY/python" -c "import secrets; print(secrets.token_urlsafe(50))" > "$VAR/secret_key.tmp")
      mv "$VAR/secret_key.tmp" "$VAR/secret_key"
    fi
    SECRET_KEY=$(cat "$VAR/secret_key")
  fi
  export SECRET_KEY
  local host=${BIND%:*}
  host=${host#[}; host=${host%]}
  local loopback=false
  case "$host" in 127.*|localhost|::1) loopback=true ;; esac
  if [ -z "${ALLOWED_HOSTS:-}" ]; then
    if [ "$loopback" != true ]; then
      echo "serve.sh: BIND=$BIND is not a loopback address: set ALLOWED_HOSTS to the site's host names" >&2
      exit 2
    fi
    ALLOWED_HOSTS="127.0.0.1,localhost,[::1]"
  fi
  export ALLOWED_HOSTS
  if [ "$loopback" = true ]; then
    export SECURE_SSL_REDIRECT=${SECURE_SSL_REDIRECT:-false}
    export SESSION_COOKIE_SECURE=${SESSION_COOKIE_SECURE:-false}
    export CSRF_COOKIE_SECURE=${CSRF_COOKIE_SECURE:-false}
  fi
}

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
    serve_env
    createdb -h 127.0.0.1 -U postgres "$(basename "${DATABASE_URL%%\?*}")" 2>/dev/null || true
    $PY/python manage.py migrate --noinput
    $PY/python manage.py collectstatic --noinput >/dev/null
    start_one web $PY/gunicorn shop.wsgi --bind "$BIND" --workers "$WEB_WORKERS" --timeout 60 \
      --access-logfile - --graceful-timeout 10
    start_one worker $PY/celery -A shop worker -Q default,training -c 2 --loglevel INFO
    start_one beat $PY/celery -A shop beat --loglevel INFO --schedule var/run/celerybeat-schedule
    for _ in $(seq 1 60); do
      curl -fs -o /dev/null "http://$BIND/health/?format=json" && { echo "shop is up at http://$BIND/"; exit 0; }
      if ! kill -0 "$(cat var/run/web.pid)" 2>/dev/null; then break; fi
      sleep 0.5
    done
    echo "the shop did not answer on http://$BIND/health/; see var/log/web.log" >&2; exit 1
    ;;
  env)
    serve_env
    for name in DJANGO_DEBUG ALLOW_DEBUG_SERVER ALLOWED_HOSTS SECURE_SSL_REDIRECT SESSION_COOKIE_SECURE \
                CSRF_COOKIE_SECURE TRUSTED_PROXIES DATABASE_URL REDIS_URL CELERY_BROKER_URL CELERY_RESULT_BACKEND; do
      if [ -n "${!name+x}" ]; then echo "$name=${!name}"; fi
    done
    echo "SECRET_KEY=<set, ${#SECRET_KEY} characters>"
    echo "BIND=$BIND"
    ;;
  run)
    shift
    serve_env
    exec "$@"
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
  *) echo "usage: $0 start|stop|env|run CMD..." >&2; exit 2 ;;
esac
