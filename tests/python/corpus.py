"""Rows of a text corpus as run_mlm.py makes them, printed as JSON: transformers' fast
tokenizer, blank lines dropped and each line cut to max_len with --line_by_line; otherwise
every line tokenized whole, the ids of each 1,000 lines concatenated and cut into blocks of
max_len, the remainder of each 1,000 dropped (its group_texts under map(batched=True)).

usage: corpus.py MODEL_DIR CORPUS.txt lines|blocks MAX_LEN
"""
import json
import sys

from transformers import AutoTokenizer


def rows(tokenizer, lines, mode, max_len):
    """run_mlm's rows of `lines` (the file's lines, without their line breaks)."""
    if mode == "lines":
        kept = [line for line in lines if len(line) > 0 and not line.isspace()]
        return tokenizer(kept, truncation=True, max_length=max_len)["input_ids"]
    blocks = []
    for start in range(0, len(lines), 1000):
        ids = [i for row in tokenizer(lines[start:start + 1000])["input_ids"] for i in row]
        whole = len(ids) // max_len * max_len
        blocks += [ids[i:i + max_len] for i in range(0, whole, max_len)]
    return blocks


def read_lines(corpus):
    with open(corpus, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file's final line break ends the last line, it starts none
    return lines


if __name__ == "__main__":
    model, corpus, mode, max_len = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    print(json.dumps(rows(AutoTokenizer.from_pretrained(model), read_lines(corpus), mode,
                          max_len)))
