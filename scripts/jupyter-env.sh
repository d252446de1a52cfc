#!/usr/bin/env bash
# Project-local Jupyter: a venv with JupyterLab + nbclient and a tslab kernelspec that points at THIS
# clone's node_modules. Nothing is written to the user's ~/.local/share/jupyter, so a CI clone on the same
# machine can never repoint the developer's kernel (and vice versa).
#
#   bash scripts/jupyter-env.sh                 # set up (idempotent) and print the environment
#   bash scripts/jupyter-env.sh CMD [ARGS...]   # set up, then exec CMD inside that environment
#   bash scripts/jupyter-env.sh pip-install PKG # set up, then add PKG (e.g. torch) from the same index
#
# Overrides: COPYCAT_VENV (venv folder), COPYCAT_PYTHON (python used to create it),
# COPYCAT_PIP_INDEX_URL (package index for pip), COPYCAT_JUPYTER_DIR (kernelspec/data/runtime prefix).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${COPYCAT_VENV:-$ROOT/.venv}"
JDIR="${COPYCAT_JUPYTER_DIR:-$ROOT/.jupyter}"
log() { echo "[jupyter-env] $*" >&2; }

# pip tries its default index (pypi.org) before any extra index; on a machine whose pip config lists only
# local file:// indexes that default is unreachable and pip retries it per package for ~12 minutes. So
# when the configured extra indexes are local, make the first one the main index.
pip_index_args() {
  if [ -n "${COPYCAT_PIP_INDEX_URL:-}" ]; then echo "--index-url $COPYCAT_PIP_INDEX_URL"; return; fi
  if [ -n "${PIP_INDEX_URL:-}" ]; then return; fi
  local extra
  extra="$("$VENV/bin/python" -m pip config get global.extra-index-url 2>/dev/null || true)"
  local first
  first="$(echo "$extra" | tr ' ' '\n' | grep -m1 '^file://' || true)"
  if [ -n "$first" ]; then echo "--index-url $first"; fi
}

ensure_venv() {
  local stamp="$VENV/.copycat-jupyter-ok"
  # TensorBoard (npm run board, scripts/check-events.py) came after the first venvs were made: its own
  # stamp lets such a venv get it installed once, without recreating the venv.
  local tb_stamp="$VENV/.copycat-tensorboard-ok"
  local tb_req='tensorboard>=2.14,<3'
  local started=$SECONDS
  if [ -f "$stamp" ] && [ -x "$VENV/bin/jupyter-lab" ]; then
    if [ -f "$tb_stamp" ] && [ -x "$VENV/bin/tensorboard" ]; then return; fi
    log "adding tensorboard to $VENV (one time)"
    # shellcheck disable=SC2046 # word splitting of the index arguments is intended
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q $(pip_index_args) \
      "$tb_req" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    log "installed tensorboard in $((SECONDS - started)) s"
    touch "$tb_stamp"
    return
  fi
  local py="${COPYCAT_PYTHON:-python3}"
  command -v "$py" >/dev/null || { log "no '$py' on PATH: install Python >= 3.9 or set COPYCAT_PYTHON"; exit 1; }
  log "creating $VENV with $("$py" --version 2>&1) (one time, ~20 s with a reachable index)"
  "$py" -m venv "$VENV"
  # shellcheck disable=SC2046 # word splitting of the index arguments is intended
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q $(pip_index_args) \
    'jupyterlab>=4,<5' nbclient nbformat "$tb_req" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  log "installed jupyterlab + nbclient + tensorboard in $((SECONDS - started)) s"
  touch "$tb_stamp" "$stamp"
}

# The kernel starts the project's node with the project's tslab, absolute paths, so it neither depends
# on a global tslab nor on which node is first on the PATH of the Jupyter server.
write_kernelspec() {
  local node tslab_bin dir
  node="$(command -v node)" || { log "node not found on PATH"; exit 1; }
  tslab_bin="$ROOT/node_modules/tslab/bin/tslab"
  [ -f "$tslab_bin" ] || { log "$tslab_bin missing: run 'npm ci' first"; exit 1; }
  dir="$JDIR/share/jupyter/kernels/tslab"
  mkdir -p "$dir"
  cat > "$dir/kernel.json.$$.tmp" <<EOF
{
  "argv": ["$node", "$tslab_bin", "kernel", "--config-path", "{connection_file}"],
  "display_name": "TypeScript (copycat-cnn)",
  "language": "typescript"
}
EOF
  mv "$dir/kernel.json.$$.tmp" "$dir/kernel.json"
}

