"""Our CLI and transformers' Trainer side by side on the same files and checkpoint
(`make compare-hf`), on four tasks from data/examples/ (see scripts/make_examples.py):

- `source`: a 3-class single-text task (which source a sentence comes from), CSV;
- `next`: a 2-class pair task (does sentence2 follow sentence1?), CSV;
- `people`: token classification (BIO tags B-PER, B-DET, I-DET, O), JSON lines of `tokens` and
  `ner_tags`, as transformers' examples/pytorch/token-classification/run_ner.py runs it: words
  tokenized with is_split_into_words, the first piece of each word labelled with its word's tag
  and later pieces and specials -100 (label_all_tokens off), tags = the sorted tags of the
  training file, AutoModelForTokenClassification, DataCollatorForTokenClassification; scored
  with seqeval (default mode) on the test file: entity precision, recall and F1;
- `who`: extractive question answering, flat SQuAD JSON lines (id, question, context, answers),
  as examples/pytorch/question-answering/run_qa.py runs it: windows of --max-len tokens
  (question + context, truncation="only_second") overlapping by --doc-stride (32) tokens, each
  labelled with the answer's start/end token, or the [CLS] token when the answer is not wholly
  inside it; AutoModelForQuestionAnswering; on the test file the best span over all windows of
  a question, as utils_qa.postprocess_qa_predictions finds it (n_best 20, answers of at most
  30 tokens; tests/python/qa.py), scored with SQuAD v1.1 exact match and F1 (0-100).
  run_qa pads every window to max_length by default; here both sides pad dynamically
  (DataCollatorWithPadding on the Trainer's side, our bucket padding), so neither pays for
  padding the other does not.

- `mlm`: masked-LM adaptation as examples/pytorch/language-modeling/run_mlm.py runs it, on
  CoLA's 8,551 training sentences as a corpus (one a line) and its 1,043 dev sentences
  (in- and out-of-domain) as the validation file: every line tokenized, the ids of each
  1,000 lines concatenated and cut into blocks of --max-len (tests/python/corpus.py), 15 % of
  the tokens masked 80/10/10 by DataCollatorForLanguageModeling, freshly every epoch;
  AutoModelForMaskedLM (MiniLM ships no pre-training head, so both sides start one as
  transformers initialises it); scored by validation perplexity (exp of the loss) and the
  accuracy of the masked tokens, as run_mlm reports them; throughput in tokens (blocks times
  --max-len, every block being full). Ours: `train --mlm` on the same files.

The recipe on both sides: the Trainer's defaults (AdamW lr 5e-5, batch 8, 3 epochs, linear
decay, no warmup, dynamic padding) with group_by_length sampling (transformers 5:
`train_sampling_strategy="group_by_length"`), evaluation, saving and logging off; ours with the
same settings and `--padding bucket` (our group_by_length), the test file as validation and test
file. Both train on the whole training file (or its first --limit rows/questions) and are
scored on the test file; two seeds a side, the side that runs first alternating by seed.

Prints a table per task and writes out/compare_hf.json (per run: a `metrics` dict and the
training throughput). Throughput counts training only: the Trainer's train_samples_per_second
with evaluation off; ours, the rows trained per epoch (history.json's train_size) times the
epochs over the epochs' training time, validation excluded. It counts sentences (or pairs) for
the classification and tagging tasks and windows (features) for `who`: the Trainer's samples
are its features, and our history.json's train_size for QA is the windows (summary.json's
train_windows; its train_size is the questions).

Usage: python scripts/compare_hf.py [--seeds 42 43] [--epochs 3] [--tasks source next people who mlm]
       [--limit N: train on the first N rows/questions only, a quick check of the plumbing]
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
from seqeval import metrics as seqeval
from sklearn.metrics import accuracy_score, f1_score
from transformers import (AutoModelForMaskedLM, AutoModelForQuestionAnswering,
                          AutoModelForTokenClassification, AutoTokenizer,
                          BertForSequenceClassification, DataCollatorForLanguageModeling,
                          DataCollatorForTokenClassification, DataCollatorWithPadding, Trainer,
                          TrainingArguments, set_seed)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# run_qa's window preparation and utils_qa's post-processing, and SQuAD v1.1's scores: the
# repository's own restatements, which the Rust tests are checked against.
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
from corpus import rows as corpus_rows  # noqa: E402
from entities import squad_v1  # noqa: E402
from qa import answers as qa_answers, windows as qa_windows  # noqa: E402

DOC_STRIDE = 32
TASKS = {
    "source": {"kind": "classify", "ext": "csv", "texts": ["sentence"],
               "what": "3-class single text (which source)"},
    "next": {"kind": "classify", "ext": "csv", "texts": ["sentence1", "sentence2"],
             "what": "pair, 2 classes (next sentence?)"},
    "people": {"kind": "tags", "ext": "jsonl", "what": "token classification (PER, DET; BIO)"},
    "who": {"kind": "qa", "ext": "jsonl", "what": f"extractive QA (windows, stride {DOC_STRIDE})"},
    "mlm": {"kind": "mlm", "ext": "txt", "what": "masked-LM adaptation (run_mlm's blocks)"},
}
# Per kind: the metrics (key, column name), their format and what the throughput counts.
KINDS = {
    "classify": {"metrics": [("accuracy", "accuracy"), ("macro_f1", "macro F1")],
                 "format": "{:.3f}", "unit": "sentences"},
    "tags": {"metrics": [("precision", "entity P"), ("recall", "entity R"), ("f1", "entity F1")],
             "format": "{:.3f}", "unit": "sentences"},
    "qa": {"metrics": [("exact", "EM"), ("f1", "F1")], "format": "{:.1f}", "unit": "windows"},
    "mlm": {"metrics": [("perplexity", "perplexity"), ("accuracy", "masked accuracy")],
            "format": "{:.3f}", "unit": "tokens"},
}


def files(task, args):
    if task == "mlm":
        return mlm_corpus(args)
    ext = TASKS[task]["ext"]
    return (os.path.join(args.examples, f"{task}_train.{ext}"),
            os.path.join(args.examples, f"{task}_test.{ext}"))


def mlm_corpus(args):
    """CoLA's sentences as a corpus, one a line: the training split, and both dev splits for
    validation (written once under --out)."""
    raw = os.path.join(args.cola, "raw")
    paths = (os.path.join(args.out, "mlm_train.txt"), os.path.join(args.out, "mlm_validation.txt"))
    for path, splits in zip(paths, (["in_domain_train"], ["in_domain_dev", "out_of_domain_dev"])):
        if not os.path.exists(path):
            lines = []
            for split in splits:
                with open(os.path.join(raw, f"{split}.tsv"), encoding="utf-8") as f:
                    lines += [row.rstrip("\n").split("\t")[3] for row in f if row.strip()]
            with open(path, "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))
    return paths


def read_csv(path):
    """The columns of a CSV file, as lists of strings."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [r[k] for r in rows] for k in rows[0]}


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def first(rows, limit):
    return rows if limit is None else rows[:limit]


