"""The PyTorch side of tests/amp.rs: a small random BERT classifier trained on given batches
with fp16 autocast on the CPU and `torch.amp.GradScaler("cpu")`, as transformers' Trainer
runs `fp16=True`: `scaler.scale(loss).backward()`, `unscale_`, `clip_grad_norm_`,
`scaler.step` (fused AdamW), `scaler.update()`, and the schedule stepped only when the
optimizer ran (the Trainer's `optimizer_was_run`).

    python amp.py init --out DIR                     # the random model, saved for both sides
    python amp.py train --model DIR --batches B.json --out DIR --init-scale S --growth-interval N

`train` writes per step the loss, the scale after `update()` and whether the step was
skipped (reference.json) and the final weights (reference.safetensors)."""
import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from safetensors.torch import save_file
from torch.nn.utils import clip_grad_norm_
from transformers import BertConfig, BertForSequenceClassification, get_linear_schedule_with_warmup

torch.set_num_threads(2)


def init(args):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=128,
                        max_position_embeddings=128, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(args.out)


def train(args):
    model = BertForSequenceClassification.from_pretrained(args.model)
    model.train()
    batches = json.load(open(args.batches))
    no_decay = ["bias", "LayerNorm.weight"]
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)],
         "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)],
         "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=args.lr, eps=1e-8, betas=(0.9, 0.999), fused=True)
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=0,
                                            num_training_steps=len(batches))
    scaler = torch.amp.GradScaler("cpu", init_scale=args.init_scale, growth_factor=2.0,
                                  backoff_factor=0.5, growth_interval=args.growth_interval)
    losses, scales, skipped = [], [], []
    for b in batches:
        ids, mask, types = (torch.tensor(b[k]) for k in ("input_ids", "attention_mask",
                                                          "token_type_ids"))
        labels = torch.tensor(b["labels"])
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.float16):
            logits = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        clip_grad_norm_(model.parameters(), 1.0)
        before = scaler.get_scale()
        scaler.step(opt)
        scaler.update()
        after = scaler.get_scale()
        ran = before <= after
        if ran:
            sched.step()
        losses.append(loss.item())
        scales.append(after)
        skipped.append(not ran)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()},
              os.path.join(args.out, "reference.safetensors"))
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump({"losses": losses, "scales": scales, "skipped": skipped}, f)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["init", "train"])
    p.add_argument("--model")
    p.add_argument("--batches")
    p.add_argument("--out", required=True)
    p.add_argument("--init-scale", type=float, default=65536.0)
    p.add_argument("--growth-interval", type=int, default=2000)
    p.add_argument("--lr", type=float, default=1e-3)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    {"init": init, "train": train}[args.command](args)


if __name__ == "__main__":
    main()
