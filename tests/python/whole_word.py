"""Whole-word masking as transformers' DataCollatorForLanguageModeling(whole_word_mask=True)
computes it, for tests/whole_word.rs.

words MODEL_DIR CORPUS.txt MAX_LEN: each non-blank line tokenized as run_mlm --line_by_line
    does (with offsets and the special-tokens mask), and per token whether the collator sees
    it start a word, and its word id (-1 for special tokens). Prints JSON.
expand FILE.json: {"word_ids": [[...]], "chosen": [[0/1...]]} per row: the collator's own
    expansion of chosen tokens to their whole words. Prints JSON.
"""
import json
import sys

import numpy as np
from transformers import AutoTokenizer, DataCollatorForLanguageModeling

mode = sys.argv[1]
if mode == "words":
    model, corpus, max_len = sys.argv[2], sys.argv[3], int(sys.argv[4])
    tokenizer = AutoTokenizer.from_pretrained(model)
    with open(corpus, encoding="utf-8") as f:
        lines = [l for l in f.read().split("\n") if len(l) > 0 and not l.isspace()]
    enc = tokenizer(lines, truncation=True, max_length=max_len, return_offsets_mapping=True,
                    return_special_tokens_mask=True)
    new_word, word_ids = [], []
    for offsets, special in zip(enc["offset_mapping"], enc["special_tokens_mask"]):
        ids, no_mask = DataCollatorForLanguageModeling._calc_word_ids_and_prob_mask(
            np.array([offsets]), np.array([special]))
        special = np.array(special, dtype=bool)
        new_word.append([int(x) for x in (~no_mask[0] & ~special)])
        word_ids.append([int(x) for x in ids[0]])
    print(json.dumps({"new_word": new_word, "word_ids": word_ids}))
else:
    data = json.load(open(sys.argv[2]))
    out = []
    for ids, chosen in zip(data["word_ids"], data["chosen"]):
        expanded = DataCollatorForLanguageModeling._whole_word_mask(
            np.array([ids]), np.array([chosen], dtype=bool))
        out.append([int(x) for x in expanded[0]])
    print(json.dumps(out))
