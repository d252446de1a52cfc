#!/usr/bin/env bash
# `npm run lab`: set up the project-local Jupyter once (scripts/jupyter-env.sh), build the TypeScript
# package the notebooks import (build/), then start JupyterLab on 127.0.0.1 in notebooks/.
#   COPYCAT_LAB_PORT (default 8888; Jupyter picks the next free port when taken), extra args go to jupyter lab.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Notebooks import compiled JS + .d.ts from build/ (tslab cannot import ../src/*.ts: not under its rootDir).
# A type error in one file must not keep the lab closed, so the build's failure is reported, not fatal.
if ! npx --no-install tsc -p tsconfig.json; then
  echo "[lab] WARNING: 'npm run build' reported errors; notebooks see whatever build/ holds." >&2
fi

args=(--no-browser --ip=127.0.0.1 --port="${COPYCAT_LAB_PORT:-8888}" --notebook-dir="$ROOT/notebooks")
# Jupyter refuses to run as root without this flag (containers, CI machines).
if [ "$(id -u)" = "0" ]; then args+=(--allow-root); fi

echo "[lab] JupyterLab starting; open the http://127.0.0.1:...?token=... URL printed below (Ctrl+C to stop)." >&2
exec bash "$ROOT/scripts/jupyter-env.sh" jupyter lab "${args[@]}" "$@"
