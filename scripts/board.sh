#!/usr/bin/env bash
# `npm run board`: TensorBoard over every run's event files (docs/tensorboard.md), from the project venv
# (scripts/jupyter-env.sh installs tensorboard there once).
#
#   npm run board                          # all runs: $COPYCAT_DATA_DIR/runs, else <root>/data/runs
#   npm run board -- data/runs/smoke       # one run folder (or any folder holding event files)
#   npm run board -- data/runs/smoke --reload_interval 2    # further arguments go to tensorboard
#
# COPYCAT_BOARD_PORT (default 6006), COPYCAT_BOARD_HOST (default 127.0.0.1: the board shows the run's
# settings and is not meant for the network; set 0.0.0.0 deliberately if you want that).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${COPYCAT_DATA_DIR:-$ROOT/data}"
PORT="${COPYCAT_BOARD_PORT:-6006}"
HOST="${COPYCAT_BOARD_HOST:-127.0.0.1}"

logdir=""
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  arg="$1"
  shift
  # npm runs scripts from the project root; a relative folder means the one the user typed it in
  # (INIT_CWD), and failing that the project root.
  if [ "${arg#/}" != "$arg" ]; then logdir="$arg"
  elif [ -n "${INIT_CWD:-}" ] && [ -e "$INIT_CWD/$arg" ]; then logdir="$INIT_CWD/$arg"
  else logdir="$ROOT/$arg"
  fi
  [ -d "$logdir" ] || { echo "[board] no folder $logdir" >&2; exit 1; }
else
  logdir="$DATA/runs"
  # Start before the first training too: TensorBoard picks runs up as they appear.
  mkdir -p "$logdir"
fi
logdir="$(cd "$logdir" && pwd)"

count=$(find "$logdir" -name 'events.out.tfevents.*' 2>/dev/null | wc -l)
if [ "$count" -eq 0 ]; then
  echo "[board] no event files under $logdir yet: trainings on the native backend write them (docs/tensorboard.md)" >&2
fi

echo "[board] TensorBoard over $logdir ($count event file(s)); open http://$HOST:$PORT/ (Ctrl+C to stop)" >&2
exec bash "$ROOT/scripts/jupyter-env.sh" tensorboard --logdir "$logdir" --host "$HOST" --port "$PORT" "$@"
