#!/usr/bin/env bash
# Container smoke test: build the image with podman on a local Debian base (made with
# mmdebstrap, so no container registry is needed), migrate and run it against the local
# PostgreSQL, wait until /healthz and the image's HEALTHCHECK pass, send SIGTERM and check
# that it exits 0 within 10 s.
#
#   sudo apt-get install podman mmdebstrap postgresql-client curl
#   sudo bash deploy/smoke.sh
#
# Environment: PG_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres, must be
# able to CREATE DATABASE; the container connects to 127.0.0.1:5432 as that user),
# TRACKER_SMOKE_BASE (base image tag; built once and reused).
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${TRACKER_SMOKE_BASE:-localhost/tracker-base:bookworm}
IMAGE=localhost/tracker:smoke
NAME=tracker-smoke-$$
PG_ADMIN_URL=${PG_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
db="tracker_smoke_$$"
work=$(mktemp -d)
started=$(date +%s)

say() { echo "== smoke: $*"; }
fail() { echo "smoke FAILED: $*" >&2; podman logs "$NAME" 2>&1 | tail -20 >&2 || true; exit 1; }
cleanup() {
  podman rm -f "$NAME" >/dev/null 2>&1 || true
  psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

for tool in podman mmdebstrap psql curl python3; do
  command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install podman mmdebstrap postgresql-client curl)"
done
# crun refuses hybrid cgroup hierarchies (cgroup v1 + unified); runc handles them
podman=(podman)
if [ -d /sys/fs/cgroup/unified ]; then
  command -v runc >/dev/null || fail "hybrid cgroups need runc (apt-get install runc)"
  podman+=(--runtime runc)
fi
# the build installs from PyPI with the host's pip settings and CAs (proxies, private CAs)
build_mounts=()
for f in /etc/pip.conf /etc/ssl/certs; do
  [ -e "$f" ] && build_mounts+=(--volume "$f:$f:ro")
done

if ! podman image exists "$BASE"; then
  say "building the base image $BASE with mmdebstrap (Debian bookworm, python3)"
  mmdebstrap --quiet --variant=minbase \
    --include=python3,python3-venv,ca-certificates,tzdata,passwd \
    bookworm "$work/base.tar"
  podman import --quiet "$work/base.tar" "$BASE" >/dev/null
  rm -f "$work/base.tar"
fi

say "building $IMAGE on $BASE"
# docker format keeps HEALTHCHECK (the OCI format has no such field)
"${podman[@]}" build --quiet --format docker --network host --from "$BASE" \
  "${build_mounts[@]}" -f deploy/Dockerfile -t "$IMAGE" . >/dev/null

psql "$PG_ADMIN_URL" -q -c "CREATE DATABASE \"$db\"" >/dev/null
db_url=$(python3 -c 'import sys; from urllib.parse import urlsplit; u = urlsplit(sys.argv[1]); print(f"postgresql+psycopg://{u.netloc}/{sys.argv[2]}")' "$PG_ADMIN_URL" "$db")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/tracker.toml" <<EOF
[database]
url = "\${TRACKER_DATABASE_URL}"
[carriers.sandbox]
couriers = ["*"]
[web]
listen = "127.0.0.1:$port"
EOF
chmod 0644 "$work/tracker.toml"
# health checks are run by hand below (no systemd timers needed); modest explicit ulimits,
# since some sandboxes refuse the very high defaults podman asks for as root
run=("${podman[@]}" run --network host --health-interval disable
     --ulimit nofile=4096:4096 --ulimit nproc=4096:4096
     -e "TRACKER_DATABASE_URL=$db_url"
     -v "$work/tracker.toml:/etc/tracker/tracker.toml:ro")

say "tracker db upgrade"
"${run[@]}" --rm "$IMAGE" db upgrade
say "tracker run"
"${run[@]}" -d --name "$NAME" "$IMAGE" >/dev/null

healthy=""
for _ in $(seq 1 60); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then healthy=1; break; fi
  [ "$(podman inspect --format '{{.State.Running}}' "$NAME")" = true ] || fail "container exited"
  sleep 1
done
[ -n "$healthy" ] || fail "/healthz never answered 200"
say "/healthz: $(curl -fsS "http://127.0.0.1:$port/healthz")"
podman healthcheck run "$NAME" >/dev/null || fail "HEALTHCHECK (tracker check) failed"
say "HEALTHCHECK (tracker check) passed"
[ "$(podman exec "$NAME" id -u)" != 0 ] || fail "runs as root"

say "SIGTERM"
t0=$(date +%s%N)
podman stop --time 10 "$NAME" >/dev/null
elapsed_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
[ "$elapsed_ms" -lt 10000 ] || fail "took ${elapsed_ms} ms to stop"
podman logs "$NAME" 2>&1 | grep -q '"daemon_stopped"' || fail "no daemon_stopped log line"
say "exited 0 in ${elapsed_ms} ms"
echo "smoke passed in $(( $(date +%s) - started )) s"
