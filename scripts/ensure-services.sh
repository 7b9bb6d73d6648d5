#!/usr/bin/env bash
# Make sure the services the test suite talks to are up; start them where this machine can.
# Fails loudly (non-zero) when one cannot be reached: tests never skip a missing service.
set -uo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # name port
  for _ in $(seq 1 30); do up "$2" && return 0; sleep 1; done
  echo "ERROR: $1 is not reachable on 127.0.0.1:$2" >&2
  return 1
}

start_postgres() {
  command -v pg_ctlcluster >/dev/null && pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
}
start_mariadb() {
  command -v mariadbd >/dev/null && start-stop-daemon --start --oknodo --background --exec "$(command -v mariadbd)"
}
start_redis() {
  command -v redis-server >/dev/null && redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
    --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

status=0
up 5432 || { echo "Starting PostgreSQL..."; start_postgres; }
up 3306 || { echo "Starting MariaDB..."; start_mariadb; }
up 6379 || { echo "Starting Redis..."; start_redis; }
wait_for "PostgreSQL (customer databases)" 5432 || status=1
wait_for "MariaDB (customer databases)" 3306 || status=1
wait_for "Redis" 6379 || status=1

if [ ! -x /usr/bin/chromium ]; then
  echo "Installing Debian's Chromium for the browser tests..."
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || true
  else
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || true
  fi
  [ -x /usr/bin/chromium ] || { echo "ERROR: /usr/bin/chromium is missing and could not be installed" >&2; status=1; }
fi
exit $status