class Rows(torch.utils.data.Dataset):
    def __init__(self, enc, labels):
        self.enc, self.labels = enc, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        item = {k: v[i] for k, v in self.enc.items()}
        item["labels"] = int(self.labels[i])
        return item


def trainer_for(model, collator, train, seed, args, out, sampling="group_by_length"):
    targs = TrainingArguments(
        output_dir=out, num_train_epochs=args.epochs, seed=seed,
        train_sampling_strategy=sampling,
        eval_strategy="no", save_strategy="no", report_to=[], logging_strategy="no",
        use_cpu=True, disable_tqdm=True)
    return Trainer(model=model, args=targs, train_dataset=train, data_collator=collator)


def speed(result):
    return {"examples_per_second": result.metrics["train_samples_per_second"],
            "train_seconds": result.metrics["train_runtime"]}


def hf_classify(task, seed, args, out):
    spec = TASKS[task]
    train_file, test_file = files(task, args)
    train, test = read_csv(train_file), read_csv(test_file)
    names = sorted(set(train["label"]))
    ids = {n: i for i, n in enumerate(names)}
    if args.limit is not None:
        train = {k: v[:args.limit] for k, v in train.items()}
    tok = AutoTokenizer.from_pretrained(args.model)

    def encode(frame):
        texts = [frame[c] for c in spec["texts"]]
        return tok(*texts, truncation=True, max_length=args.max_len)

    set_seed(seed)
    model = BertForSequenceClassification.from_pretrained(
        args.model, num_labels=len(names), id2label=dict(enumerate(names)), label2id=ids)
    train_rows = Rows(encode(train), [ids[l] for l in train["label"]])
    test_rows = Rows(encode(test), [ids[l] for l in test["label"]])
    trainer = trainer_for(model, DataCollatorWithPadding(tok), train_rows, seed, args, out)
    result = trainer.train()
    # With group_by_length the Trainer's evaluation sampler reorders the rows too, so the
    # labels to compare with are the ones it returns, in its order.
    pred = trainer.predict(test_rows)
    preds = pred.predictions.argmax(-1)
    truth = np.asarray(pred.label_ids)
    return {"metrics": {"accuracy": accuracy_score(truth, preds),
                        "macro_f1": f1_score(truth, preds, average="macro")}, **speed(result)}


