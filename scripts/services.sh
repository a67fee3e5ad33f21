#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1 before the tests run.
# On machines where they are installed but stopped, start them; on a fresh Debian machine
# (as root) install them with apt-get first.
set -euo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! pg_up; then
  if ! ls /etc/postgresql/* >/dev/null 2>&1; then
    echo "services: installing PostgreSQL with apt-get" >&2
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  ver=$(ls /etc/postgresql | sort -V | tail -1)
  echo "services: starting PostgreSQL $ver" >&2
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  conf=/etc/postgresql/$ver/main/pg_hba.conf
  # Local test clusters use trust auth on loopback, as on our CI machines.
  if ! grep -q "^host all all 127.0.0.1/32 trust" "$conf"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main reload || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
fi
pg_up || { echo "services: PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }

if ! redis_up; then
  if ! command -v redis-server >/dev/null; then
    echo "services: installing Redis with apt-get" >&2
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  echo "services: starting Redis" >&2
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis_up && break; sleep 0.2; done
fi
redis_up || { echo "services: Redis does not answer on 127.0.0.1:6379" >&2; exit 1; }
echo "services: PostgreSQL and Redis are up" >&2
