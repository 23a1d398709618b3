#!/usr/bin/env bash
# Quick start: installs everything, prepares the database and demo data, serves on
# http://127.0.0.1:8000 (HOST/PORT override). Safe to run again.
source "$(dirname "$0")/_setup.sh"

setup_system python3-venv espeak-ng
setup_venv ""
setup_frontend
cd "$ROOT"
PY="$VENV/bin/python"
echo "==> Preparing the database and static files"
"$PY" manage.py migrate --noinput -v0
"$PY" manage.py collectstatic --noinput -v0
echo "==> Preparing the voice models (the first time: joins the 491 MB LLM from its parts and"
echo "    loads each model, 20-60 s; later runs: a few seconds)"
"$PY" manage.py prepare_models
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
# The demo's start-call route needs no credential: serve it only when this server listens on
# loopback (set DEMO_ENABLED yourself to decide otherwise).
case "$HOST" in
  127.*|localhost|::1) export DEMO_ENABLED="${DEMO_ENABLED:-true}" ;;
esac
"$PY" manage.py bootstrap_demo --origin "http://$HOST:$PORT" --origin "http://localhost:$PORT"
echo "==> Serving on http://$HOST:$PORT"
echo "    Dashboard (agents, keys, embed snippet, calls): http://$HOST:$PORT/dashboard/"
echo "    Demo call: http://$HOST:$PORT/demo/    API docs: http://$HOST:$PORT/api/docs/"
exec "$VENV/bin/daphne" -b "$HOST" -p "$PORT" thinnest_site.asgi:application