# Saving a notebook of the repository's notebooks/ from the lab must not commit its outputs (the plotly
# bundle alone is ~5 MB): the server strips them in a pre-save hook (scripts/jupyter_strip_outputs.py),
# which leaves executed copies in run folders alone. Rewritten each start so it follows this clone.
write_server_config() {
  local dir="$JDIR/config" q_root
  q_root="${ROOT//\\/\\\\}"
  q_root="${q_root//\"/\\\"}"
  mkdir -p "$dir"
  cat > "$dir/jupyter_server_config.py.$$.tmp" <<EOF
# Written by scripts/jupyter-env.sh at every start: edits here are overwritten.
import importlib.util as _ilu
_spec = _ilu.spec_from_file_location("copycat_strip_outputs", "$q_root/scripts/jupyter_strip_outputs.py")
_strip = _ilu.module_from_spec(_spec)
_spec.loader.exec_module(_strip)
NOTEBOOKS_DIR = "$q_root/notebooks"
# Extensions re-apply the config, so the hook "overrides" itself once per start: not worth a warning.
import warnings as _w
_w.filterwarnings("ignore", r"Overriding existing pre_save_hook \\(copycat_strip_outputs\\) with a new one \\(copycat_strip_outputs\\)")
c.ContentsManager.pre_save_hook = _strip.make_pre_save_hook(NOTEBOOKS_DIR)
EOF
  mv "$dir/jupyter_server_config.py.$$.tmp" "$dir/jupyter_server_config.py"
}

# Two runs started at once (e.g. npm run lab and npm run reproduce) must not both create the venv or
# race on the kernelspec file: set-up happens under an exclusive lock (flock, util-linux), and the
# kernelspec is written to a per-process temp file then renamed.
mkdir -p "$JDIR"
have_flock=false
if command -v flock >/dev/null; then have_flock=true; fi
if $have_flock; then
  exec 9>"$JDIR/.setup.lock"
  flock 9
fi
ensure_venv
write_kernelspec
write_server_config
if $have_flock; then exec 9>&-; fi

export JUPYTER_PATH="$JDIR/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
export JUPYTER_DATA_DIR="$JDIR/data"
export JUPYTER_RUNTIME_DIR="$JDIR/runtime"
export JUPYTER_CONFIG_DIR="$JDIR/config"
export PATH="$VENV/bin:$PATH"
mkdir -p "$JUPYTER_DATA_DIR" "$JUPYTER_RUNTIME_DIR" "$JUPYTER_CONFIG_DIR"

# JupyterLab asks on first start whether to fetch news from the internet; the toast covers notebooks (and
# screenshots) and offline machines cannot fetch anyway. Default to "no" once; a user's later choice stays.
notif="$JUPYTER_CONFIG_DIR/lab/user-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
if [ ! -f "$notif" ]; then
  mkdir -p "$(dirname "$notif")"
  echo '{ "fetchNews": "false", "checkForUpdates": false }' > "$notif"
fi

if [ "${1:-}" = "pip-install" ]; then
  # Extra packages for the project's venv (e.g. torch for npm run bench:vs-pytorch), through the same
  # index choice as the venv itself, so pip does not spend minutes retrying an unreachable pypi.org.
  shift
  # shellcheck disable=SC2046 # word splitting of the index arguments is intended
  exec "$VENV/bin/python" -m pip install --disable-pip-version-check $(pip_index_args) "$@"
elif [ $# -eq 0 ]; then
  echo "JUPYTER_PATH=$JUPYTER_PATH"
  echo "JUPYTER_DATA_DIR=$JUPYTER_DATA_DIR"
  echo "JUPYTER_RUNTIME_DIR=$JUPYTER_RUNTIME_DIR"
  echo "JUPYTER_CONFIG_DIR=$JUPYTER_CONFIG_DIR"
  echo "venv: $VENV"
  "$VENV/bin/jupyter" kernelspec list
else
  exec "$@"
fi
