#!/usr/bin/env python3
"""Execute notebooks headlessly with the tslab kernel (nbclient) and save executed copies.

Run it inside the project's Jupyter environment so the project-local kernelspec is found:

    npm run notebooks:run -- notebooks/00_environment.ipynb [more.ipynb ...] [options]
    # = bash scripts/jupyter-env.sh python scripts/run-notebooks.py ...

Parameters reach the notebooks through environment variables the kernel inherits (COPYCAT_PROFILE,
COPYCAT_RUN_DIR, any --env KEY=VALUE). Why a runner rather than `jupyter nbconvert --execute`: tslab
reports a failing cell only as stderr text, so nbconvert's error message is empty; this prints the
notebook, the cell index, its source and that stderr. While a notebook runs, its progress bars and step
lines are echoed to the terminal (scripts/notebook_echo.py). With --status-file, the state of every
notebook (ok / failed / running / not run) is kept in a JSON file, so a caller (scripts/reproduce.ts) can
say which notebook to resume from.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from notebook_echo import TerminalEcho

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
NO_STDERR = "(the cell wrote nothing to stderr)"


def log(msg):
    print(f"[run-notebooks] {msg}", flush=True)


def stale_sources():
    """src/**/*.ts files whose compiled build/src/**/*.js is missing or older."""
    stale = []
    for ts in (ROOT / "src").rglob("*.ts"):
        if ts.name.endswith(".d.ts"):
            continue
        js = ROOT / "build" / ts.relative_to(ROOT).with_suffix(".js")
        if not js.exists() or js.stat().st_mtime < ts.stat().st_mtime:
            stale.append(ts.relative_to(ROOT))
    return stale


def ensure_build(mode):
    """Notebooks import the compiled package from build/, so it must match src/."""
    if mode == "never":
        return
    stale = stale_sources()
    if mode == "auto" and not stale:
        log("build/ is up to date with src/")
        return
    log(f"building ({len(stale)} stale source files, e.g. {[str(s) for s in stale[:3]]})" if stale else "building")
    r = subprocess.run(["npm", "run", "-s", "build"], cwd=ROOT)
    if r.returncode != 0:
        log("ERROR: 'npm run build' (tsc) failed; fix the type errors above, or pass --build never to run "
            "against whatever build/ holds now")
        sys.exit(2)


def cell_failure_text(cell):
    """The text a tslab cell produced on stderr plus any error output (tslab leaves ename/evalue empty)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            parts.append(out.get("text", ""))
        elif out.get("output_type") == "error":
            tb = "\n".join(out.get("traceback") or [])
            parts.append(f"{out.get('ename', '')}: {out.get('evalue', '')}\n{tb}".strip())
    return ANSI.sub("", "\n".join(p for p in parts if p.strip())) or NO_STDERR


def kernel_alive(client):
    """True/False when the kernel manager can tell, None otherwise (is_alive is async in nbclient)."""
    import inspect
    try:
        if inspect.iscoroutinefunction(client.km.is_alive):
            from nbclient.util import run_sync
            return bool(run_sync(client.km.is_alive)())
        return bool(client.km.is_alive())
    except Exception:  # noqa: BLE001 - a diagnostic must never hide the real failure
        return None


def echoing_client_class():
    """nbclient's client, with every kernel message of the running cell shown to `self.echo` first."""
    from nbclient import NotebookClient

    class EchoingClient(NotebookClient):
        echo = None

        def process_message(self, msg, cell, cell_index):
            if self.echo is not None:
                try:
                    self.echo.message(msg)
                except Exception as e:  # noqa: BLE001 - the terminal echo must never fail a run
                    log(f"(progress echo failed and is off for this notebook: {e})")
                    self.echo = None
            return super().process_message(msg, cell, cell_index)

    return EchoingClient


