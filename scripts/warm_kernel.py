"""Builds this crate into the evcxr kernel's cache the way the notebook's first cells do, so
that the first cell of `make lab` (or of the notebook test) finds everything compiled.

    python scripts/warm_kernel.py

Runs the notebook's code cells up to its first `use` cell on the project kernel, prints how
long each took, and exits non-zero if one fails.
"""
import os
import sys
import time

import nbformat
from jupyter_client.manager import start_new_kernel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "cola.ipynb")


def run(client, code, timeout=3600):
    msg_id = client.execute(code)
    error, stderr = None, []
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            error = "\n".join(msg["content"].get("traceback", [])) or msg["content"].get("evalue")
        elif msg["msg_type"] == "stream" and msg["content"].get("name") == "stderr":
            stderr.append(msg["content"]["text"])  # cargo's build log: shown only on failure
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return error and "".join(stderr[-40:]) + error


def main():
    cells = [c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]
    first_use = next(i for i, s in enumerate(cells) if s.lstrip().startswith("use "))
    km, client = start_new_kernel(kernel_name="bert-finetune", startup_timeout=120,
                                  cwd=os.path.join(ROOT, "notebooks"))
    try:
        for source in cells[: first_use + 1]:
            t0 = time.time()
            error = run(client, source)
            print(f"[setup] kernel cell {source.splitlines()[0][:60]!r}: {time.time() - t0:.0f}s", flush=True)
            if error:
                print(error, file=sys.stderr)
                sys.exit(1)
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)


if __name__ == "__main__":
    main()
