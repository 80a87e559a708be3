"""`make bench ARGS=--families`: each encoder family's training step, Rust against PyTorch's
eager step of the same transformers model, on this machine, one run.

For every family a model of MiniLM's size (6 layers of 384, 12 heads, 1536 inner; MiniLM's
WordPiece vocabulary and tokenizer, so every side reads the same CoLA batches) is built at
random by transformers and saved; then `bert-finetune bench` times both sides on the same
batches (bucket padding, max length 64, batch 32, AdamW(fused=True) as transformers' Trainer
runs it), every side once per repeat, medians kept. Prints the table and writes
out/bench-families/families.json.

usage: bench_families.py [--families bert,roberta,modernbert,...] [--repeats N] [--steps N]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINILM = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
SIZE = dict(vocab_size=30522, pad_token_id=0)
BERT_SIZE = dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                 intermediate_size=1536, max_position_embeddings=512)
FAMILIES = {
    "bert": dict(BERT_SIZE, type_vocab_size=2),
    # RoBERTa numbers positions from pad_token_id + 1: 514 rows hold 512 tokens. Two token
    # types so that MiniLM's tokenizer (whose pairs' second type is 1) fits; singles use one.
    "roberta": dict(BERT_SIZE, max_position_embeddings=514, type_vocab_size=2),
    "distilbert": dict(dim=384, n_layers=6, n_heads=12, hidden_dim=1536,
                       max_position_embeddings=512),
    "electra": dict(BERT_SIZE, embedding_size=384, type_vocab_size=2),
    # DeBERTa-v3's options (microsoft/deberta-v3-base's config) at MiniLM's size.
    "deberta-v2": dict(BERT_SIZE, type_vocab_size=0, relative_attention=True,
                       position_buckets=256, max_relative_positions=-1,
                       pos_att_type=["p2c", "c2p"], share_att_key=True,
                       norm_rel_ebd="layer_norm", position_biased_input=False,
                       pooler_hidden_size=384, pooler_dropout=0, pooler_hidden_act="gelu",
                       layer_norm_eps=1e-7),
    # ModernBERT-base's options (global attention every third layer, a 128-token window, RoPE
    # bases 160k and 10k, mean pooling, no biases) at MiniLM's size; MiniLM's [CLS] and [SEP].
    "modernbert": dict(BERT_SIZE, classifier_pooling="mean", cls_token_id=101,
                       sep_token_id=102, bos_token_id=101, eos_token_id=102),
}


def build(family, out):
    """A random MiniLM-sized model of `family` with MiniLM's tokenizer, saved into `out`."""
    torch.manual_seed(0)
    config = AutoConfig.for_model(family, num_labels=2, **SIZE, **FAMILIES[family])
    AutoModelForSequenceClassification.from_config(config).save_pretrained(out)
    for name in ["tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"]:
        shutil.copy(os.path.join(MINILM, name), out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "bench-families"))
    ap.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release",
        "bert-finetune"))
    args = ap.parse_args()
    rows = []
    for family in args.families.split(","):
        if family not in FAMILIES:
            sys.exit(f"unknown family {family!r}: use {', '.join(FAMILIES)}")
        folder = os.path.join(args.out, family)
        model = os.path.join(folder, "model")
        build(family, model)
        print(f"== {family}: timing both sides", flush=True)
        subprocess.run([args.binary, "bench", "--cpu", "--model", model, "--max-len", "64",
                        "--paddings", "bucket", "--sides", "rust,pytorch-fused",
                        "--repeats", str(args.repeats), "--steps", str(args.steps),
                        "--out", folder], check=True)
        with open(os.path.join(folder, "bench.json")) as f:
            report = json.load(f)
        speeds = {r["side"]: r["sentences_per_second"] for r in report["rows"]}
        rows.append({"family": family, "rust": speeds["rust"],
                     "pytorch": speeds["pytorch-fused"],
                     "ratio": speeds["rust"] / speeds["pytorch-fused"]})
    print("\n| family | Rust sentences/s | PyTorch eager sentences/s | Rust / PyTorch |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['family']} | {r['rust']:.1f} | {r['pytorch']:.1f} | {r['ratio']:.2f}× |")
    with open(os.path.join(args.out, "families.json"), "w") as f:
        json.dump({"machine": f"{os.cpu_count()} cores", "rows": rows}, f, indent=1)
    print(f"\nwrote {os.path.join(args.out, 'families.json')}")


if __name__ == "__main__":
    main()
