"""The tutorial's training run in PyTorch + transformers, as the yardstick for the Rust one.

Same checkpoint, same data files, same settings as `bert-finetune train` (AdamW lr 2e-5,
eps 1e-8, linear schedule without warm-up, clipping at 1.0, batch 32, max length 64, 90/10
split, 4 epochs, seed 42). `--bench N` only times N training steps and prints one JSON line.

    python scripts/reference_train.py --model models/all-MiniLM-L6-v2 --data data/cola_public
"""
import argparse
import json
import os
import random
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler, TensorDataset, random_split
from transformers import AutoTokenizer, BertForSequenceClassification, get_linear_schedule_with_warmup


def mcc(preds, labels):
    tp = sum(1 for p, l in zip(preds, labels) if p == 1 and l == 1)
    tn = sum(1 for p, l in zip(preds, labels) if p == 0 and l == 0)
    fp = sum(1 for p, l in zip(preds, labels) if p == 1 and l == 0)
    fn = sum(1 for p, l in zip(preds, labels) if p == 0 and l == 1)
    den = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
    return 0.0 if den == 0 else (tp * tn - fp * fn) / den


def load(path):
    rows = [line.rstrip("\n").split("\t") for line in open(path, encoding="utf-8") if line.strip()]
    return [r[3] for r in rows], [int(r[1]) for r in rows]


def encode(tok, sentences, labels, max_len, padding):
    enc = tok(sentences, padding=padding, truncation=True, max_length=max_len, return_tensors="pt")
    return TensorDataset(enc["input_ids"], enc["attention_mask"], torch.tensor(labels))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/all-MiniLM-L6-v2")
    ap.add_argument("--data", default="data/cola_public")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--padding", choices=["max_length", "longest"], default="max_length")
    ap.add_argument("--bench", type=int, default=0, help="only time this many training steps")
    ap.add_argument("--out", help="write a JSON summary here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    tok = AutoTokenizer.from_pretrained(args.model)
    sentences, labels = load(os.path.join(args.data, "raw/in_domain_train.tsv"))
    # Padding to the longest sentence of a batch happens in the collate function.
    pad = "max_length" if args.padding == "max_length" else "longest"
    dataset = encode(tok, sentences, labels, args.max_len, "max_length")
    n_train = int(0.9 * len(dataset))
    train_set, val_set = random_split(dataset, [n_train, len(dataset) - n_train],
                                      generator=torch.Generator().manual_seed(args.seed))

    def collate(rows):
        ids, mask, y = map(torch.stack, zip(*rows))
        if pad == "longest":
            width = int(mask.sum(1).max())
            ids, mask = ids[:, :width], mask[:, :width]
        return ids, mask, y

    train_loader = DataLoader(train_set, sampler=RandomSampler(train_set), batch_size=args.batch_size,
                              collate_fn=collate)
    val_loader = DataLoader(val_set, sampler=SequentialSampler(val_set), batch_size=args.batch_size,
                            collate_fn=collate)

    model = BertForSequenceClassification.from_pretrained(args.model, num_labels=2).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, eps=1e-8)
    total = len(train_loader) * args.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=0, num_training_steps=total)

    def step(batch):
        ids, mask, y = (t.to(device) for t in batch)
        optimizer.zero_grad()
        loss = model(input_ids=ids, attention_mask=mask, labels=y).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        return loss

    if args.bench:
        model.train()
        batches = iter(train_loader)
        step(next(batches))  # warm-up, not timed
        t0, seen = time.time(), 0
        for _ in range(args.bench):
            batch = next(batches)
            step(batch)
            seen += len(batch[2])
        float(next(model.parameters()).detach().view(-1)[0])
        secs = time.time() - t0
        print(json.dumps({"side": "python", "sentences": seen, "seconds": secs,
                          "sentences_per_second": seen / secs, "threads": torch.get_num_threads()}))
        return

    history = []
    start = time.time()
    for epoch in range(1, args.epochs + 1):
        print(f"\n======== Epoch {epoch} / {args.epochs} ========\nTraining...", flush=True)
        model.train()
        t0, losses = time.time(), []
        for i, batch in enumerate(train_loader):
            if i and i % 40 == 0:
                print(f"  Batch {i:>5}  of  {len(train_loader):>5}.    Elapsed: {time.time() - t0:.0f}s.", flush=True)
            losses.append(step(batch).item())
        train_secs = time.time() - t0
        model.eval()
        preds, gold = [], []
        with torch.no_grad():
            for ids, mask, y in val_loader:
                preds += model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.argmax(-1).tolist()
                gold += y.tolist()
        acc = sum(p == g for p, g in zip(preds, gold)) / len(gold)
        history.append({"epoch": epoch, "train_loss": sum(losses) / len(losses), "val_accuracy": acc,
                        "train_seconds": train_secs, "sentences_per_second": n_train / train_secs})
        print(f"  Average training loss: {history[-1]['train_loss']:.2f}\n  Accuracy: {acc:.2f}", flush=True)

    test_sentences, test_labels = load(os.path.join(args.data, "raw/out_of_domain_dev.tsv"))
    test_loader = DataLoader(encode(tok, test_sentences, test_labels, args.max_len, "max_length"),
                             batch_size=args.batch_size, collate_fn=collate)
    preds = []
    with torch.no_grad():
        for ids, mask, _ in test_loader:
            preds += model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.argmax(-1).tolist()
    summary = {"side": "python", "model": args.model, "seed": args.seed, "lr": args.lr,
               "test_mcc": mcc(preds, test_labels), "epochs": history,
               "total_seconds": time.time() - start}
    print(f"\nMCC: {summary['test_mcc']:.3f}")
    print(json.dumps(summary))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