def hf_tags(task, seed, args, out):
    train_file, test_file = files(task, args)
    train, test = read_jsonl(train_file), read_jsonl(test_file)
    names = sorted({t for r in train for t in r["ner_tags"]})
    ids = {n: i for i, n in enumerate(names)}
    train = first(train, args.limit)
    tok = AutoTokenizer.from_pretrained(args.model)

    def encode(rows):
        """run_ner's tokenize_and_align_labels with label_all_tokens off."""
        enc = tok([r["tokens"] for r in rows], is_split_into_words=True, truncation=True,
                  max_length=args.max_len)
        feats = []
        for i, r in enumerate(rows):
            labels, previous = [], None
            for word in enc.word_ids(batch_index=i):
                if word is None or word == previous:
                    labels.append(-100)
                else:
                    labels.append(ids[r["ner_tags"][word]])
                previous = word
            feats.append({**{k: v[i] for k, v in enc.items()}, "labels": labels})
        return feats

    set_seed(seed)
    model = AutoModelForTokenClassification.from_pretrained(
        args.model, num_labels=len(names), id2label=dict(enumerate(names)), label2id=ids)
    trainer = trainer_for(model, DataCollatorForTokenClassification(tok), encode(train),
                          seed, args, out)
    result = trainer.train()
    # As above the sentences come back reordered, each with its labels.
    pred = trainer.predict(encode(test))
    truth, tags = [], []
    for p, l in zip(pred.predictions.argmax(-1), pred.label_ids):
        keep = l != -100
        truth.append([names[i] for i in l[keep]])
        tags.append([names[i] for i in p[keep]])
    return {"metrics": {"precision": seqeval.precision_score(truth, tags),
                        "recall": seqeval.recall_score(truth, tags),
                        "f1": seqeval.f1_score(truth, tags)}, **speed(result)}


def qa_case(rows, args):
    """Flat SQuAD records in tests/python/qa.py's shape."""
    return {"tokenizer": args.model, "max_len": args.max_len, "stride": DOC_STRIDE,
            "examples": [{"question": r["question"], "context": r["context"],
                          "answers": [{"text": t, "start": s} for t, s in
                                      zip(r["answers"]["text"], r["answers"]["answer_start"])]}
                         for r in rows]}


