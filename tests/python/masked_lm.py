"""The transformers side of tests/masked_lm.rs: a small random BertForMaskedLM, its logits and
loss on real sentences with a fixed mask, two AdamW steps (the decoder tied to the word
embeddings), a checkpoint in the older layout (the decoder's weight and bias written out, and
the next-sentence head), and (command `load`) loading what the Rust side saved with
AutoModelForMaskedLM."""
import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from safetensors.torch import save_file
from transformers import AutoModelForMaskedLM, AutoTokenizer, BertConfig, BertForMaskedLM

from heads import train_steps

torch.set_num_threads(2)


def config():
    return BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=128)


def masked(tok, batch):
    """Every fourth real token that is not special becomes [MASK]; the labels keep its id."""
    ids = batch["input_ids"].clone()
    labels = torch.full_like(ids, -100)
    special = torch.tensor([[t in tok.all_special_ids for t in row] for row in ids.tolist()])
    chosen = (~special) & (batch["attention_mask"] == 1)
    chosen &= (torch.arange(ids.shape[1]) % 4 == 1).unsqueeze(0)
    labels[chosen] = ids[chosen]
    ids[chosen] = tok.mask_token_id
    return ids, labels


def cmd_reference(args):
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    padded = tok(args.sentences, padding=True, return_tensors="pt")
    ids, labels = masked(tok, padded)
    inputs = {"input_ids": ids, "attention_mask": padded["attention_mask"],
              "token_type_ids": padded["token_type_ids"]}
    torch.manual_seed(0)
    model = BertForMaskedLM(config())
    model.save_pretrained(os.path.join(args.out, "mlm"))
    tok.save_pretrained(os.path.join(args.out, "mlm"))
    # The layout of older checkpoints (bert-base-uncased's): the tied decoder written out
    # under its own names, and BertForPreTraining's next-sentence head beside it.
    old = os.path.join(args.out, "old_layout")
    os.makedirs(old, exist_ok=True)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"].clone()
    state["cls.predictions.decoder.bias"] = state.pop("cls.predictions.bias")
    state["cls.seq_relationship.weight"] = torch.randn(2, 32)
    state["cls.seq_relationship.bias"] = torch.zeros(2)
    save_file(state, os.path.join(old, "model.safetensors"), metadata={"format": "pt"})
    model.config.save_pretrained(old)
    tok.save_pretrained(old)
    model.eval()
    out = {**inputs, "labels": labels}
    with torch.no_grad():
        o = model(**inputs, labels=labels)
    out["logits"] = o.logits
    losses = {"mlm": float(o.loss)}
    steps, after = train_steps(model, lambda m: m(**inputs, labels=labels).loss, 2, 1e-3, 1.0, 1e-6)
    out.update({f"after.{n}": p for n, p in after.items()})
    assert "cls.predictions.decoder.weight" not in after, "transformers lists the tied weight once"
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(args.out, "reference.safetensors"))
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump({"losses": losses, "steps": steps}, f)


def cmd_load(args):
    """Loads the Rust side's saved folder with AutoModelForMaskedLM; reports what it says."""
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    padded = tok(args.sentences, padding=True, return_tensors="pt")
    model, info = AutoModelForMaskedLM.from_pretrained(os.path.join(args.out, "saved"),
                                                       output_loading_info=True)
    model.eval()
    with torch.no_grad():
        logits = model(**padded).logits
    tied = model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    save_file({"logits": logits.contiguous(), "attention_mask": padded["attention_mask"].contiguous()},
              os.path.join(args.out, "loaded.safetensors"))
    print(json.dumps({"class": type(model).__name__, "missing": sorted(info["missing_keys"]),
                      "unexpected": sorted(info["unexpected_keys"]),
                      "mismatched": [list(map(str, m)) for m in info["mismatched_keys"]],
                      "tied": tied}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["reference", "load"])
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("sentences", nargs="+")
    args = p.parse_args()
    {"reference": cmd_reference, "load": cmd_load}[args.command](args)


if __name__ == "__main__":
    main()
