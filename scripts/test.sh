#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite: lint, then pytest on SQLite with the
# in-memory channel layer; then, when DATABASE_URL / REDIS_URL are set, again on those services.
source "$(dirname "$0")/_setup.sh"

setup_system python3-venv redis-server chromium espeak-ng sox iproute2
setup_venv "test"
setup_frontend
cd "$ROOT"
PY="$VENV/bin/python"

# The React package has a build and tests of its own; its example app is what
# tests/e2e/test_react.py serves. npm needs the registry, so this runs before the netns.
echo "==> widget/react (@thinnest/embed-sdk): build, unit tests, example app"
(cd "$ROOT/widget/react" && npm ci --no-audit --no-fund --silent && npm run build && npm test && npm run build:example)

echo "==> ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .

run_pytest() {
  local status=0
  "$PY" -m pytest "$@" || status=$?
  # 5 = no tests collected (e.g. a marker filter that selects nothing): not a failure.
  if [ "$status" = 5 ]; then echo "(no tests collected)"; status=0; fi
  return "$status"
}

run_pytest_in_netns() {
  local status=0
  unshare -rn bash "$ROOT/scripts/in-netns.sh" "$PY" -m pytest "$@" || status=$?
  if [ "$status" = 5 ]; then echo "(no tests collected)"; status=0; fi
  return "$status"
}

echo "==> pytest on SQLite, in-memory channel layer"
(unset DATABASE_URL REDIS_URL; run_pytest -m "not e2e" "$@")

echo "==> end-to-end tests (real processes, headless Chromium) in a loopback-only network namespace"
if unshare -rn true 2>/dev/null; then
  (unset DATABASE_URL REDIS_URL; run_pytest_in_netns -m e2e "$@")
else
  echo "!! unshare -rn is not permitted here: the end-to-end tests will be skipped" >&2
  (unset DATABASE_URL REDIS_URL; run_pytest -m e2e "$@")
fi

# THINNEST_TEST_COQUI=0 skips this (it installs torch, about 8 GB, into .venv-coqui).
if [ "${THINNEST_TEST_COQUI:-1}" != 0 ]; then
  echo "==> Coqui TTS engine, in its own virtualenv with torch"
  setup_coqui_venv
  # Here the engine must import: a skip would hide a broken install.
  (unset DATABASE_URL REDIS_URL; THINNEST_REQUIRE_COQUI=1 "$COQUI_VENV/bin/python" -m pytest tests/voice/engines/tts/test_coqui.py)
fi

if [ -n "${DATABASE_URL:-}" ] || [ -n "${REDIS_URL:-}" ]; then
  echo "==> pytest on DATABASE_URL=${DATABASE_URL:-(sqlite)} REDIS_URL=${REDIS_URL:-(none)}"
  run_pytest -m "not e2e" "$@"
fi