def hf_qa(task, seed, args, out):
    train_file, test_file = files(task, args)
    train, test = first(read_jsonl(train_file), args.limit), read_jsonl(test_file)
    tok = AutoTokenizer.from_pretrained(args.model)

    def features(wins, labelled):
        feats = []
        for w in wins:
            f = {"input_ids": w["ids"], "token_type_ids": w["type_ids"],
                 "attention_mask": [1] * len(w["ids"])}
            if labelled:
                f.update(start_positions=w["start"], end_positions=w["end"])
            feats.append(f)
        return feats

    set_seed(seed)
    model = AutoModelForQuestionAnswering.from_pretrained(args.model)
    # prepare_train_features: windows and their answer's start/end token (or [CLS]).
    train_windows = qa_windows(qa_case(train, args))
    trainer = trainer_for(model, DataCollatorWithPadding(tok),
                          features(train_windows, True), seed, args, out)
    result = trainer.train()
    # prepare_validation_features: the same windows, offsets kept for context tokens only.
    # Predict in window order (the group_by_length evaluation sampler would shuffle the
    # windows, and post-processing needs to know which logits are which window's).
    trainer.args.train_sampling_strategy = "sequential"
    case = qa_case(test, args)
    test_windows = qa_windows(case)
    pred = trainer.predict(features(test_windows, False))
    start_logits, end_logits = pred.predictions
    case.update(features=[{"example": w["example"], "offsets": w["offsets"]}
                          for w in test_windows],
                start_logits=start_logits.tolist(), end_logits=end_logits.tolist(),
                n_best=20, max_answer_len=30, with_no_answer=False, null_threshold=0.0)
    texts = [a["text"] for a in qa_answers(case)]
    scores = squad_v1(texts, [r["answers"]["text"] for r in test])
    return {"metrics": {"exact": scores["exact"], "f1": scores["f1"]}, **speed(result)}


def hf_mlm(task, seed, args, out):
    """run_mlm: blocks of --max-len, the collator's masks, perplexity = exp(eval loss)."""
    train_file, validation_file = files(task, args)
    tok = AutoTokenizer.from_pretrained(args.model)

    def blocks(path):
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")[:-1]
        return [{"input_ids": ids} for ids in corpus_rows(tok, lines, "blocks", args.max_len)]

    train, validation = blocks(train_file), blocks(validation_file)
    if args.limit is not None:
        train = train[:args.limit]
    set_seed(seed)
    model = AutoModelForMaskedLM.from_pretrained(args.model)
    collator = DataCollatorForLanguageModeling(tok, mlm_probability=0.15)
    # run_mlm samples at random (it has no group_by_length), as every block is full anyway.
    trainer = trainer_for(model, collator, train, seed, args, out, sampling="random")
    result = trainer.train()
    # run_mlm's compute_metrics: the accuracy of the masked tokens' arg-max.
    trainer.preprocess_logits_for_metrics = lambda logits, labels: logits.argmax(dim=-1)

    def masked_accuracy(p):
        keep = p.label_ids != -100
        return {"accuracy": float((p.predictions[keep] == p.label_ids[keep]).mean())}

    trainer.compute_metrics = masked_accuracy
    scores = trainer.evaluate(validation)
    metrics = {"perplexity": float(np.exp(scores["eval_loss"])),
               "accuracy": scores["eval_accuracy"]}
    tokens = result.metrics["train_samples_per_second"] * args.max_len
    return {"metrics": metrics, "examples_per_second": tokens,
            "train_seconds": result.metrics["train_runtime"]}


