"""The transformers side of tests/heads.rs: small random BertForTokenClassification and
BertForQuestionAnswering models, their logits and losses on real sentences, two AdamW steps,
and (command `load`) loading what the Rust side saved with the Auto classes."""
import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from safetensors.torch import save_file
from transformers import (AutoModelForQuestionAnswering, AutoModelForTokenClassification,
                          AutoTokenizer, BertConfig, BertForQuestionAnswering,
                          BertForTokenClassification, BertModel,
                          get_linear_schedule_with_warmup)

torch.set_num_threads(2)
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def config(**extra):
    return BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=128, **extra)


def token_labels(batch):
    """A tag per position, -100 at padding, at [CLS] and at every third position."""
    g = torch.Generator().manual_seed(5)
    labels = torch.randint(0, len(TAGS), batch["input_ids"].shape, generator=g)
    labels[batch["attention_mask"] == 0] = -100
    labels[:, 0] = -100
    labels[:, 2::3] = -100
    return labels


def span_positions(batch, past_end):
    """Start/end per row. With `past_end` the last row's end lies past the window (clamped to
    the window's length, then ignored); without, its start is negative (clamped to 0)."""
    lengths = batch["attention_mask"].sum(1)
    start = torch.tensor([(i % (int(n) - 2)) + 1 for i, n in enumerate(lengths)])
    end = torch.minimum(start + 2, lengths - 1)
    if past_end:
        end[-1] = 999
    else:
        start[-1] = -3
    return start, end


def train_steps(model, loss_of, steps, lr, weight_decay, eps):
    from torch.nn.utils import clip_grad_norm_
    # The Trainer's rule: no decay on biases and on the weights of LayerNorm modules, whatever
    # they are called (BERT's `LayerNorm`, RoBERTa's `layer_norm`, ModernBERT's `mlp_norm`).
    norms = {f"{m}.{n}" if m else n for m, module in model.named_modules()
             if isinstance(module, torch.nn.LayerNorm) for n, _ in module.named_parameters()}
    no_decay = {n for n, _ in model.named_parameters() if n in norms or n.endswith("bias")}
    groups = [
        {"params": [p for n, p in model.named_parameters() if n not in no_decay],
         "weight_decay": weight_decay},
        {"params": [p for n, p in model.named_parameters() if n in no_decay],
         "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=lr, eps=eps, betas=(0.9, 0.999))
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=0, num_training_steps=4)
    model.eval()
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_of(model)
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    return losses, {n: p.detach().contiguous() for n, p in model.named_parameters()}


def cmd_reference(args):
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    padded = tok(args.sentences, padding=True, return_tensors="pt")
    torch.manual_seed(0)
    tagger = BertForTokenClassification(config(id2label=dict(enumerate(TAGS)),
                                               label2id={t: i for i, t in enumerate(TAGS)}))
    qa = BertForQuestionAnswering(config())
    base = BertModel(config())
    for name, model in (("token", tagger), ("qa", qa), ("base", base)):
        model.save_pretrained(os.path.join(args.out, name))
        tok.save_pretrained(os.path.join(args.out, name))
    tagger.eval()
    qa.eval()
    labels = token_labels(padded)
    start, end = span_positions(padded, past_end=False)
    out = {"input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"],
           "token_type_ids": padded["token_type_ids"], "token_labels": labels,
           "start_positions": start, "end_positions": end}
    losses = {}
    with torch.no_grad():
        t = tagger(**padded, labels=labels)
        out["token_logits"] = t.logits
        losses["token"] = float(t.loss)
        q = qa(**padded)
        out["start_logits"], out["end_logits"] = q.start_logits, q.end_logits
        # Row by row, without padding: the loss as transformers computes it.
        row_losses = []
        for i, sentence in enumerate(args.sentences):
            one = tok([sentence], return_tensors="pt")
            r = qa(**one, start_positions=start[i:i + 1], end_positions=end[i:i + 1])
            row_losses.append(float(r.loss))
        losses["qa_rows"] = row_losses
    steps = {}
    steps["token"], after = train_steps(
        tagger, lambda m: m(**padded, labels=labels).loss, 2, 1e-3, 1.0, 1e-6)
    out.update({f"token_after.{n}": p for n, p in after.items()})
    short = tok(args.sentences[:2], padding=True, return_tensors="pt")
    s_start, s_end = span_positions(short, past_end=True)
    out.update({"qa_step_input_ids": short["input_ids"],
                "qa_step_attention_mask": short["attention_mask"],
                "qa_step_start": s_start, "qa_step_end": s_end})
    # The two rows of the step batch have the same length, so no padding enters the loss.
    assert bool(short["attention_mask"].all()), "the QA step batch must have no padding"
    steps["qa"], after = train_steps(
        qa, lambda m: m(**short, start_positions=s_start, end_positions=s_end).loss,
        2, 1e-3, 1.0, 1e-6)
    out.update({f"qa_after.{n}": p for n, p in after.items()})
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(args.out, "reference.safetensors"))
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump({"losses": losses, "steps": steps}, f)


def cmd_load(args):
    """Loads the Rust side's saved folders with the Auto classes; reports what they say."""
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    padded = tok(args.sentences, padding=True, return_tensors="pt")
    report = {}
    tensors = {}
    for name, cls in (("token", AutoModelForTokenClassification),
                      ("qa", AutoModelForQuestionAnswering)):
        model, info = cls.from_pretrained(os.path.join(args.out, name), output_loading_info=True)
        model.eval()
        with torch.no_grad():
            o = model(**padded)
        if name == "token":
            tensors["token_logits"] = o.logits.contiguous()
        else:
            tensors["start_logits"] = o.start_logits.contiguous()
            tensors["end_logits"] = o.end_logits.contiguous()
        report[name] = {"class": type(model).__name__,
                        "missing": sorted(info["missing_keys"]),
                        "unexpected": sorted(info["unexpected_keys"]),
                        "mismatched": [list(map(str, m)) for m in info["mismatched_keys"]],
                        "id2label": {str(k): v for k, v in model.config.id2label.items()}}
    tensors["attention_mask"] = padded["attention_mask"].contiguous()
    save_file(tensors, os.path.join(args.out, "loaded.safetensors"))
    print(json.dumps(report))


def cmd_pipeline(args):
    """transformers' token-classification pipeline, aggregation "simple", on the tagger."""
    from transformers import pipeline
    tagger = pipeline("token-classification", model=os.path.join(args.out, "token"),
                      aggregation_strategy="simple", device="cpu")
    out = [[{"entity_group": e["entity_group"], "score": float(e["score"]),
             "start": int(e["start"]), "end": int(e["end"])} for e in tagger(s)]
           for s in args.sentences]
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["reference", "load", "pipeline"])
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("sentences", nargs="+")
    args = p.parse_args()
    {"reference": cmd_reference, "load": cmd_load, "pipeline": cmd_pipeline}[args.command](args)


if __name__ == "__main__":
    main()
