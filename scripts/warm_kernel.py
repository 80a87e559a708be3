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

from kernel_cells import execute

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "cola.ipynb")


def main():
    cells = [c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]
    first_use = next(i for i, s in enumerate(cells) if s.lstrip().startswith("use "))
    km, client = start_new_kernel(kernel_name="bert-finetune", startup_timeout=120,
                                  cwd=os.path.join(ROOT, "notebooks"))
    try:
        for source in cells[: first_use + 1]:
            t0 = time.time()
            _, error, stderr = execute(client, source)
            print(f"[setup] kernel cell {source.splitlines()[0][:60]!r}: {time.time() - t0:.0f}s", flush=True)
            if error:
                # The end of cargo's build log says why a build failed.
                print(stderr[-4000:] + error, file=sys.stderr)
                sys.exit(1)
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)


if __name__ == "__main__":
    main()
