"""The transformers side of tests/families.rs: for one encoder family (roberta, xlm-roberta,
distilbert, electra, deberta-v2, modernbert), a real tokenizer trained on CoLA's sentences
(byte-level BPE as RoBERTa's, and as ModernBERT's with BERT's [CLS] template; a SentencePiece
Unigram with Metaspace as XLM-R's and DeBERTa-v3's; a lower-cased WordPiece as DistilBERT's and
ELECTRA's), small random models of every head built by transformers,
their token ids and logits on single texts and on pairs (padded batches), the sequence
classifier's loss and two AdamW steps; and (command `load`) what the Auto classes make of the
folders the Rust side saved.

usage: families.py reference --family F --cola TSV --out DIR --pairs N TEXT...
       families.py load --out DIR TEXT...
       families.py predict --out TRAINED_DIR --file PAIRS.csv --ours OUR_PREDICTIONS.csv
       families.py tokenizer --family F --cola TSV --out DIR
       families.py classes --out ANY --dirs SAVED_DIR,SAVED_DIR
       families.py fill --out MASKED_LM_DIR TEXT...
"""
import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (AutoConfig, AutoModelForMaskedLM, AutoModelForQuestionAnswering,
                          AutoModelForSequenceClassification, AutoModelForTokenClassification,
                          AutoTokenizer)

import heads  # noqa: E402  (tests/python, beside this script)

torch.set_num_threads(2)
HEADS = {"sequence": AutoModelForSequenceClassification, "token": AutoModelForTokenClassification,
         "qa": AutoModelForQuestionAnswering, "mlm": AutoModelForMaskedLM}
LABELS = {"sequence": ["no", "maybe", "yes"], "token": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]}


def sentences(tsv):
    with open(tsv, encoding="utf-8") as f:
        return [row.rstrip("\n").split("\t")[3] for row in f if row.strip()]


def unigram(lines, specials, unk):
    """A SentencePiece-style Unigram with Metaspace trained on `lines` (XLM-R's and DeBERTa-v3's
    kind), without its post-processor."""
    tk = Tokenizer(models.Unigram())
    tk.normalizer = normalizers.NFKC()
    tk.pre_tokenizer = pre_tokenizers.Metaspace()
    tk.decoder = decoders.Metaspace()
    tk.train_from_iterator(lines, trainers.UnigramTrainer(
        vocab_size=1000, special_tokens=specials, unk_token=unk))
    return tk


def bert_template(tk):
    """BERT's post-processor: [CLS] A [SEP], and B [SEP] with token type 1."""
    c, e = tk.token_to_id("[CLS]"), tk.token_to_id("[SEP]")
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", c), ("[SEP]", e)])


def tokenizer(family, lines):
    """A fast tokenizer of the family's kind trained on `lines`, as the Auto class loads it."""
    bert_specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    bert_names = dict(cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]",
                      mask_token="[MASK]")
    if family in ("roberta", "modernbert"):
        from transformers import RobertaTokenizerFast as Fast
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        if family == "modernbert":
            specials = bert_specials
        tk = Tokenizer(models.BPE())
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tk.decoder = decoders.ByteLevel()
        tk.train_from_iterator(lines, trainers.BpeTrainer(
            vocab_size=1000, special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        if family == "modernbert":
            # ModernBERT's tokenizer: byte-level BPE (OLMo's) with BERT's specials and template.
            from transformers import PreTrainedTokenizerFast
            bert_template(tk)
            return PreTrainedTokenizerFast(tokenizer_object=tk, **bert_names)
        tk.post_processor = processors.RobertaProcessing(
            ("</s>", tk.token_to_id("</s>")), ("<s>", tk.token_to_id("<s>")))
    elif family in ("distilbert", "electra"):
        from transformers import DistilBertTokenizerFast, ElectraTokenizerFast
        Fast = DistilBertTokenizerFast if family == "distilbert" else ElectraTokenizerFast
        tk = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tk.normalizer = normalizers.BertNormalizer(lowercase=True)
        tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tk.decoder = decoders.WordPiece()
        tk.train_from_iterator(lines, trainers.WordPieceTrainer(
            vocab_size=1000, special_tokens=bert_specials))
        bert_template(tk)
        return Fast(tokenizer_object=tk, **bert_names)
    elif family == "deberta-v2":
        from transformers import DebertaV2TokenizerFast
        tk = unigram(lines, bert_specials, "[UNK]")
        bert_template(tk)
        return DebertaV2TokenizerFast(tokenizer_object=tk, bos_token="[CLS]", eos_token="[SEP]",
                                      **bert_names)
    else:
        from transformers import XLMRobertaTokenizerFast as Fast
        tk = unigram(lines, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "<unk>")
        s, e = tk.token_to_id("<s>"), tk.token_to_id("</s>")
        tk.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
            special_tokens=[("<s>", s), ("</s>", e)])
    return Fast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", cls_token="<s>",
                sep_token="</s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>")


