#!/usr/bin/env bash
# Creates (or refreshes) the two virtual environments from the committed lock files.
# Sourced by ./assistant; safe to call repeatedly: a stamp holding the lock's hash skips
# work when nothing changed.
set -euo pipefail

ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
PY="${PYTHON:-python3}"

# ensure_venv NAME LOCK [extra pip args...]
ensure_venv() {
  local name="$1" lock="$2"; shift 2
  local dir="$ROOT/.venv/$name" stamp
  stamp="$( { cat "$ROOT/$lock"; echo "$*"; } | sha256sum | cut -c1-16)"
  if [[ -f "$dir/.stamp" && "$(cat "$dir/.stamp")" == "$stamp" ]]; then
    return 0
  fi
  echo "==> preparing .venv/$name from $lock (first run takes a few minutes)" >&2
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade "pip>=24" >&2
  # The locks were resolved for Python 3.10 (Rasa 3.6 declares <3.11) and run on 3.11;
  # --no-deps installs exactly the lock, nothing resolved at install time.
  "$dir/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
      --ignore-requires-python -r "$ROOT/$lock" >&2
  if (($#)); then
    local links=()
    [[ -d /opt/wheels ]] && links=(--find-links /opt/wheels)
    "$dir/bin/python" -m pip install -q --disable-pip-version-check --no-deps "${links[@]}" "$@" >&2
  fi
  echo "$stamp" > "$dir/.stamp"
}

ensure_all_venvs() {
  # torch 2.13.0 is pinned alone: pip takes the CPU wheel from the machine's disk, while
  # a resolver would pull a multi-GB CUDA build.
  ensure_venv app requirements/app.lock torch==2.13.0
  ensure_venv rasa requirements/rasa.lock
  # The project itself, editable, in the app environment; redone when pyproject.toml changes.
  local stamp
  stamp="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
  if [[ "$(cat "$ROOT/.venv/app/.project-stamp" 2>/dev/null)" != "$stamp" ]]; then
    "$ROOT/.venv/app/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
        --no-build-isolation -e "$ROOT" >&2
    echo "$stamp" > "$ROOT/.venv/app/.project-stamp"
  fi
}

# Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium; it must
# never download a browser of its own).
ensure_browser() {
  if [[ -x /usr/bin/chromium ]]; then
    return 0
  fi
  echo "==> installing Debian's chromium for the browser tests" >&2
  local sudo=()
  [[ "$(id -u)" == 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium chromium-driver >&2
}

# Debian's nginx in front of the web services of `./assistant cluster`.
ensure_nginx() {
  if command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]]; then
    return 0
  fi
  echo "==> installing Debian's nginx for ./assistant cluster" >&2
  local sudo=()
  [[ "$(id -u)" == 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq nginx >&2
}
