"""Where a notebook cell's time goes on the evcxr kernel: runs a notebook's code cells (quick
mode) on the project kernel under `strace -f -e trace=execve,exit_group` and splits each cell's
wall time by the processes evcxr starts for it.

    python scripts/cell_profile.py [--notebook cola] [--cells 12]

Columns: `analysis` (before cargo starts: evcxr's embedded rust-analyzer infers the types of the
cell's variables), `cargo` (cargo's start and its freshness check of every dependency, plus any
build that failed and was retried), `rustc` (compiling the cell's crate), `link` (cc and
rust-lld making the cell's shared object), `run` (loading it and running the cell). Needs
strace (Debian's `strace`); a development tool, not part of the tests.
"""
import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import time

import nbformat
from jupyter_client.manager import start_new_kernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_cells import execute  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def processes(log, day):
    """(start, end, program) of every process strace saw start and end."""
    started, spans = {}, []
    for line in open(log, errors="replace"):
        m = re.match(r"(\d+) (\d\d):(\d\d):([\d.]+) (.*)", line)
        if not m:
            continue
        pid, rest = int(m[1]), m[5]
        t = day + int(m[2]) * 3600 + int(m[3]) * 60 + float(m[4])
        if rest.startswith("execve(") and "= -1" not in rest:
            # Under -f a call may be split ("<unfinished ...>"); failed ones end "= -1 ENOENT".
            started[pid] = (t, re.search(r'execve\("([^"]+)"', rest)[1].rsplit("/", 1)[-1])
        elif "execve resumed" in rest and "= -1" in rest:
            started.pop(pid, None)
        elif ("exit_group(" in rest or "+++ exited" in rest) and pid in started:
            s, prog = started.pop(pid)
            spans.append((s, t, prog))
    return spans


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--notebook", default="cola")
    ap.add_argument("--cells", type=int, default=12, help="how many code cells to run")
    args = ap.parse_args()
    os.environ["BERT_FINETUNE_QUICK"] = "1"
    nb = nbformat.read(os.path.join(ROOT, "notebooks", f"{args.notebook}.ipynb"), as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code"][: args.cells]
    log = os.path.join(ROOT, "out", "cell_profile.strace")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    km, client = start_new_kernel(kernel_name="bert-finetune", startup_timeout=120,
                                  cwd=os.path.join(ROOT, "notebooks"))
    tracer = subprocess.Popen(["strace", "-f", "--seccomp-bpf", "-tt", "-e", "trace=execve,exit_group", "-e",
                               "signal=none", "-s", "80", "-o", log, "-p", str(km.provisioner.pid)],
                              stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    marks = []
    try:
        for source in cells:
            t = time.time()
            _, error, _ = execute(client, source)
            marks.append((t, time.time(), source.splitlines()[0][:60]))
            if error:
                sys.exit(f"cell failed: {error}")
    finally:
        tracer.terminate()
        tracer.wait()
        client.stop_channels()
        km.shutdown_kernel(now=True)
    day = datetime.datetime.fromtimestamp(marks[0][0]).replace(
        hour=0, minute=0, second=0, microsecond=0).timestamp()
    spans = processes(log, day)
    rows = []
    print(f"{'total':>6} {'analysis':>8} {'cargo':>6} {'rustc':>6} {'link':>6} {'run':>6}  cell")
    for a, b, name in marks:
        inside = [s for s in spans if a <= s[0] and s[1] <= b]
        cargo = [s for s in inside if s[2] == "cargo"]
        rustc = [s for s in inside if s[2] == "rustc"]
        link = [s for s in inside if s[2] == "cc"]
        if not cargo or not rustc:
            print(f"{b - a:6.2f} {'(no build)':>8}  {name}")
            continue
        last_rustc, last_link = rustc[-1], (link[-1] if link else None)
        linked = (last_link[1] - last_link[0]) if last_link else 0.0
        row = (b - a, cargo[0][0] - a, last_rustc[0] - cargo[0][0],
               last_rustc[1] - last_rustc[0] - linked, linked, b - cargo[-1][1])
        rows.append(row)
        print(" ".join(f"{x:{w}.2f}" for x, w in zip(row, (6, 8, 6, 6, 6, 6))) + f"  {name}")
    if rows:
        medians = [statistics.median(r[i] for r in rows) for i in range(6)]
        print(" ".join(f"{x:{w}.2f}" for x, w in zip(medians, (6, 8, 6, 6, 6, 6))) + "  median")


if __name__ == "__main__":
    main()