def config(family, tok, head):
    # Weights drawn wider than the default 0.02, so that attention is far from uniform and a
    # wrong score term (a position bucket, a mask) moves the logits well past the tolerance.
    extra = {"initializer_range": 0.2}
    if head in LABELS:
        names = LABELS[head]
        extra.update(id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    if family == "distilbert":
        return AutoConfig.for_model(
            family, vocab_size=len(tok), dim=32, n_layers=2, n_heads=4, hidden_dim=64,
            max_position_embeddings=130, pad_token_id=tok.pad_token_id, **extra)
    if family == "deberta-v2":
        # DeBERTa-v3's options at a small size: relative attention only (no absolute
        # positions, no token types), shared keys, c2p and p2c, 8 log buckets so that the
        # test sentences reach the logarithmic ones.
        return AutoConfig.for_model(
            family, vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
            num_attention_heads=4, intermediate_size=64, max_position_embeddings=130,
            type_vocab_size=0, relative_attention=True, position_buckets=8,
            max_relative_positions=64, pos_att_type=["p2c", "c2p"], share_att_key=True,
            norm_rel_ebd="layer_norm", position_biased_input=False, pooler_hidden_size=32,
            pooler_dropout=0, pooler_hidden_act="gelu", layer_norm_eps=1e-7,
            pad_token_id=tok.pad_token_id, **extra)
    if family == "modernbert":
        # Three layers: full, sliding, sliding (global_attn_every_n_layers 3); a window of 4
        # (2 either side), so every test sentence is longer than it; mean pooling, so the
        # sequence head reads every token's state.
        return AutoConfig.for_model(
            family, vocab_size=len(tok), hidden_size=32, num_hidden_layers=3,
            num_attention_heads=4, intermediate_size=48, max_position_embeddings=130,
            layer_types=["full_attention", "sliding_attention", "sliding_attention"],
            local_attention=4, classifier_pooling="mean", pad_token_id=tok.pad_token_id,
            cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id,
            bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, **extra)
    if family == "electra":
        # Embeddings narrower than the layers, as ELECTRA's small and generator models have
        # them: embeddings_project and the generator head's way back both run.
        return AutoConfig.for_model(
            family, vocab_size=len(tok), embedding_size=16, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=4, intermediate_size=64, max_position_embeddings=130,
            pad_token_id=tok.pad_token_id, **extra)
    return AutoConfig.for_model(
        family, vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=130, type_vocab_size=1,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, **extra)


def outputs(model, head, batch):
    with torch.no_grad():
        o = model(**batch)
    if head == "qa":
        return torch.stack([o.start_logits, o.end_logits], -1)
    return o.logits


def inputs(tok, texts, pairs, family):
    """Singles (all texts) and pairs (the first 2 * pairs texts, two by two), padded; token
    types only for the family that reads them (ELECTRA: BERT's two)."""
    single = tok(texts, padding=True, return_tensors="pt")
    firsts, seconds = texts[0:2 * pairs:2], texts[1:2 * pairs:2]
    pair = tok(firsts, seconds, padding=True, return_tensors="pt")
    for b in (single, pair):
        if family != "electra":
            b.pop("token_type_ids", None)
    return single, pair


def train_steps(model, batch, labels):
    """Two AdamW steps as tests/python/heads.py takes them (the Rust side's common::steps)."""
    return heads.train_steps(model, lambda m: m(**batch, labels=labels).loss, 2, 1e-3, 1.0, 1e-6)


def cmd_reference(args):
    tok = tokenizer(args.family, sentences(args.cola))
    tok.save_pretrained(args.out)
    if args.family == "deberta-v2":
        # transformers 5 rebuilds a DeBERTa-v2 tokenizer's pipeline when it loads one: the
        # reference is what a user loading the folder gets.
        tok = AutoTokenizer.from_pretrained(args.out)
    single, pair = inputs(tok, args.texts, args.pairs, args.family)
    out = {"single_ids": single["input_ids"], "single_mask": single["attention_mask"],
           "pair_ids": pair["input_ids"], "pair_mask": pair["attention_mask"]}
    meta = {"vocab_size": len(tok), "steps": {}}
    # Words already split, as run_ner reads them (a byte-level BPE with add_prefix_space, which
    # run_ner sets for RoBERTa).
    kwargs = {"add_prefix_space": True} if args.family == "roberta" else {}
    word_tok = AutoTokenizer.from_pretrained(args.out, **kwargs)
    if args.family == "modernbert":
        # transformers 5 loads ModernBERT's tokenizer as a TokenizersBackend, which ignores
        # add_prefix_space: split words would come out as "c", "at" for "cat". The pre-tokenizer
        # with the prefix space is what run_ner gets for RoBERTa, and what the Rust side does.
        word_tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    words = word_tok([t.split() for t in args.texts], is_split_into_words=True)
    meta["words"] = {"ids": words["input_ids"],
                     "word_ids": [words.word_ids(i) for i in range(len(args.texts))]}
    torch.manual_seed(0)
    models_ = {}
    for head, cls in HEADS.items():
        model = cls.from_config(config(args.family, tok, head))
        model.eval()
        models_[head] = model
        model.save_pretrained(os.path.join(args.out, head))
        tok.save_pretrained(os.path.join(args.out, head))
        out[f"{head}_single"] = outputs(model, head, single)
        out[f"{head}_pair"] = outputs(model, head, pair)
    if args.family == "modernbert":
        # The sequence head on [CLS] too (classifier_pooling "cls"; the model above pools the
        # mean): the path where the last layer, a sliding one, computes the first token only.
        cfg = config(args.family, tok, "sequence")
        cfg.classifier_pooling = "cls"
        model = HEADS["sequence"].from_config(cfg)
        model.eval()
        model.save_pretrained(os.path.join(args.out, "sequence-cls"))
        tok.save_pretrained(os.path.join(args.out, "sequence-cls"))
        out["sequence-cls_single"] = outputs(model, "sequence", single)
        out["sequence-cls_pair"] = outputs(model, "sequence", pair)
    # Every layer's attention probabilities of the sequence classifier on the singles, as
    # output_attentions gives them (eager attention, the only kind that returns them).
    eager = HEADS["sequence"].from_pretrained(os.path.join(args.out, "sequence"),
                                              attn_implementation="eager")
    eager.eval()
    with torch.no_grad():
        attentions = eager(**single, output_attentions=True).attentions
    meta["layers"] = len(attentions)
    out.update({f"attention_{i}": a.contiguous() for i, a in enumerate(attentions)})
    # The sequence classifier and the masked-LM head train two steps on the singles.
    labels = torch.tensor([i % 3 for i in range(len(args.texts))])
    out["sequence_labels"] = labels
    meta["steps"]["sequence"], after = train_steps(models_["sequence"], single, labels)
    out.update({f"sequence_after.{n}": p for n, p in after.items()})
    g = torch.Generator().manual_seed(3)
    chosen = (torch.rand(single["input_ids"].shape, generator=g) < 0.3) & single["attention_mask"].bool()
    chosen[:, 0] = False
    mlm_labels = torch.where(chosen, single["input_ids"], torch.full_like(single["input_ids"], -100))
    out["mlm_labels"] = mlm_labels
    meta["steps"]["mlm"], after = train_steps(models_["mlm"], single, mlm_labels)
    out.update({f"mlm_after.{n}": p for n, p in after.items()})
    save_file({k: v.contiguous() for k, v in out.items()},
              os.path.join(args.out, "reference.safetensors"))
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump(meta, f)


def cmd_load(args):
    """The Rust side's saved folders (saved-<head>) through the Auto classes."""
    saved = os.path.join(args.out, "saved-sequence")
    tok = AutoTokenizer.from_pretrained(saved)
    single, pair = inputs(tok, args.texts, args.pairs, AutoConfig.from_pretrained(saved).model_type)
    report, tensors = {}, {}
    for head, cls in HEADS.items():
        model, info = cls.from_pretrained(os.path.join(args.out, f"saved-{head}"),
                                          output_loading_info=True)
        model.eval()
        tensors[f"{head}_single"] = outputs(model, head, single).contiguous()
        tensors[f"{head}_pair"] = outputs(model, head, pair).contiguous()
        report[head] = {"class": type(model).__name__, "missing": sorted(info["missing_keys"]),
                        "unexpected": sorted(info["unexpected_keys"]),
                        "mismatched": [list(map(str, m)) for m in info["mismatched_keys"]]}
    save_file(tensors, os.path.join(args.out, "loaded.safetensors"))
    print(json.dumps(report))


def cmd_classes(args):
    """Each folder in --dirs through the Auto class of its task: the class transformers builds
    and what its load reported, as JSON."""
    report = {}
    for folder in args.dirs.split(","):
        config = AutoConfig.from_pretrained(folder)
        task = config.architectures[0]
        cls = next(c for name, c in [("ForSequenceClassification", AutoModelForSequenceClassification),
                                     ("ForTokenClassification", AutoModelForTokenClassification),
                                     ("ForQuestionAnswering", AutoModelForQuestionAnswering),
                                     ("ForMaskedLM", AutoModelForMaskedLM)] if task.endswith(name))
        model, info = cls.from_pretrained(folder, output_loading_info=True)
        report[folder] = {"class": type(model).__name__, "missing": sorted(info["missing_keys"]),
                          "unexpected": sorted(info["unexpected_keys"])}
    print(json.dumps(report))


def cmd_fill(args):
    """transformers' fill-mask pipeline on --out's model for each text: top 5 per text."""
    from transformers import pipeline
    fill = pipeline("fill-mask", model=args.out, device="cpu")
    print(json.dumps([[{"token": r["token"], "token_str": r["token_str"], "score": r["score"],
                        "sequence": r["sequence"]} for r in fill(t, top_k=5)]
                      for t in args.texts]))


def cmd_tokenizer(args):
    """Only the family's tokenizer, trained on CoLA and saved into --out."""
    tokenizer(args.family, sentences(args.cola)).save_pretrained(args.out)


def cmd_predict(args):
    """A folder the CLI trained, through the Auto classes: its class, and each row's label and
    score (softmax) for the sentence1/sentence2 pairs of a CSV file; with our predictions of
    the same file (--ours) read back beside them."""
    import csv
    with open(args.file, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    model = AutoModelForSequenceClassification.from_pretrained(args.out)
    tok = AutoTokenizer.from_pretrained(args.out)
    model.eval()
    batch = tok([r["sentence1"] for r in rows], [r["sentence2"] for r in rows], padding=True,
                truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        probs = model(**batch).logits.softmax(-1)
    score, best = probs.max(-1)
    with open(args.ours, encoding="utf-8", newline="") as f:
        ours = list(csv.DictReader(f))
    print(json.dumps({"architectures": model.config.architectures,
                      "labels": [model.config.id2label[int(i)] for i in best],
                      "scores": score.tolist(),
                      "ours_labels": [r["predicted_label"] for r in ours],
                      "ours_scores": [float(r["predicted_score"]) for r in ours]}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["reference", "load", "predict", "tokenizer", "classes",
                                      "fill"])
    p.add_argument("--dirs", help="classes: saved folders, comma-separated")
    p.add_argument("--file")
    p.add_argument("--ours", help="our predict --file output, read back for the comparison")
    p.add_argument("--family", default="roberta")
    p.add_argument("--cola")
    p.add_argument("--out", required=True)
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("texts", nargs="*")
    args = p.parse_intermixed_args()
    {"reference": cmd_reference, "load": cmd_load, "predict": cmd_predict,
     "tokenizer": cmd_tokenizer, "classes": cmd_classes,
     "fill": cmd_fill}[args.command](args)


if __name__ == "__main__":
    main()
