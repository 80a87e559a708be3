"""Executes the notebook in quick mode on the real evcxr kernel and checks what it shows."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import run_notebook  # noqa: E402

ROOT = run_notebook.ROOT


def text_of(cell):
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        data = out.get("data", {})
        if "text/plain" in data:
            parts.append(data["text/plain"])
    return "".join(parts)


def mimes_of(cell):
    return {m for out in cell.get("outputs", []) for m in out.get("data", {})}


def find(cells, needle):
    for c in cells:
        if needle in c.source:
            return c
    raise AssertionError(f"no cell contains {needle!r}")


def main():
    out_dir = os.path.join(ROOT, "out", "quick")
    nb = run_notebook.execute(quick=True, out_dir=out_dir, timeout=1800)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            failures.append(what)

    errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    check(not errors, "no cell raised an error")
    stderr = [o.get("text", "") for c in cells for o in c.get("outputs", [])
              if o.get("output_type") == "stream" and o.get("name") == "stderr"
              and "error" in o.get("text", "").lower()]
    check(not stderr, f"no error text on stderr {stderr[:1]}")

    device = text_of(find(cells, "device::detect()"))
    has_gpu = os.path.exists("/dev/nvidia0")
    check(("We will use the GPU" in device) if has_gpu else ("No GPU available, using the CPU instead." in device),
          f"device cell reports {'the GPU' if has_gpu else 'the CPU'}: {device.strip()[:80]!r}")
    check(("Training precision: bf16" in device or "Training precision: fp16" in device) if has_gpu
          else ("Training precision: fp32 (the CPU" in device),
          f"device cell names the training precision and why: {device.strip()[-120:]!r}")
    sample = find(cells, "train_file.sample(10, SEED)")
    html = "".join(o["data"].get("text/html", "") for o in sample.outputs if "data" in o)
    check("<table" in html and html.count("<tr>") >= 11, "data sample cell has a text/html table of 10 rows")
    check("text/html" in mimes_of(find(cells, "tokenizer.inspect(")), "tokens table is HTML")
    params = text_of(find(cells, "model.parameter_listing()"))
    for name in ("bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.attention.self.query.weight",
                 "classifier.weight", "==== Embedding Layer ====", "==== Output Layer ===="):
        check(name in params, f"parameter cell names {name}")
    check("image/png" in mimes_of(find(cells, "viz::loss_curve(&history)?")), "loss plot carries image/png")
    check("image/png" in mimes_of(find(cells, "viz::mcc_bars(&scored)?")), "MCC plot carries image/png")
    check("Learning rate of the first step: 2e-5" in text_of(find(cells, "Trainer::new(")),
          "the optimizer cell prints the learning rate")
    training = text_of(find(cells, "run.wait()"))
    check("Average training loss" in training and "Accuracy:" in training and "Training complete!" in training,
          "waiting for the run relays its log")
    check("Number of test sentences: 516" in text_of(find(cells, "Split::OutOfDomainDev")),
          "the test set has 516 sentences")
    test = text_of(find(cells, "trainer.evaluate(&test_set"))
    check(re.search(r"^MCC: -?\d\.\d{3}$", test, re.M) is not None, "a final MCC line is present")
    for call in ("viz::token_lengths(", "viz::confusion_matrix(", "viz::attention_map("):
        check("image/png" in mimes_of(find(cells, call)), f"{call}...) carries image/png")
    saved = text_of(find(cells, "save_pretrained(&out_dir"))
    check("model.safetensors" in saved and "config.json" in saved, "saved files are listed")
    for name in ("loss.png", "loss.svg", "batch_loss.png", "mcc.png", "token_lengths.png", "confusion.png",
                 "attention.png", "attention.svg"):
        path = os.path.join(out_dir, "figures", name)
        check(os.path.getsize(path) > 1000 if os.path.exists(path) else False, f"figures/{name} was written")
    if failures:
        print(f"{len(failures)} notebook check(s) failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
