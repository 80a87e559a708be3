"""Small real own-data examples, made from CoLA 1.1 so they exist offline (setup runs this).

data/examples/ receives:
- cola_train.csv, cola_test.csv: CoLA as a user's CSV: `sentence,label` with the labels as
  words (acceptable / unacceptable); test is the out-of-domain set, as in the tutorial.
- source_train.csv, source_test.csv: a 3-class single-text task: which book or paper a
  sentence comes from (ks08 Kim & Sells, l-93 Levin, r-67 Ross), from the in-domain train and
  dev files.
- next_train.csv, next_test.csv: a pair task: `sentence1,sentence2,label`, label `next` when
  sentence2 follows sentence1 in its source (often a minimal pair), `other` when it is another
  sentence of the same source picked at random (seeded); 3,000 training pairs.
- people_train.jsonl, people_test.jsonl: token classification in Hugging Face's JSON lines
  (`tokens`, `ner_tags` as strings): words and punctuation of CoLA sentences, a person's name
  `B-PER`, a determiner (the, a, an, this, that, every, some, no) `B-DET` and the word after it
  `I-DET` (a determiner and its noun: a two-word entity). 2,000 training sentences (in-domain
  train), the in-domain dev set as test.
- who_train.jsonl, who_test.jsonl: extractive question answering in Hugging Face's flat JSON
  lines (`id`, `question`, `context`, `answers: {text, answer_start}`): the context is eight
  consecutive CoLA sentences; the question is one of them with its only name replaced by
  "who" ("Who gave the book to Mary?"), the answer that name where the sentence stands in the
  context. 1,500 training questions (in-domain train), those of the in-domain dev set as test.

Usage: python scripts/make_examples.py [--data data/cola_public] [--out data/examples]
"""
import argparse
import csv
import json
import os
import random
import re

SOURCES = ("ks08", "l-93", "r-67")
NAMES = {"John", "Mary", "Bill", "Kim", "Tom", "Fred", "Sally", "Medea", "Jason", "Susan",
         "Gilgamesh", "Lee", "Harry", "Sandy", "Anson", "Pat", "Ellen", "Jane", "Sam", "Sue",
         "Bob", "Frank", "Jack", "Helen", "Paula", "Heidi", "Calvin", "Jean", "Chris", "Peter",
         "Tony", "Martha", "Holly", "Sarah", "Max", "Dana", "Terry", "Louise", "Ronald"}
DETERMINERS = {"the", "a", "an", "this", "that", "every", "some", "no"}
WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?|[^\sA-Za-z0-9]")


def read(path):
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return [(r[0], int(r[1]), r[3]) for r in rows]


def write(path, header, rows):
    tmp = path + ".partial"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    os.replace(tmp, path)


def pairs(rows, seed):
    rng = random.Random(seed)
    by_source = {}
    for i, (src, _, s) in enumerate(rows):
        by_source.setdefault(src, []).append((i, s))
    out = []
    for i in range(len(rows) - 1):
        (src, _, a), (src2, _, b) = rows[i], rows[i + 1]
        if src != src2 or a == b:
            continue
        if rng.random() < 0.5:
            out.append((a, b, "next"))
        else:
            same = by_source[src]
            for _ in range(20):
                j, c = rng.choice(same)
                if abs(j - i) > 20 and c != a:
                    out.append((a, c, "other"))
                    break
    return out


def write_jsonl(path, records):
    tmp = path + ".partial"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def tagged(sentence):
    """A sentence's words and punctuation, with PER and DET tags (BIO)."""
    words = WORD.findall(sentence)
    tags = []
    for i, w in enumerate(words):
        if w in NAMES:
            tags.append("B-PER")
        elif w.lower() in DETERMINERS:
            tags.append("B-DET")
        elif i > 0 and tags[-1] == "B-DET" and w.isalpha():
            tags.append("I-DET")
        else:
            tags.append("O")
    return {"tokens": words, "ner_tags": tags}


def questions(sentences, prefix):
    """A "who" question for each sentence with exactly one name, about a context of eight
    sentences around it."""
    out = []
    for i, s in enumerate(sentences):
        found = [m for m in re.finditer(r"[A-Z][a-z]+", s) if m.group() in NAMES]
        if len(found) != 1 or not s.endswith("."):
            continue
        name = found[0]
        who = "Who" if name.start() == 0 else "who"
        question = s[:name.start()] + who + s[name.end():-1] + "?"
        first = max(0, min(i - 3, len(sentences) - 8))
        context_sentences = sentences[first:first + 8]
        k = i - first
        offset = sum(len(c) + 1 for c in context_sentences[:k])
        context = " ".join(context_sentences)
        start = offset + name.start()
        assert context[start:start + len(name.group())] == name.group()
        out.append({"id": f"{prefix}{i}", "question": question, "context": context,
                    "answers": {"text": [name.group()], "answer_start": [start]}})
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="data/cola_public")
    p.add_argument("--out", default="data/examples")
    args = p.parse_args()
    raw = os.path.join(args.data, "raw")
    train = read(os.path.join(raw, "in_domain_train.tsv"))
    dev = read(os.path.join(raw, "in_domain_dev.tsv"))
    ood = read(os.path.join(raw, "out_of_domain_dev.tsv"))
    os.makedirs(args.out, exist_ok=True)
    word = {0: "unacceptable", 1: "acceptable"}
    write(os.path.join(args.out, "cola_train.csv"), ["sentence", "label"],
          [(s, word[l]) for _, l, s in train])
    write(os.path.join(args.out, "cola_test.csv"), ["sentence", "label"],
          [(s, word[l]) for _, l, s in ood])
    for name, rows in (("train", train), ("test", dev)):
        write(os.path.join(args.out, f"source_{name}.csv"), ["sentence", "label"],
              [(s, src) for src, _, s in rows if src in SOURCES])
    train_pairs = pairs(train, 1)
    train_pairs = random.Random(3).sample(train_pairs, min(3000, len(train_pairs)))
    write(os.path.join(args.out, "next_train.csv"), ["sentence1", "sentence2", "label"],
          train_pairs)
    write(os.path.join(args.out, "next_test.csv"), ["sentence1", "sentence2", "label"],
          pairs(dev, 2))
    people = [tagged(s) for _, _, s in train]
    write_jsonl(os.path.join(args.out, "people_train.jsonl"),
                random.Random(4).sample(people, 2000))
    write_jsonl(os.path.join(args.out, "people_test.jsonl"), [tagged(s) for _, _, s in dev])
    who = questions([s for _, _, s in train], "train-")
    write_jsonl(os.path.join(args.out, "who_train.jsonl"),
                sorted(random.Random(5).sample(who, 1500), key=lambda q: int(q["id"][6:])))
    write_jsonl(os.path.join(args.out, "who_test.jsonl"),
                questions([s for _, _, s in dev], "dev-"))
    print(f"examples written to {args.out}")


if __name__ == "__main__":
    main()
