"""Executes notebooks/own_data.ipynb in quick mode on the real evcxr kernel, checks what it
shows, and checks that `bert-finetune train` with the same settings and seed gives the same
figures (batch losses, validation and test scores)."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import run_notebook  # noqa: E402
from test_notebook import find, mimes_of, text_of  # noqa: E402

ROOT = run_notebook.ROOT
CLASSES = ("ks08", "l-93", "r-67")


def html_of(cell):
    return "".join(o["data"].get("text/html", "") for o in cell.get("outputs", []) if "data" in o)


def main():
    out_dir = os.path.join(ROOT, "out", "quick")
    nb = run_notebook.execute(quick=True, out_dir=out_dir, timeout=1800, notebook="own_data")
    cells = [c for c in nb.cells if c.cell_type == "code"]
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            failures.append(what)

    errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    check(not errors, f"no cell raised an error {[e.get('evalue', '')[:200] for e in errors[:1]]}")
    frame = html_of(find(cells, "Frame(frame.head(Some(8)))"))
    check("<table" in frame and frame.count("<tr>") >= 9, "the file's first rows show as an HTML table")
    task = text_of(find(cells, "Task::infer(&frame"))
    check(all(c in task for c in CLASSES) and "SingleLabelClassification" in task,
          "the task is inferred: three string classes, single-label")
    for call in ("viz::label_counts(", "viz::token_lengths(", "viz::loss_curve(", "confusion_matrix_with_labels("):
        check("image/png" in mimes_of(find(cells, call)), f"{call}...) carries image/png")
    report = html_of(find(cells, "scored.class_report("))
    check("<table" in report and all(c in report for c in CLASSES) and "macro average" in report,
          "the per-class report is an HTML table naming each class")
    predictions = text_of(find(cells, "predict::predict(trainer.model()"))
    check(any(c in predictions for c in CLASSES), "predictions are named by class")
    pairs = text_of(find(cells, "pair_task.text_columns"))
    check('["sentence1", "sentence2"]' in pairs and '["next", "other"]' in pairs,
          "the pair file is read as sentence1/sentence2 pairs of two classes")
    check("Accuracy: " in text_of(find(cells, "pair_scored")), "the pair model is scored")

    # The command line, same settings and seed: the same figures.
    binary = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                          "release", "bert-finetune")
    cli_out = os.path.join(ROOT, "out", "own_data_cli")
    examples = os.path.join(ROOT, "data", "examples")
    cmd = [binary, "train", "--train-file", os.path.join(examples, "source_train.csv"),
           "--test-file", os.path.join(examples, "source_test.csv"), "--limit", "400",
           "--epochs", "1", "--out", cli_out]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    notebook_dir = os.path.join(ROOT, "out", "own_data_notebook")
    ours = json.load(open(os.path.join(notebook_dir, "history.json")))
    cli = json.load(open(os.path.join(cli_out, "history.json")))
    check(ours["batch_losses"] == cli["batch_losses"] and len(ours["batch_losses"]) > 0,
          f"notebook and CLI train the same batch losses ({len(ours['batch_losses'])} batches)")
    check([e["val_metrics"] for e in ours["epochs"]] == [e["val_metrics"] for e in cli["epochs"]],
          "notebook and CLI give the same validation figures")
    test = json.load(open(os.path.join(notebook_dir, "test_metrics.json")))
    summary = json.load(open(os.path.join(cli_out, "summary.json")))
    check(test == summary["test_metrics"], f"notebook and CLI give the same test figures {test}")
    if failures:
        print(f"{len(failures)} own-data notebook check(s) failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
