"""Reference values from PyTorch + transformers for the Rust parity tests.

Each sub-command writes its inputs and outputs to files the Rust test reads back, so the
numbers compared are always computed fresh from the same checkpoint, never pasted in.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from safetensors.torch import save_file
from transformers import (AutoTokenizer, BertConfig, BertForSequenceClassification,
                          BertModel)

torch.set_num_threads(2)


def read_sentences(tsv):
    with open(tsv, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t")[3] for line in f if line.strip()]


def cmd_tokenize(args):
    tok = AutoTokenizer.from_pretrained(args.model)
    sentences = read_sentences(args.data)
    ids = tok(sentences, add_special_tokens=True)["input_ids"]
    extra = {s: tok(s, truncation=True, max_length=args.max_len)["input_ids"] for s in args.extra}
    with open(args.out, "w") as f:
        json.dump({"ids": ids, "extra": extra}, f)


def forward_outputs(model, tok, sentences, out_dir):
    model.eval()
    batch = tok(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        base = model.bert(**batch)
        logits = model(**batch).logits
    save_file({
        "input_ids": batch["input_ids"].contiguous(),
        "attention_mask": batch["attention_mask"].contiguous(),
        "last_hidden_state": base.last_hidden_state.contiguous(),
        "pooler_output": base.pooler_output.contiguous(),
        "logits": logits.contiguous(),
    }, os.path.join(out_dir, "reference.safetensors"))


def save_and_run(model, tok, args):
    """Save model and tokenizer for the Rust side to load, then record the reference outputs."""
    model_dir = os.path.join(args.out, "model")
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    forward_outputs(model, tok, args.sentences, args.out)


def cmd_pretrained(args):
    """Load a checkpoint with a fresh head, save it (so Rust gets the same head), run it."""
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(args.model, num_labels=args.num_labels)
    save_and_run(model, AutoTokenizer.from_pretrained(args.model), args)


def cmd_random(args):
    """A randomly initialised BERT of the given shape, saved by transformers."""
    torch.manual_seed(1)
    model = BertForSequenceClassification(BertConfig(**json.loads(args.config)))
    save_and_run(model, AutoTokenizer.from_pretrained(args.tokenizer), args)


def cmd_logits(args):
    """Logits of a checkpoint (for example one saved by Rust) on the given sentences."""
    model = BertForSequenceClassification.from_pretrained(args.model)
    tok = AutoTokenizer.from_pretrained(args.model)
    forward_outputs(model, tok, args.sentences, args.out)
    batch = tok(args.sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model.eval()(**batch).logits
    print(json.dumps({"num_labels": model.config.num_labels,
                      "problem_type": model.config.problem_type,
                      "id2label": {str(k): v for k, v in model.config.id2label.items()},
                      "logits": logits.tolist()}))




def cmd_pairs(args):
    """transformers' pair encoding (truncation=True, longest_first) of the pairs in a JSON file,
    and, with --model, the logits of that checkpoint on them padded to the longest."""
    spec = json.load(open(args.pairs))
    tok = AutoTokenizer.from_pretrained(args.model or args.tokenizer)
    enc = tok(spec["first"], spec["second"], truncation=True, max_length=spec["max_len"])
    out = {"ids": enc["input_ids"], "type_ids": enc["token_type_ids"]}
    if args.model:
        model = BertForSequenceClassification.from_pretrained(args.model).eval()
        batch = tok(spec["first"], spec["second"], truncation=True, max_length=spec["max_len"],
                    padding=True, return_tensors="pt")
        with torch.no_grad():
            out["logits"] = model(**batch).logits.tolist()
    print(json.dumps(out))


def cmd_losses(args):
    """transformers' BertForSequenceClassification(labels=...) loss for each problem type in a
    JSON file, with the logits it computed them from."""
    spec = json.load(open(args.spec))
    tok = AutoTokenizer.from_pretrained(args.model)
    batch = tok(spec["sentences"], padding=True, return_tensors="pt")
    out = []
    for case in spec["cases"]:
        torch.manual_seed(0)
        model = BertForSequenceClassification.from_pretrained(
            args.model, num_labels=case["num_labels"], problem_type=case["problem_type"]).eval()
        labels = torch.tensor(case["labels"])
        with torch.no_grad():
            result = model(**batch, labels=labels)
        out.append({"logits": result.logits.tolist(), "loss": result.loss.item()})
    print(json.dumps(out))


def cmd_variants(args):
    """Checkpoints as they are found on the hub, each with reference outputs in fp32.

    pretraining: BertForPreTraining (masked-LM and next-sentence heads), as saved by
    transformers; legacy: the same with TF-era LayerNorm names (gamma/beta) and the tied
    decoder weight left out; fp16 and bf16: weights stored in half precision; three_labels: a
    fine-tuned 3-class classifier with its own label names and no num_labels field.
    Each folder gets reference.safetensors: outputs of BertForSequenceClassification loaded
    from it in fp32 (seeded head, whose weights are saved too).
    """
    from safetensors.torch import load_file
    from transformers import BertForPreTraining
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=48, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=96)
    torch.manual_seed(5)
    base = BertForPreTraining(config)
    with torch.no_grad():
        for name, p in base.named_parameters():
            if "LayerNorm" in name:
                p.add_(0.1 * torch.randn_like(p))
    def save(name, model, dtype=None):
        d = os.path.join(args.out, name)
        (model.to(dtype) if dtype else model).save_pretrained(d)
        tok.save_pretrained(d)
        return d
    save("pretraining", base)
    legacy = save("legacy", base)
    weights = os.path.join(legacy, "model.safetensors")
    tensors = {n.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): t
               for n, t in load_file(weights).items() if n != "cls.predictions.decoder.weight"}
    save_file(tensors, weights, metadata={"format": "pt"})
    import copy
    save("fp16", copy.deepcopy(base), torch.float16)
    save("bf16", copy.deepcopy(base), torch.bfloat16)
    torch.manual_seed(6)
    three = BertForSequenceClassification(BertConfig(
        **{k: v for k, v in config.to_dict().items() if k in ("vocab_size", "hidden_size",
           "num_hidden_layers", "num_attention_heads", "intermediate_size")},
        id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2}))
    save("three_labels", three)
    for name in ("pretraining", "legacy", "fp16", "bf16", "three_labels"):
        d = os.path.join(args.out, name)
        torch.manual_seed(0)
        model = BertForSequenceClassification.from_pretrained(d, dtype=torch.float32)
        model.eval()
        batch = tok(args.sentences, padding=True, return_tensors="pt")
        with torch.no_grad():
            out = model.bert(**batch)
            logits = model(**batch).logits
        save_file({
            "input_ids": batch["input_ids"].contiguous(),
            "attention_mask": batch["attention_mask"].contiguous(),
            "last_hidden_state": out.last_hidden_state.contiguous(),
            "pooler_output": out.pooler_output.contiguous(),
            "logits": logits.contiguous(),
            "classifier.weight": model.classifier.weight.detach().contiguous(),
            "classifier.bias": model.classifier.bias.detach().contiguous(),
        }, os.path.join(d, "reference.safetensors"))


def cmd_attentions(args):
    """Attention probabilities of every layer (output_attentions=True, eager attention)."""
    model = BertModel.from_pretrained(args.model, attn_implementation="eager")
    model.eval()
    tok = AutoTokenizer.from_pretrained(args.model)
    batch = tok(args.sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch, output_attentions=True)
    tensors = {f"attentions.{i}": a.contiguous() for i, a in enumerate(out.attentions)}
    tensors["input_ids"] = batch["input_ids"].contiguous()
    tensors["attention_mask"] = batch["attention_mask"].contiguous()
    tensors["token_type_ids"] = batch["token_type_ids"].contiguous()
    tensors["last_hidden_state"] = out.last_hidden_state.contiguous()
    save_file(tensors, os.path.join(args.out, "attentions.safetensors"))


def cmd_hub_outputs(args):
    """Outputs of a hub id loaded by transformers from the cache alone (HF_HUB_OFFLINE=1)."""
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(args.model, num_labels=2)
    forward_outputs(model, AutoTokenizer.from_pretrained(args.model), args.sentences, args.out)


def cmd_train_steps(args):
    """AdamW steps (weight decay on, clipping, linear schedule) without dropout.

    Saves the starting model, the batch, the loss and gradient norm of each step, and every
    parameter after the last step, for the Rust optimizer test.
    """
    from torch.nn.utils import clip_grad_norm_
    from transformers import get_linear_schedule_with_warmup
    torch.manual_seed(3)
    model = BertForSequenceClassification.from_pretrained(args.model, num_labels=2)
    cfg = model.config
    tok = AutoTokenizer.from_pretrained(args.model)
    model_dir = os.path.join(args.out, "model")
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    batch = tok(args.sentences, padding=True, return_tensors="pt")
    labels = torch.tensor([i % cfg.num_labels for i in range(len(args.sentences))])
    no_decay = ["bias", "LayerNorm.weight"]
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)],
         "weight_decay": args.weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)],
         "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=args.lr, eps=args.eps, betas=(0.9, 0.999))
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=0, num_training_steps=args.total)
    model.eval()  # dropout off, as in the Rust side of the test
    losses, norms = [], []
    for _ in range(args.steps):
        opt.zero_grad()
        loss = model(**batch, labels=labels).loss
        loss.backward()
        norms.append(float(clip_grad_norm_(model.parameters(), 1.0)))
        opt.step()
        sched.step()
        losses.append(float(loss))
    tensors = {n: p.detach().contiguous() for n, p in model.named_parameters()}
    tensors["input_ids"] = batch["input_ids"].contiguous()
    tensors["attention_mask"] = batch["attention_mask"].contiguous()
    tensors["labels"] = labels
    save_file(tensors, os.path.join(args.out, "after.safetensors"))
    with open(os.path.join(args.out, "steps.json"), "w") as f:
        json.dump({"losses": losses, "grad_norms": norms}, f)


def add_train_steps(sub):
    s = sub.add_parser("train-steps")
    s.add_argument("--model", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--lr", type=float, default=1e-2)
    s.add_argument("--weight-decay", type=float, default=0.01)
    s.add_argument("--eps", type=float, default=1e-8)
    s.add_argument("--steps", type=int, default=2)
    s.add_argument("--total", type=int, default=4)
    s.add_argument("sentences", nargs="+")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tokenize")
    t.add_argument("--model", required=True)
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--max-len", type=int, default=64)
    t.add_argument("--extra", nargs="*", default=[])
    for name in ("pretrained", "random", "logits", "variants", "hub-outputs", "attentions"):
        s = sub.add_parser(name)
        s.add_argument("--model")
        s.add_argument("--tokenizer")
        s.add_argument("--config")
        s.add_argument("--num-labels", type=int, default=2)
        s.add_argument("--out", required=True)
        s.add_argument("sentences", nargs="+")
    add_train_steps(sub)
    s = sub.add_parser("pairs")
    s.add_argument("--pairs", required=True)
    s.add_argument("--tokenizer")
    s.add_argument("--model")
    s = sub.add_parser("losses")
    s.add_argument("--model", required=True)
    s.add_argument("--spec", required=True)
    args = p.parse_args()
    {"tokenize": cmd_tokenize, "pretrained": cmd_pretrained, "random": cmd_random,
     "logits": cmd_logits, "train-steps": cmd_train_steps, "variants": cmd_variants,
     "hub-outputs": cmd_hub_outputs, "attentions": cmd_attentions, "pairs": cmd_pairs, "losses": cmd_losses}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
