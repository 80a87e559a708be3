"""Our CLI and transformers' Trainer side by side on the same files and checkpoint
(`make compare-hf`): a 3-class single-text task and a pair task from data/examples/ (see
scripts/make_examples.py), two seeds a side, the Trainer's defaults (AdamW lr 5e-5, batch 8,
3 epochs, linear decay, dynamic padding) with group_by_length sampling
(transformers 5: `train_sampling_strategy="group_by_length"`), and ours with the same settings
and bucket padding (our group_by_length). Both train on the whole training file and are
scored on the test file.

Prints a table and writes out/compare_hf.json: test accuracy and macro F1 per run, and
training sentences/s (training only: the Trainer's train_samples_per_second with evaluation
off; our epochs' training time, validation excluded).

Usage: python scripts/compare_hf.py [--seeds 42 43] [--epochs 3] [--tasks source next]
"""
import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from transformers import (AutoTokenizer, BertForSequenceClassification, DataCollatorWithPadding,
                          Trainer, TrainingArguments, set_seed)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASKS = {
    "source": {"texts": ["sentence"], "what": "3-class single text (which source)"},
    "next": {"texts": ["sentence1", "sentence2"], "what": "pair, 2 classes (next sentence?)"},
}


def read_csv(path):
    """The columns of a CSV file, as lists of strings."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [r[k] for r in rows] for k in rows[0]}


class Rows(torch.utils.data.Dataset):
    def __init__(self, enc, labels):
        self.enc, self.labels = enc, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        item = {k: v[i] for k, v in self.enc.items()}
        item["labels"] = int(self.labels[i])
        return item


def hf_run(task, seed, args, out):
    spec = TASKS[task]
    train = read_csv(os.path.join(args.examples, f"{task}_train.csv"))
    test = read_csv(os.path.join(args.examples, f"{task}_test.csv"))
    names = sorted(set(train["label"]))
    ids = {n: i for i, n in enumerate(names)}
    tok = AutoTokenizer.from_pretrained(args.model)

    def encode(frame):
        texts = [frame[c] for c in spec["texts"]]
        return tok(*texts, truncation=True, max_length=args.max_len)

    set_seed(seed)
    model = BertForSequenceClassification.from_pretrained(
        args.model, num_labels=len(names), id2label=dict(enumerate(names)), label2id=ids)
    train_rows = Rows(encode(train), [ids[l] for l in train["label"]])
    test_rows = Rows(encode(test), [ids[l] for l in test["label"]])
    targs = TrainingArguments(
        output_dir=out, num_train_epochs=args.epochs, seed=seed,
        train_sampling_strategy="group_by_length",
        eval_strategy="no", save_strategy="no", report_to=[], logging_strategy="no",
        use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=model, args=targs, train_dataset=train_rows,
                      data_collator=DataCollatorWithPadding(tok))
    result = trainer.train()
    # With group_by_length the Trainer's evaluation sampler reorders the rows too, so the
    # labels to compare with are the ones it returns, in its order.
    out = trainer.predict(test_rows)
    preds = out.predictions.argmax(-1)
    truth = np.asarray(out.label_ids)
    return {
        "accuracy": accuracy_score(truth, preds),
        "macro_f1": f1_score(truth, preds, average="macro"),
        "sentences_per_second": result.metrics["train_samples_per_second"],
        "train_seconds": result.metrics["train_runtime"],
    }


def rust_run(task, seed, args, out):
    spec = TASKS[task]
    train = os.path.join(args.examples, f"{task}_train.csv")
    test = os.path.join(args.examples, f"{task}_test.csv")
    cmd = [args.binary, "train", "--model", args.model, "--train-file", train,
           "--validation-file", test, "--test-file", test,
           "--text-columns", ",".join(spec["texts"]), "--epochs", str(args.epochs),
           "--batch-size", "8", "--lr", "5e-5", "--max-len", str(args.max_len),
           "--padding", "bucket", "--seed", str(seed), "--cpu", "--out", out]
    print("  $ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    summary = json.load(open(os.path.join(out, "summary.json")))
    history = json.load(open(os.path.join(out, "history.json")))
    sentences = history["train_size"] * len(history["epochs"])
    seconds = sum(e["train_seconds"] for e in history["epochs"])
    return {
        "accuracy": summary["test_accuracy"],
        "macro_f1": summary["test_macro_f1"],
        "sentences_per_second": sentences / seconds,
        "train_seconds": seconds,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 43])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--tasks", nargs="+", default=list(TASKS))
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    p.add_argument("--examples", default=os.path.join(ROOT, "data", "examples"))
    p.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release",
        "bert-finetune"))
    p.add_argument("--out", default=os.path.join(ROOT, "out", "compare_hf"))
    args = p.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; model {args.model}")
    runs = []
    for task in args.tasks:
        for seed in args.seeds:
            # Alternate the order so neither side always runs on a warmer machine.
            sides = [("rust", rust_run), ("transformers", hf_run)]
            if seed % 2:
                sides.reverse()
            for side, fn in sides:
                started = time.time()
                r = fn(task, seed, args, os.path.join(args.out, f"{side}-{task}-{seed}"))
                r.update(task=task, seed=seed, side=side, wall_seconds=time.time() - started)
                runs.append(r)
                print(f"{task:<7} seed {seed}  {side:<12}  accuracy {r['accuracy']:.4f}  "
                      f"macro F1 {r['macro_f1']:.4f}  {r['sentences_per_second']:.1f} "
                      f"sentences/s", flush=True)
    summary = {}
    print("\n| task | side | accuracy (per seed) | macro F1 (per seed) | sentences/s (mean) |")
    print("|---|---|---|---|---|")
    for task in args.tasks:
        summary[task] = {}
        for side in ("rust", "transformers"):
            rs = [r for r in runs if r["task"] == task and r["side"] == side]
            acc = [r["accuracy"] for r in rs]
            f1 = [r["macro_f1"] for r in rs]
            sps = statistics.mean(r["sentences_per_second"] for r in rs)
            summary[task][side] = {"accuracy": acc, "macro_f1": f1, "sentences_per_second": sps}
            print(f"| {task}: {TASKS[task]['what']} | {side} | "
                  f"{' / '.join(f'{a:.3f}' for a in acc)} | {' / '.join(f'{a:.3f}' for a in f1)} "
                  f"| {sps:.1f} |")
        ratio = (summary[task]["rust"]["sentences_per_second"]
                 / summary[task]["transformers"]["sentences_per_second"])
        summary[task]["speed_ratio"] = ratio
        print(f"| {task} | rust / transformers | | | {ratio:.2f}x |")
    with open(os.path.join(args.out, "..", "compare_hf.json"), "w") as f:
        json.dump({"runs": runs, "summary": summary, "epochs": args.epochs,
                   "seeds": args.seeds, "max_len": args.max_len}, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