def run_one(path, out_dir, args, status):
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(str(path), as_version=4)
    kernel = args.kernel or nb.metadata.get("kernelspec", {}).get("name") or "tslab"
    client = echoing_client_class()(
        nb,
        timeout=args.timeout,
        # nbclient waits only 4 s (its default) for a cell's outputs once the kernel has replied; a cell that
        # printed thousands of lines on a busy 2-core machine lost its last ones (the kernel flood test did,
        # now and then). Waiting costs nothing when the outputs are there: it ends at the kernel's idle.
        iopub_timeout=60,
        kernel_name=kernel,
        # The kernel's cwd is the notebook's folder, so `../build/src/...` imports resolve as in JupyterLab.
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    echo = TerminalEcho(path.stem, args.progress, args.progress_every)
    client.echo = echo
    out_path = out_dir / path.name
    started = time.time()
    failed = None
    status.update(path, state="running", executed=str(out_path))
    try:
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                status.update(path, cell=index)
                try:
                    client.execute_cell(cell, index)
                except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
                    # Whether the kernel survived tells a cell error from a crashed kernel process.
                    alive = kernel_alive(client)
                    failed = (index, cell, e, alive)
                    break
    except KeyboardInterrupt:
        status.update(path, state="interrupted", seconds=round(time.time() - started, 1))
        raise
    finally:
        echo.close()
        nbformat.write(nb, str(out_path))
    if failed is None and args.trust:
        # Headlessly executed notebooks are untrusted: a browser would strip the plotly scripts.
        from nbformat.sign import NotebookNotary
        NotebookNotary().sign(nb)
    secs = time.time() - started
    if failed is None:
        status.update(path, state="ok", cell=None, seconds=round(secs, 1))
        log(f"OK   {path} ({len(nb.cells)} cells, {secs:.1f} s) -> {out_path}")
        return True
    index, cell, err, alive = failed
    kind = type(err).__name__
    status.update(path, state="failed", cell=index, error=kind, seconds=round(secs, 1))
    print(f"\n[run-notebooks] FAILED {path}: cell {index} ({cell.cell_type}, {kind}) after {secs:.1f} s", file=sys.stderr)
    print(f"kernel after the failure: { {True: 'still alive', False: 'dead', None: 'state unknown'}[alive] }", file=sys.stderr)
    print("----- cell source -----", file=sys.stderr)
    print(cell.source, file=sys.stderr)
    print("----- cell stderr / error -----", file=sys.stderr)
    text = cell_failure_text(cell)
    silent = text == NO_STDERR
    if kind != "CellExecutionError" or silent:
        # A silent failure: nbclient's own message is all there is (ename/evalue of the reply).
        text = f"{text}\n{ANSI.sub('', str(err))}".strip()
    print(text, file=sys.stderr)
    print(f"----- executed copy (with outputs up to the failure): {out_path}", file=sys.stderr, flush=True)
    return False


class Status:
    """The JSON status file (--status-file): rewritten atomically at every change, so even a killed run
    leaves the notebook it was in. Without a file it only keeps the states in memory."""

    def __init__(self, file, notebooks, run_dir):
        self.file = file
        self.data = {"runDir": str(run_dir), "exitCode": None, "failed": None,
                     "notebooks": [{"name": nb.stem, "path": str(nb), "state": "not run"} for nb in notebooks]}
        self._write()

    def _entry(self, path):
        return next(e for e in self.data["notebooks"] if e["path"] == str(path))

    def update(self, path, **fields):
        self._entry(path).update(fields)
        if fields.get("state") in ("failed", "interrupted") and self.data["failed"] is None:
            self.data["failed"] = path.stem
        self._write()

    def finish(self, code, build_failed=False):
        self.data["exitCode"] = code
        if build_failed:
            self.data["buildFailed"] = True
        self._write()

    def _write(self):
        if not self.file:
            return
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_name(f".{self.file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n")
        os.replace(tmp, self.file)


def default_profile():
    """DEFAULT_PROFILE of src/config.ts, so this runner and the notebooks agree on the default run folder."""
    try:
        m = re.search(r"DEFAULT_PROFILE\b[^=]*=\s*'([\w-]+)'", (ROOT / "src" / "config.ts").read_text())
        return m.group(1) if m else "quick"
    except OSError:
        return "quick"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--run-dir", type=Path, help="run folder, exported to the kernel as COPYCAT_RUN_DIR "
                    "(default: $COPYCAT_RUN_DIR or <data>/runs/<profile>, the folder the lab's notebooks open)")
    ap.add_argument("--out", type=Path, help="where executed copies go (default: <run-dir>/notebooks)")
    ap.add_argument("--profile", help="exported as COPYCAT_PROFILE")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra kernel env (repeatable)")
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("COPYCAT_CELL_TIMEOUT", "3600")),
                    help="per-cell timeout in seconds (default $COPYCAT_CELL_TIMEOUT or 3600)")
    ap.add_argument("--kernel", help="kernel name (default: the notebook's kernelspec, else tslab)")
    ap.add_argument("--build", choices=["auto", "always", "never"], default="auto",
                    help="compile src/ to build/ first: auto = when build/ is older than src/ (default)")
    ap.add_argument("--no-trust", dest="trust", action="store_false", help="do not sign executed copies")
    ap.add_argument("--keep-going", action="store_true", help="run the remaining notebooks after a failure")
    ap.add_argument("--progress", choices=["auto", "tty", "lines", "off"], default="auto",
                    help="echo progress bars and step lines to the terminal: one line in place (tty), a line "
                         "per --progress-every seconds (lines); auto = tty on a terminal, else lines")
    ap.add_argument("--progress-every", type=float, default=60.0, metavar="S",
                    help="lines mode: seconds between progress lines (default 60)")
    ap.add_argument("--status-file", type=Path, help="keep each notebook's state (ok/failed/running/not run) "
                    "and the failing notebook in this JSON file")
    args = ap.parse_args()

    for nb in args.notebooks:
        if not nb.is_file():
            ap.error(f"notebook not found: {nb}")
    for kv in args.env:
        if "=" not in kv:
            ap.error(f"--env expects KEY=VALUE, got '{kv}'")
        k, v = kv.split("=", 1)
        os.environ[k] = v
    if args.profile:
        os.environ["COPYCAT_PROFILE"] = args.profile

    data = Path(os.environ.get("COPYCAT_DATA_DIR") or ROOT / "data")
    run_dir = args.run_dir or (Path(os.environ["COPYCAT_RUN_DIR"]) if os.environ.get("COPYCAT_RUN_DIR") else None)
    if run_dir is None:
        # The same folder openRun (src/run/run.ts, defaultRunDir) picks, so the lab opens what ran here.
        run_dir = data / "runs" / (os.environ.get("COPYCAT_PROFILE") or default_profile())
    run_dir = run_dir.resolve()
    os.environ["COPYCAT_RUN_DIR"] = str(run_dir)
    out_dir = (args.out or run_dir / "notebooks").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    log(f"COPYCAT_RUN_DIR={run_dir} COPYCAT_PROFILE={os.environ.get('COPYCAT_PROFILE') or '(unset: the run folder decides)'} "
        f"timeout/cell={args.timeout}s")

    status = Status(args.status_file, args.notebooks, run_dir)
    ok = True
    try:
        try:
            ensure_build(args.build)
        except SystemExit as e:
            status.finish(e.code, build_failed=True)
            raise
        for nb in args.notebooks:
            if not run_one(nb, out_dir, args, status):
                ok = False
                if not args.keep_going:
                    break
    except KeyboardInterrupt:
        print("\n[run-notebooks] interrupted", file=sys.stderr, flush=True)
        status.finish(130)
        sys.stdout.flush()
        # Not sys.exit: asyncio would then print the interrupted cell's unretrieved task as a long traceback.
        # The kernel is already shut down (setup_kernel's cleanup ran while the interrupt propagated).
        os._exit(130)
    status.finish(0 if ok else 1)
    sys.exit(0 if ok else 1)

if __name__ == "__main__":
    main()