def rust_run(task, seed, args, out):
    spec = TASKS[task]
    train, test = files(task, args)
    cmd = [args.binary, "train", "--model", args.model, "--train-file", train,
           "--validation-file", test]
    if spec["kind"] == "mlm":
        cmd += ["--mlm", "--cache-dir", os.path.join(args.out, "token-cache")]
    else:
        cmd += ["--test-file", test]
    if spec["kind"] == "classify":
        cmd += ["--text-columns", ",".join(spec["texts"])]
    if spec["kind"] == "qa":
        cmd += ["--doc-stride", str(DOC_STRIDE)]
    cmd += ["--epochs", str(args.epochs), "--batch-size", "8", "--lr", "5e-5",
            "--max-len", str(args.max_len), "--seed", str(seed), "--cpu", "--out", out]
    if spec["kind"] != "mlm":
        cmd += ["--padding", "bucket"]
    if args.limit is not None:
        cmd += ["--limit", str(args.limit)]
    print("  $ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    summary = json.load(open(os.path.join(out, "summary.json")))
    history = json.load(open(os.path.join(out, "history.json")))
    if spec["kind"] == "qa":
        # Windows, as the Trainer's samples are: history's train_size is summary's
        # train_windows (summary's own train_size is the questions).
        assert history["train_size"] == summary["train_windows"], (history["train_size"],
                                                                     summary["train_windows"])
    trained = history["train_size"] * len(history["epochs"])
    seconds = sum(e["train_seconds"] for e in history["epochs"])
    if spec["kind"] == "mlm":
        # The last epoch's validation figures (its blocks are all --max-len tokens long).
        trained *= args.max_len
        metrics = {key: history["epochs"][-1]["val_metrics"][key]
                   for key, _ in KINDS["mlm"]["metrics"]}
    else:
        metrics = {key: summary[f"test_{key}"] for key, _ in KINDS[spec["kind"]]["metrics"]}
    return {"metrics": metrics, "examples_per_second": trained / seconds,
            "train_seconds": seconds}


HF_RUNS = {"classify": hf_classify, "tags": hf_tags, "qa": hf_qa, "mlm": hf_mlm}


def table(task, runs):
    """A task's markdown table: its metrics per seed, mean throughput, and the speed ratio."""
    kind = KINDS[TASKS[task]["kind"]]
    summary = {}
    print(f"\n`{task}`: {TASKS[task]['what']}\n")
    print("| side | " + " | ".join(f"{name} (per seed)" for _, name in kind["metrics"])
          + f" | {kind['unit']}/s (mean) |")
    print("|---" * (len(kind["metrics"]) + 2) + "|")
    for side in ("rust", "transformers"):
        rs = [r for r in runs if r["task"] == task and r["side"] == side]
        summary[side] = {key: [r["metrics"][key] for r in rs] for key, _ in kind["metrics"]}
        summary[side]["examples_per_second"] = statistics.mean(
            r["examples_per_second"] for r in rs)
        cells = [" / ".join(kind["format"].format(v) for v in summary[side][key])
                 for key, _ in kind["metrics"]]
        print(f"| {side} | " + " | ".join(cells)
              + f" | {summary[side]['examples_per_second']:.1f} |")
    summary["speed_ratio"] = (summary["rust"]["examples_per_second"]
                              / summary["transformers"]["examples_per_second"])
    summary["unit"] = kind["unit"]
    print("| rust / transformers |" + " |" * len(kind["metrics"])
          + f" {summary['speed_ratio']:.2f}x |")
    return summary


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 43])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--limit", type=int, default=None,
                   help="train on the first N rows (questions for `who`) only, as our --limit "
                        "does: a quick check of the plumbing (source_train.csv is in label "
                        "order, so its first rows are all one class)")
    p.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    p.add_argument("--examples", default=os.path.join(ROOT, "data", "examples"))
    p.add_argument("--cola", default=os.path.join(ROOT, "data", "cola_public"))
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
        kind = KINDS[TASKS[task]["kind"]]
        for seed in args.seeds:
            # Alternate the order so neither side always runs on a warmer machine.
            sides = [("rust", rust_run), ("transformers", HF_RUNS[TASKS[task]["kind"]])]
            if seed % 2:
                sides.reverse()
            for side, fn in sides:
                started = time.time()
                r = fn(task, seed, args, os.path.join(args.out, f"{side}-{task}-{seed}"))
                r.update(task=task, seed=seed, side=side, unit=kind["unit"],
                         wall_seconds=time.time() - started)
                runs.append(r)
                figures = "  ".join(f"{name} {r['metrics'][key]:.4f}"
                                    for key, name in kind["metrics"])
                print(f"{task:<7} seed {seed}  {side:<12}  {figures}  "
                      f"{r['examples_per_second']:.1f} {kind['unit']}/s", flush=True)
    summary = {task: table(task, runs) for task in args.tasks}
    with open(os.path.join(args.out, "..", "compare_hf.json"), "w") as f:
        json.dump({"runs": runs, "summary": summary, "epochs": args.epochs,
                   "seeds": args.seeds, "max_len": args.max_len, "doc_stride": DOC_STRIDE,
                   "limit": args.limit}, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
