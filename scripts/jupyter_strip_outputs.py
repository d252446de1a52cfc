"""Jupyter pre-save hook: the repository's notebooks/ are saved without outputs.

A notebook run in the lab and saved carries the plotly bundle, images and tables (~267k lines of git diff
for 03_copycat). The tracked notebooks are sources; executed copies with outputs live in run folders
(data/runs/<run>/notebooks/), and those must keep everything. So the hook strips only files whose real
path lies under the repository's notebooks/ folder, whatever root the Jupyter server was started in.

scripts/jupyter-env.sh writes $JUPYTER_CONFIG_DIR/jupyter_server_config.py, which loads this file and sets
`c.ContentsManager.pre_save_hook = make_pre_save_hook(<repo>/notebooks)`.

Also usable by hand: python scripts/jupyter_strip_outputs.py notebooks/*.ipynb
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable, Dict

# Cell metadata that only records a past execution or how its (now removed) outputs were displayed.
# Author intent such as tags, `jupyter.source_hidden` or `editable` stays.
VOLATILE_CELL_METADATA = ("execution", "scrolled", "collapsed", "ExecuteTime")
VOLATILE_JUPYTER_METADATA = ("outputs_hidden",)


def _drop(d: Dict[str, Any], keys) -> bool:
    """Deletes `keys` from `d`; True when any was there."""
    found = [k for k in keys if k in d]
    for k in found:
        del d[k]
    return bool(found)


def strip_notebook(nb: Dict[str, Any]) -> bool:
    """Removes outputs, execution counts and volatile cell metadata in place; True when anything changed."""
    changed = False
    for cell in nb.get("cells", []):
        meta = cell.get("metadata")
        if isinstance(meta, dict):
            changed = _drop(meta, VOLATILE_CELL_METADATA) or changed
            jup = meta.get("jupyter")
            if isinstance(jup, dict):
                changed = _drop(jup, VOLATILE_JUPYTER_METADATA) or changed
                if not jup:
                    del meta["jupyter"]
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            changed = True
        cell["outputs"] = []
        if cell.get("execution_count") is not None:
            changed = True
        cell["execution_count"] = None
    return changed


def is_under(os_path: str, folder: str) -> bool:
    """True when os_path (resolved through symlinks) lies inside folder (also resolved)."""
    real = os.path.realpath(os_path)
    root = os.path.realpath(folder)
    return os.path.commonpath([real, root]) == root and real != root


def make_pre_save_hook(notebooks_dir: str) -> Callable[..., None]:
    """A jupyter_server pre-save hook that strips notebooks saved under notebooks_dir and nothing else."""

    def copycat_strip_outputs(model: Dict[str, Any], path: str, contents_manager: Any = None, **_: Any) -> None:
        if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
            return
        # The API path is relative to the server's root; only a file-backed manager tells where it lands.
        root_dir = getattr(contents_manager, "root_dir", None)
        if not isinstance(root_dir, str):
            return
        os_path = os.path.join(root_dir, path.strip("/"))
        if not is_under(os_path, notebooks_dir):
            return
        if strip_notebook(model["content"]) and getattr(contents_manager, "log", None) is not None:
            contents_manager.log.info("copycat: saved %s without outputs (tracked notebooks stay clean)", path)

    return copycat_strip_outputs


def main(argv: list[str]) -> int:
    """Strips the given .ipynb files in place, keeping the 1-space JSON layout the repository uses."""
    if not argv:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    for file in argv:
        with open(file, encoding="utf-8") as f:
            text = f.read()
        nb = json.loads(text)
        if strip_notebook(nb):
            # Some files escape non-ASCII characters and some do not: keep each file's choice so that
            # the diff shows only the removed outputs.
            with open(file, "w", encoding="utf-8") as f:
                f.write(json.dumps(nb, indent=1, ensure_ascii=text.isascii()) + "\n")
            print(f"stripped {file}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
