"""Execute a notebook of notebooks/ (cola.ipynb by default, or own_data.ipynb) headless on the
project kernel, printing progress per cell and relaying what the cells print (epochs, batches,
elapsed time) as it arrives.

    python scripts/run_notebook.py [--quick] [--timing] [--out out] [--notebook cola|own_data|token_classification|question_answering|masked_lm]

With --timing it ends with the table of every code cell's seconds, the median of the cells that
do no training (those not tagged "training" in the notebook), and the first output: seconds from
starting the kernel to the end of the device cell (the first cell that shows something); the
same figures go to <out>/<name>.timing.json (`make notebook-timing` runs every notebook so).

Writes <out>/<name>.ipynb (executed), <out>/<name>.html and the figures the notebook drew as
<out>/figures/<name>.png and .svg (own_data's under <out>/figures/own_data/). Stops with a non-zero exit at the first failing cell, after
saving what ran so far.
"""
import argparse
import base64
import json
import os
import statistics
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")


def first_line(cell):
    for line in cell.source.splitlines():
        if line.strip():
            return line.strip()[:70]
    return ""


# Which plotting call made a figure, and the file name it is saved under.
FIGURES = {"viz::loss_curve(": "loss", "viz::batch_loss_curve(": "batch_loss",
           "viz::mcc_bars(": "mcc", "viz::accuracy_curve(": "accuracy",
           "viz::token_lengths(": "token_lengths", "viz::confusion_matrix(": "confusion",
           "viz::attention_map(": "attention", "run.progress()": "progress",
           "viz::label_counts(": "label_counts", "confusion_matrix_with_labels(": "confusion"}


def save_figures(nb, out_dir, notebook="cola"):
    """Writes each figure output of the executed notebook as PNG and SVG files."""
    written = []
    folder = os.path.join(out_dir, "figures", *([] if notebook == "cola" else [notebook]))
    for cell in nb.cells:
        name = next((n for call, n in FIGURES.items() if call in cell.get("source", "")), None)
        for out in cell.get("outputs", []) if name else []:
            data = out.get("data", {})
            if "image/png" in data:
                os.makedirs(folder, exist_ok=True)
                with open(os.path.join(folder, f"{name}.png"), "wb") as f:
                    f.write(base64.b64decode(data["image/png"]))
                written.append(f"{name}.png")
            if "image/svg+xml" in data:
                with open(os.path.join(folder, f"{name}.svg"), "w", encoding="utf-8") as f:
                    f.write(data["image/svg+xml"])
                written.append(f"{name}.svg")
    return written


class EchoingClient(NotebookClient):
    """Relays each cell's printed lines to this terminal as the kernel streams them, so a long
    training cell shows its epochs and batches live (the notebook keeps them as well)."""

    def output(self, outs, msg, display_id, cell_index):
        if msg["msg_type"] == "stream":
            for line in msg["content"].get("text", "").splitlines():
                print(f"  | {line}", flush=True)
        return super().output(outs, msg, display_id, cell_index)


def is_training(cell):
    """Cells tagged "training" train a model (start a run or wait for it); the rest only load,
    show, score or predict, and should answer at the pace of a Python kernel."""
    return "training" in cell.get("metadata", {}).get("tags", [])


def timing_report(rows, first_output, notebook):
    """The table of cell times, the median of the cells without training, and the first output."""
    lines = [f"[timing] {notebook}: seconds per code cell (quick mode)",
             f"[timing] {'cell':>4} {'seconds':>8}  {'':8}  first line"]
    for row in rows:
        kind = "training" if row["training"] else ""
        lines.append(f"[timing] {row['cell']:>4} {row['seconds']:>8.2f}  {kind:8}  {row['first_line']}")
    light = [r["seconds"] for r in rows if not r["training"]]
    median = statistics.median(light) if light else float("nan")
    lines.append(f"[timing] {notebook}: median of the {len(light)} cells without training: {median:.2f} s; "
                 f"slowest of them {max(light, default=float('nan')):.2f} s; first output (kernel start to "
                 f"the device report) {first_output:.1f} s")
    return "\n".join(lines), {"notebook": notebook, "cells": rows, "median_without_training": median,
                               "first_output_seconds": first_output}


def execute(quick, out_dir, timeout=None, echo=False, notebook="cola", timing=False):
    if quick:
        os.environ["BERT_FINETUNE_QUICK"] = "1"
    else:
        os.environ.pop("BERT_FINETUNE_QUICK", None)
    nb = nbformat.read(os.path.join(NOTEBOOKS, f"{notebook}.ipynb"), as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    started = time.time()
    state = {"n": 0, "t": time.time(), "first_output": None}
    rows = []

    def on_start(cell, cell_index):
        state["t"] = time.time()

    def on_done(cell, cell_index, execute_reply):
        state["n"] += 1
        took = time.time() - state["t"]
        print(f"[notebook] cell {state['n']:>2}/{len(code_cells)} done in {took:6.1f}s: {first_line(cell)}",
              flush=True)
        rows.append({"cell": state["n"], "seconds": round(took, 3), "training": is_training(cell),
                     "first_line": first_line(cell)})
        if state["first_output"] is None and "device::detect()" in cell.source:
            state["first_output"] = time.time() - started

    client = (EchoingClient if echo else NotebookClient)(
        nb, kernel_name="bert-finetune", timeout=timeout, startup_timeout=120,
        resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}},
        on_cell_start=on_start, on_cell_executed=on_done,
    )
    os.makedirs(out_dir, exist_ok=True)
    error = None
    try:
        client.execute()
    except CellExecutionError as e:
        error = e
    finally:
        nbformat.write(nb, os.path.join(out_dir, f"{notebook}.ipynb"))
        html, _ = HTMLExporter().from_notebook_node(nb)
        with open(os.path.join(out_dir, f"{notebook}.html"), "w", encoding="utf-8") as f:
            f.write(html)
        figures = save_figures(nb, out_dir, notebook)
    for cell in code_cells:
        for out in cell.get("outputs", []):
            for line in out.get("text", "").splitlines():
                if line.startswith("MCC: ") or line.startswith("Using "):
                    print(f"[notebook] {line}", flush=True)
    print(f"[notebook] {'failed' if error else 'finished'} after {time.time() - started:.0f}s; "
          f"wrote {out_dir}/{notebook}.ipynb, {notebook}.html and figures ({', '.join(figures)})",
          flush=True)
    if timing and not error:
        table, summary = timing_report(rows, state["first_output"] or float("nan"), notebook)
        print(table, flush=True)
        with open(os.path.join(out_dir, f"{notebook}.timing.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
    if error:
        raise error
    return nb


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--timing", action="store_true", help="end with the table of cell times")
    ap.add_argument("--out", default=os.path.join(ROOT, "out"))
    ap.add_argument("--notebook", default="cola", choices=["cola", "own_data", "token_classification", "question_answering", "masked_lm"])
    args = ap.parse_args()
    try:
        execute(args.quick, args.out, echo=not args.timing, notebook=args.notebook, timing=args.timing)
    except CellExecutionError as e:
        print(e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
