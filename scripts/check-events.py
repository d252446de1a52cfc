#!/usr/bin/env python3
"""Checks that a run's TensorBoard event files hold the per-epoch scalars, as TensorBoard reads them.

    bash scripts/jupyter-env.sh python scripts/check-events.py RUN_DIR

Finds every events.out.tfevents.* file under RUN_DIR and prints one line per file (its scalar tags and
steps). TensorBoard shows each folder of event files as one run, and a resumed training appends a second
file to its folder that starts at the resumed epoch, so the requirement is checked per folder, read the
way TensorBoard reads it (all its files in order, through EventAccumulator): train/loss, train/accuracy,
learning_rate and test/accuracy, one value per epoch at steps 1..N. Exits 1, naming the folder, its files
and what is missing, when a folder fails or when there is no event file at all.
"""
import argparse
import os
import sys
from collections import defaultdict

REQUIRED = ("train/loss", "train/accuracy", "learning_rate", "test/accuracy")
PREFIX = "events.out.tfevents."


def steps_text(steps):
    """'1..5' for a contiguous run, else the list (shortened)."""
    if not steps:
        return "none"
    if steps == list(range(steps[0], steps[0] + len(steps))):
        return f"{steps[0]}..{steps[-1]}" if len(steps) > 1 else str(steps[0])
    shown = ", ".join(map(str, steps[:12]))
    return f"[{shown}{', ...' if len(steps) > 12 else ''}]"


def load(path, event_accumulator):
    # size_guidance 0 keeps every scalar (the default samples down to 10,000 per tag).
    acc = event_accumulator.EventAccumulator(path, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return acc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", help="folder searched recursively for events.out.tfevents.* files")
    args = ap.parse_args()

    # Python puts this script's folder first on sys.path, and scripts/tensorflow/ (the TypeScript that
    # builds the native addon) would then pass for the `tensorflow` package that tensorboard probes for.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    try:
        from tensorboard.backend.event_processing import event_accumulator
    except ImportError as err:
        print(f"check-events: cannot import tensorboard ({err}); run it through scripts/jupyter-env.sh, which installs it", file=sys.stderr)
        return 1

    root = args.run_dir
    if not os.path.isdir(root):
        print(f"check-events: no folder {root}", file=sys.stderr)
        return 1
    by_dir = defaultdict(list)
    for d, _, files in os.walk(root):
        for f in files:
            if f.startswith(PREFIX):
                by_dir[d].append(f)
    if not by_dir:
        print(f"check-events: FAIL no {PREFIX}* file under {root}", file=sys.stderr)
        return 1

    failed = 0
    for d in sorted(by_dir):
        names = sorted(by_dir[d])
        rel = os.path.relpath(d, root)
        for name in names:
            path = os.path.join(d, name)
            try:
                acc = load(path, event_accumulator)
            except Exception as err:  # a corrupt or truncated file: name it and go on with the others
                print(f"  {os.path.join(rel, name)}: unreadable ({err})")
                continue
            tags = acc.Tags().get("scalars", [])
            steps = sorted({e.step for t in tags for e in acc.Scalars(t)})
            print(f"  {os.path.join(rel, name)}: {len(tags)} scalar tag(s), steps {steps_text(steps)}, {os.path.getsize(path)} bytes")

        problems = []
        try:
            acc = load(d, event_accumulator)
            tags = set(acc.Tags().get("scalars", []))
        except Exception as err:
            acc, tags = None, set()
            problems.append(f"unreadable ({err})")
        missing = [t for t in REQUIRED if t not in tags]
        if missing:
            problems.append("missing " + ", ".join(missing))
        epochs = max((e.step for e in acc.Scalars("train/loss")), default=0) if acc and "train/loss" in tags else 0
        if acc and not missing and epochs < 1:
            problems.append("no epoch (train/loss has no step >= 1)")
        for t in REQUIRED:
            if t in tags and epochs >= 1:
                steps = [e.step for e in acc.Scalars(t)]
                if steps != list(range(1, epochs + 1)):
                    problems.append(f"{t} has steps {steps_text(steps)}, expected one per epoch 1..{epochs}")
        files = ", ".join(names)
        if problems:
            failed += 1
            print(f"FAIL {rel} ({files}): " + "; ".join(problems))
        else:
            last = acc.Scalars("test/accuracy")[-1].value
            print(f"ok   {rel}: {epochs} epoch(s), {len(tags)} scalar tag(s), final test/accuracy {last:.4f}")

    total = len(by_dir)
    print(f"check-events: {total - failed}/{total} folder(s) of event files under {root} hold {', '.join(REQUIRED)} for every epoch")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
