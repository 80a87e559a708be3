"""Drives the notebook's background training through jupyter_client, as a reader would:
start training, watch it, stop it, and use the model in the next cell, with every variable
defined before still there."""
import os
import re
import sys
import time

import nbformat
from jupyter_client.manager import start_new_kernel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import kernel_cells  # noqa: E402
NOTEBOOK = os.path.join(ROOT, "notebooks", "cola.ipynb")


def run(client, code):
    """Executes `code`; returns (printed text, error text or None)."""
    text, error, _ = kernel_cells.execute(client, code, timeout=900)
    return text, error


def main():
    os.environ["BERT_FINETUNE_QUICK"] = "1"
    cells = [c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]
    start = next(i for i, s in enumerate(cells) if "train::Run::start" in s)
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            failures.append(what)

    km, client = start_new_kernel(kernel_name="bert-finetune", startup_timeout=120,
                                  cwd=os.path.join(ROOT, "notebooks"))
    try:
        for source in cells[:start]:
            if "Trainer::new(" in source:
                # Long enough that the stop comes while it trains.
                _, error = run(client, "let epochs: usize = 40;")
                check(error is None, "a longer run can be configured")
            _, error = run(client, source)
            if error:
                raise SystemExit(f"cell failed before training:\n{source}\n{error}")
        # Untyped on purpose, as a reader's own cell may be: the kernel asks rust-analyzer for
        # this type (the notebooks write theirs; docs/notebook.md, "Types in cells").
        _, error = run(client, "let x = 41;")
        check(error is None, f"an untyped let still defines its variable {error or ''}")
        # The kernel builds a cell without cargo while nothing cargo checks has changed
        # (kernel/evcxr/evcxr.patch, RustcReplay): its errors must still reach the reader, with
        # the line they are on, and the kernel carry on.
        _, error = run(client, 'let y: i32 = "forty-one";')
        error = re.sub(r"\x1b\[[0-9;]*m", "", error or "")  # the report is coloured per character
        check("mismatched types" in error and '"forty-one"' in error,
              f"a cell that does not compile says why: {error.strip()[:80]!r}")
        text, error = run(client, "x + 1")
        check(error is None and text.strip() == "42",
              f"the next cell runs, and the variable it names is there: {text.strip()!r} {error or ''}")
        # A cell takes from the store only the variables it names; the others stay, whatever the
        # cells in between did.
        text, error = run(client, "let doubled: Vec<i32> = vec![x * 2];\ndoubled.len()")
        check(error is None and text.strip() == "1", f"a new variable beside the old {error or ''}")
        text, error = run(client, "let shown: String = format!(\"{x} {doubled:?}\");\nshown")
        check(error is None and "41 [82]" in text,
              f"a variable named only inside a format string is found: {text.strip()!r} {error or ''}")
        t0 = time.time()
        _, error = run(client, cells[start])
        check(error is None, f"the training cell returns at once ({time.time() - t0:.1f}s) {error or ''}")
        status = ""
        for _ in range(60):
            status, error = run(client, "run.progress()")
            if re.search(r"training: epoch \d+", status):
                break
            time.sleep(2)
        check(re.search(r"training: epoch \d+", status) is not None,
              f"progress shows where the run is: {status.splitlines()[:1]}")
        text, error = run(client, "let (trainer, history) = run.stop()?;\n"
                                  "println!(\"stopped after {} batches\", history.batch_losses.len());")
        check(error is None, f"stop() hands the model back {error or ''}")
        m = re.search(r"stopped after (\d+) batches", text)
        check(m is not None and 0 < int(m.group(1)) < 40 * 10, f"it stopped early: {m and m.group(0)}")
        text, error = run(client, "println!(\"x = {x}\");\n"
                                  "let scored = trainer.evaluate(&dataset.take(64), 32)?;\n"
                                  "println!(\"accuracy {:.3}\", scored.accuracy());")
        check(error is None and "x = 41" in text, f"earlier variables survive: {text.strip()[:40]!r} {error or ''}")
        check(re.search(r"accuracy \d\.\d{3}", text) is not None, "the stopped model scores sentences")
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
    if failures:
        print(f"{len(failures)} background-run check(s) failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
