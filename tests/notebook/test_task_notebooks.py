"""Executes notebooks/token_classification.ipynb, notebooks/question_answering.ipynb and
notebooks/masked_lm.ipynb in quick mode on the real evcxr kernel, checks what they show (tags
under words, word pieces with -100, the windows of a long context, per-type entity scores,
highlighted entities and answers, a row's masks, perplexity and fill-mask before and after), and
checks that `bert-finetune train` with the same settings and seed gives the same figures
(batch losses, validation figures, test scores)."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import run_notebook  # noqa: E402
from test_notebook import find, mimes_of, text_of  # noqa: E402
from test_own_data import html_of  # noqa: E402

ROOT = run_notebook.ROOT
EXAMPLES = os.path.join(ROOT, "data", "examples")
BINARY = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                      "release", "bert-finetune")


class Checks:
    def __init__(self):
        self.failures = []

    def __call__(self, cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            self.failures.append(what)


def no_errors(cells, check, name):
    errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    check(not errors, f"{name}: no cell raised an error {[e.get('evalue', '')[:200] for e in errors[:1]]}")


def cli(args, out):
    cmd = [BINARY, "train", *args, "--out", out]
    print("  $ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return (json.load(open(os.path.join(out, "history.json"))),
            json.load(open(os.path.join(out, "summary.json"))))


def same_training(check, name, notebook_dir, cli_history):
    ours = json.load(open(os.path.join(notebook_dir, "history.json")))
    check(ours["batch_losses"] == cli_history["batch_losses"] and len(ours["batch_losses"]) > 0,
          f"{name}: notebook and CLI train the same batch losses ({len(ours['batch_losses'])} batches)")
    check([e["val_metrics"] for e in ours["epochs"]] == [e["val_metrics"] for e in cli_history["epochs"]],
          f"{name}: notebook and CLI give the same validation figures")


def token_classification(check):
    nb = run_notebook.execute(quick=True, out_dir=os.path.join(ROOT, "out", "quick"), timeout=1800,
                              notebook="token_classification")
    cells = [c for c in nb.cells if c.cell_type == "code"]
    no_errors(cells, check, "token")
    words = find(cells, "viz::tagged_sentences(")
    check("B-PER" in text_of(words) and "B-PER" in html_of(words) and "background:" in html_of(words),
          "the tagged sentences show each word's tag, entities coloured")
    pieces = text_of(find(cells, "viz::aligned_pieces("))
    check("-100" in pieces and "##" in pieces and "[CLS]" in pieces and "(not scored)" in pieces,
          "one sentence's word pieces show their labels, -100 on later pieces and specials")
    check("image/png" in mimes_of(find(cells, "viz::loss_curve(")), "the loss curve carries image/png")
    history = text_of(find(cells, "run.wait()"))
    check("f1" in history and "Epoch 3 / 3" in history, "training shows its epochs and entity F1 live")
    report = html_of(find(cells, "scored.entities()"))
    check("<table" in report and "PER" in report and "DET" in report and "overall (micro)" in report,
          "the per-entity-type report is an HTML table naming each type")
    found = find(cells, "entities::TaggedTexts(found)")
    check(html_of(found).count("<mark") >= 2 and "Mary gave the book" in text_of(found),
          "entities of new sentences are highlighted inline")
    f1 = float(text_of(find(cells, "let test_set")).split("Entity F1: ")[1].split()[0])
    check(f1 > 0.3, f"the quick run learns entities (test entity F1 {f1:.3f} > 0.3)")

    history, summary = cli(["--train-file", os.path.join(EXAMPLES, "people_train.jsonl"),
                            "--test-file", os.path.join(EXAMPLES, "people_test.jsonl"),
                            "--limit", "800", "--epochs", "3", "--lr", "5e-5"],
                           os.path.join(ROOT, "out", "token_cli"))
    notebook_dir = os.path.join(ROOT, "out", "token_notebook")
    same_training(check, "token", notebook_dir, history)
    test = json.load(open(os.path.join(notebook_dir, "test_metrics.json")))
    check(test == summary["test_metrics"], f"token: notebook and CLI give the same test figures {test}")


def question_answering(check):
    nb = run_notebook.execute(quick=True, out_dir=os.path.join(ROOT, "out", "quick"), timeout=1800,
                              notebook="question_answering")
    cells = [c for c in nb.cells if c.cell_type == "code"]
    no_errors(cells, check, "qa")
    windows = find(cells, "viz::qa_windows(")
    text = text_of(windows)
    check("windows of at most 128 tokens, overlapping by 32" in text and text.count("\n") >= 4,
          "the longest context is cut into several windows")
    check("[CLS]: not in this window" in text or text.count("..=") >= 2,
          "each window shows where the answer starts and ends in it")
    check("also in window 0" in html_of(windows) and "<mark>" in html_of(windows),
          "the overlap of the windows is shaded and the answer marked")
    check("image/png" in mimes_of(find(cells, "viz::loss_curve(")), "the loss curve carries image/png")
    scores = find(cells, "eval::SquadScores::new(")
    check("<table" in html_of(scores) and "exact match" in html_of(scores), "EM/F1 show as a table")
    shown = find(cells, "viz::answer_in_context(&new")
    check("<mark" in html_of(shown) and "Who ate the biggest slice?" in html_of(shown),
          "a new question's answer is highlighted in its context, with its candidates")

    history, summary = cli(["--train-file", os.path.join(EXAMPLES, "who_train.jsonl"),
                            "--test-file", os.path.join(EXAMPLES, "who_test.jsonl"),
                            "--max-len", "128", "--doc-stride", "32", "--batch-size", "8",
                            "--limit", "150", "--epochs", "1", "--lr", "5e-5"],
                           os.path.join(ROOT, "out", "qa_cli"))
    notebook_dir = os.path.join(ROOT, "out", "qa_notebook")
    same_training(check, "qa", notebook_dir, history)
    test = json.load(open(os.path.join(notebook_dir, "test_scores.json")))
    check(test == {"exact": summary["test_exact"], "f1": summary["test_f1"]},
          f"qa: notebook and CLI give the same test EM/F1 {test}")


def masked_lm(check):
    nb = run_notebook.execute(quick=True, out_dir=os.path.join(ROOT, "out", "quick"), timeout=1800,
                              notebook="masked_lm")
    cells = [c for c in nb.cells if c.cell_type == "code"]
    no_errors(cells, check, "mlm")
    tokenized = text_of(find(cells, "corpus.tokenize("))
    check("8,551 rows" in tokenized and "token_cache" in tokenized,
          "the corpus is tokenized into the token cache, one row a line")
    masks = find(cells, "explain_masks(")
    check("[MASK]" in text_of(masks) and "-100" in text_of(masks) and "<table" in html_of(masks),
          "one row's masks show which positions were chosen and what the model reads there")
    probe = find(cells, "fill_mask::table(&fill_mask::fill_mask(&model")
    check("<table" in html_of(probe) and "The cat [MASK] on the mat." in html_of(probe),
          "fill-mask before training shows its candidates as a table")
    check("image/png" in mimes_of(find(cells, "viz::loss_curve(")), "the loss curve carries image/png")
    line = text_of(find(cells, "= trainer.evaluate(trainer.val_set()"))
    before, after = (float(x) for x in line.split("Validation perplexity: ")[1].split(" after")[0].split(" before, "))
    check(after < before / 10, f"adapting cuts validation perplexity ({before:.1f} -> {after:.1f})")
    scored = text_of(find(cells, "= tuner.evaluate(&test_set"))
    check("MCC" in scored, "the adapted encoder is fine-tuned on CoLA and scored with the MCC")

    notebook_dir = os.path.join(ROOT, "out", "mlm_notebook")
    history, summary = cli(["--mlm", "--line-by-line", "--train-file", os.path.join(notebook_dir, "corpus.txt"),
                            "--cache-dir", os.path.join(notebook_dir, "token_cache"), "--max-len", "64",
                            "--limit", "1600", "--epochs", "1", "--lr", "5e-5"],
                           os.path.join(ROOT, "out", "mlm_cli"))
    same_training(check, "mlm", os.path.join(notebook_dir, "model"), history)


def main():
    check = Checks()
    which = sys.argv[1:] or ["token", "qa", "mlm"]
    if "token" in which:
        token_classification(check)
    if "qa" in which:
        question_answering(check)
    if "mlm" in which:
        masked_lm(check)
    if check.failures:
        print(f"{len(check.failures)} task-notebook check(s) failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
