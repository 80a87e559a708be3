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

Usage: python scripts/make_examples.py [--data data/cola_public] [--out data/examples]
"""
import argparse
import csv
import os
import random

SOURCES = ("ks08", "l-93", "r-67")


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
    print(f"examples written to {args.out}")


if __name__ == "__main__":
    main()
