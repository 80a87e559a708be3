"""PyTorch + transformers side of `make bench`: times training steps on the exact batches the
Rust side drew (read from the batches file `bert-finetune bench` writes), so both sides see the
same sentences, the same padding and the same widths.

Two optimizers, chosen with --optimizer:
  pytorch        as the tutorial writes it: torch.optim.AdamW(lr, eps) with the defaults
                 (foreach on CUDA, a per-tensor loop on the CPU) + clip_grad_norm_;
  pytorch-fused  torch.optim.AdamW(..., fused=True), transformers' Trainer default.
Prints one JSON line per padding: {"side", "padding", "sentences_per_second", ...}.
"""
import argparse
import json
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import (AutoConfig, AutoModelForSequenceClassification,
                          get_linear_schedule_with_warmup)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_batch(batch, pad_id, width, device):
    rows = len(batch["ids"])
    ids = torch.full((rows, width), pad_id, dtype=torch.long)
    mask = torch.zeros((rows, width), dtype=torch.long)
    for r, row in enumerate(batch["ids"]):
        row = row[:width]
        ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[r, : len(row)] = 1
    labels = torch.tensor(batch["labels"], dtype=torch.long)
    return ids.to(device), mask.to(device), labels.to(device)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", required=True, help="batches file written by `bert-finetune bench`")
    ap.add_argument("--model", help="checkpoint folder (default: the one named in the batches file)")
    ap.add_argument("--random-init", action="store_true",
                    help="a random-initialised model of the batches file's config (gpu-check)")
    ap.add_argument("--optimizer", choices=["pytorch", "pytorch-fused"], default="pytorch")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", choices=["fp32", "tf32", "bf16", "fp16"], default="fp32")
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    spec = json.load(open(args.batches))
    torch.set_float32_matmul_precision("high" if args.precision == "tf32" and device.type == "cuda"
                                      else "highest")
    # The Auto classes, so that a checkpoint of any family runs as its own transformers class
    # (`make bench ARGS=--families`).
    if args.random_init:
        config = AutoConfig.for_model("bert", **spec["config"], num_labels=2)
        model = AutoModelForSequenceClassification.from_config(config)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(args.model or spec["model"],
                                                                   num_labels=2)
    model.to(device).train()
    fused = args.optimizer == "pytorch-fused"
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, eps=1e-8, fused=fused or None)
    # fp16 as transformers' Trainer runs it: autocast to float16 and GradScaler's dynamic loss
    # scaling (unscale before clipping; a step with inf/NaN gradients is skipped).
    half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision)
    scaler = torch.amp.GradScaler(device.type, enabled=args.precision == "fp16")

    for run in spec["paddings"]:
        batches = [make_batch(b, spec["pad_id"], b["width"], device) for b in run["batches"]]
        warmup = run["warmup"]
        total = len(batches) + 1
        scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=0, num_training_steps=total)

        def step(ids, mask, labels):
            optimizer.zero_grad()
            with torch.autocast(device.type, dtype=half or torch.bfloat16, enabled=half is not None):
                logits = model(input_ids=ids, attention_mask=mask).logits
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            return loss

        for b in batches[:warmup]:
            step(*b)
        sync(device)
        t0 = time.perf_counter()
        seen = 0
        loss = None
        for b in batches[warmup:]:
            loss = step(*b)
            seen += len(b[2])
        if loss is not None:
            float(loss)
        sync(device)
        seconds = time.perf_counter() - t0
        print(json.dumps({
            "side": args.optimizer, "padding": run["padding"], "sentences": seen,
            "seconds": seconds, "sentences_per_second": seen / seconds,
            "padded_share": run["padded_share"], "threads": torch.get_num_threads(),
            "device": str(device), "precision": args.precision,
        }), flush=True)


if __name__ == "__main__":
    main()
