#!/usr/bin/env bash
# `npm run lab`: set up the project-local Jupyter once (scripts/jupyter-env.sh), build the TypeScript
# package the notebooks import (build/), then start JupyterLab on 127.0.0.1 in notebooks/.
#
#   npm run lab -- --run DIR   (or --run-dir DIR) open a run folder (e.g. one `npm run reproduce` made): the kernels use it
#                              (COPYCAT_RUN_DIR, and COPYCAT_PROFILE from its config.json), and the lab
#                              serves a root holding both notebooks/ and DIR/notebooks/ (the executed copies)
#   --no-build                 skip the build (build/ is current, e.g. right after a reproduce)
#   COPYCAT_LAB_PORT (default 8888; Jupyter picks the next free port when taken); other args go to jupyter lab,
#   including your own --notebook-dir / --ServerApp.root_dir / --port, which replace this script's.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# `npm run` starts scripts in the project root; relative paths the user typed are relative to where they
# typed them (npm's INIT_CWD).
BASE="${INIT_CWD:-$PWD}"
cd "$ROOT"
die() { echo "[lab] $*" >&2; exit 2; }

# Absolute path of $1 (relative to where the user typed it); the folder must exist.
absdir() {
  local p="$1"
  case "$p" in /*) ;; *) p="$BASE/$p" ;; esac
  [ -d "$p" ] || return 1
  (cd "$p" && pwd)
}

run="" root="" port="${COPYCAT_LAB_PORT:-8888}" build=1
pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    # --run-dir too: the experiment and steal scripts name a run that way.
    --run|--run-dir) [ $# -ge 2 ] || die "$1 needs a run folder, e.g. --run data/runs/quick"; run="$2"; shift 2 ;;
    --run=*|--run-dir=*) run="${1#*=}"; shift ;;
    --no-build) build=0; shift ;;
    # Jupyter accepts one root only ("root_dir only accepts one value, got 2"): the user's replaces ours.
    --notebook-dir|--ServerApp.root_dir|--ServerApp.notebook_dir|--NotebookApp.notebook_dir)
      [ $# -ge 2 ] || die "$1 needs a folder"; root="$2"; shift 2 ;;
    --notebook-dir=*|--ServerApp.root_dir=*|--ServerApp.notebook_dir=*|--NotebookApp.notebook_dir=*) root="${1#*=}"; shift ;;
    --port|--ServerApp.port) [ $# -ge 2 ] || die "$1 needs a number"; port="$2"; shift 2 ;;
    --port=*|--ServerApp.port=*) port="${1#*=}"; shift ;;
    *) pass+=("$1"); shift ;;
  esac
done

if [ -n "$root" ]; then
  root="$(absdir "$root")" || die "the notebook folder '$root' does not exist"
fi

default_url=""
if [ -n "$run" ]; then
  given="$run"
  run="$(absdir "$run")" || die "--run $given: no such folder (runs live in ${COPYCAT_DATA_DIR:-data}/runs/<name>)"
  if [ ! -f "$run/config.json" ]; then
    runs="$(cd "${COPYCAT_DATA_DIR:-$ROOT/data}/runs" 2>/dev/null && ls -d -- */config.json 2>/dev/null | sed 's#/config.json##' | tr '\n' ' ' || true)"
    die "--run $given: $run is not a run folder (no config.json; a run is made by opening it in a notebook or by 'npm run reproduce'). Runs in ${COPYCAT_DATA_DIR:-data}/runs: ${runs:-none yet}"
  fi
  export COPYCAT_RUN_DIR="$run"
  profile="$(node -e 'try { const p = require(process.argv[1]).profile; if (typeof p === "string") process.stdout.write(p); } catch {}' "$run/config.json")"
  if [ -n "$profile" ]; then export COPYCAT_PROFILE="$profile"; fi
  if [ -z "$root" ]; then
    # The smallest folder holding both notebooks/ and the run's executed notebooks: the project root for
    # runs under data/, else a common parent (never "/": then only notebooks/ is served).
    root="$ROOT"
    while [ "$root" != "/" ] && [[ "$run/" != "$root/"* ]]; do root="$(dirname "$root")"; done
    if [ "$root" = "/" ]; then root="$ROOT"; fi
  fi
fi
root="${root:-$ROOT/notebooks}"
# Open the browser on notebooks/ when the served root is above it (ours for --run, or the user's own).
if [[ "$ROOT/notebooks/" == "$root/"* && "$ROOT/notebooks" != "$root" ]]; then
  nbdir="$ROOT/notebooks"
  default_url="/lab/tree/${nbdir#"$root"/}"
fi

# Notebooks import compiled JS + .d.ts from build/ (tslab cannot import ../src/*.ts: not under its rootDir).
# A type error in one file must not keep the lab closed, so the build's failure is reported, not fatal.
if [ "$build" = 1 ] && ! npm run -s build; then
  echo "[lab] WARNING: 'npm run build' reported errors; notebooks see whatever build/ holds." >&2
fi

args=(--no-browser --ip=127.0.0.1 --port="$port" --ServerApp.root_dir="$root")
if [ -n "$default_url" ]; then args+=(--LabApp.default_url="$default_url"); fi
# Jupyter refuses to run as root without this flag (containers, CI machines).
if [ "$(id -u)" = "0" ]; then args+=(--allow-root); fi

if [ -n "$run" ]; then
  echo "[lab] run $run (profile ${COPYCAT_PROFILE:-of the notebook}): notebooks opened here read and write it." >&2
  if [[ "$run/" == "$root/"* ]]; then
    echo "[lab] its executed notebooks: http://127.0.0.1:$port/lab/tree/${run#"$root"/}/notebooks (same token; the port may differ if $port was taken)" >&2
  else
    echo "[lab] its executed notebooks ($run/notebooks) are outside the served folder $root: pass --notebook-dir=<a folder holding both> to browse them" >&2
  fi
fi
echo "[lab] JupyterLab starting in $root; open the http://127.0.0.1:...?token=... URL printed below (Ctrl+C to stop)." >&2
exec bash "$ROOT/scripts/jupyter-env.sh" jupyter lab "${args[@]}" "${pass[@]}"
