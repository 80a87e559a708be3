"""`make bench-data`: does a masked-LM run's memory grow with the corpus? Corpora of 0.3 M
and 3 M lines drawn from CoLA's sentences (seeded, with replacement), each trained from a
cold token cache for a few steps by `bert-finetune train --mlm --line-by-line` (one row a
line: the most rows a corpus of that size can make), with a fixed 200-line validation file so
that only the training corpus changes. Reported per corpus: lines, tokens, the token file's
size, tokenizing time, the seconds of the whole run from a cold cache (tokenizing, the steps, a
200-line validation, saving), of a one-step run from the warm cache (start, loading, one step,
validation, saving: the time to a first step and back), and the cold run's peak resident memory
(getrusage of the child). Writes out/bench_data.json.

usage: bench_data.py [--lines 300000,3000000] [--steps 20] [--out out]
"""
import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "bert-finetune"


def cola_sentences():
    path = Path(os.environ.get("COLA_DIR", ROOT / "data/cola_public")) / "raw/in_domain_train.tsv"
    return [line.split("\t")[3] for line in path.read_text(encoding="utf-8").splitlines() if line]


def write_corpus(path, n, sentences, seed):
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, n, 100_000):
            f.write("\n".join(rng.choice(sentences) for _ in range(min(100_000, n - start))))
            f.write("\n")


def run(args, log):
    """Runs the CLI alone; returns (seconds, peak RSS of this child in MiB, stdout)."""
    start = time.monotonic()
    done = subprocess.run([str(BIN), *args], capture_output=True, text=True)
    seconds = time.monotonic() - start
    # The largest child so far: the first run of each fresh process (see main) is its own.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    log.write(done.stdout + done.stderr)
    if done.returncode != 0:
        sys.exit(f"bert-finetune {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, peak / 1024, done.stdout


def measure(lines, steps, work):
    """One corpus, measured in this (fresh) process."""
    sentences = cola_sentences()
    corpus = work / f"corpus_{lines}.txt"
    write_corpus(corpus, lines, sentences, seed=lines)
    val = work / "val.txt"
    write_corpus(val, 200, sentences, seed=1)
    cache = work / f"cache_{lines}"
    common = ["train", "--mlm", "--line-by-line", "--train-file", str(corpus),
              "--validation-file", str(val), "--cache-dir", str(cache), "--max-len", "64",
              "--batch-size", "32", "--cpu"]
    with open(work / f"log_{lines}.txt", "w") as log:
        cold, peak, stdout = run(common + ["--max-steps", str(steps), "--out", str(work / "cold")], log)
    metas = [json.loads(m.read_text()) for m in cache.glob("*/meta.json")]
    meta = next(m for m in metas if m["fingerprint"]["sources"][0]["path"].endswith(corpus.name))
    return {
        "lines": lines,
        "rows": meta["rows"],
        "tokens": meta["tokens"],
        "token_file_mb": meta["tokens"] * meta["id_bytes"] / 2**20,
        "tokenize_s": meta["seconds"],
        "run_s_cold": cold,
        "steps": steps,
        "peak_rss_mib": peak,
    }


def first_step(lines, work):
    """Seconds to the end of the first step with the cache already built."""
    corpus = work / f"corpus_{lines}.txt"
    common = ["train", "--mlm", "--line-by-line", "--train-file", str(corpus),
              "--validation-file", str(work / "val.txt"), "--cache-dir", str(work / f"cache_{lines}"),
              "--max-len", "64", "--batch-size", "32", "--cpu", "--max-steps", "1",
              "--out", str(work / "warm")]
    with open(work / f"log_{lines}_warm.txt", "w") as log:
        seconds, _, stdout = run(common, log)
    assert "reused the token cache" in stdout, stdout
    return seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", default="300000,3000000")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", default="out")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child measuring one corpus, so getrusage sees this corpus alone
        work = Path(args.work)
        row = measure(args.one, args.steps, work)
        row["first_step_s_warm"] = first_step(args.one, work)
        print(json.dumps(row))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(dir=out) as work:
        for n in [int(x) for x in args.lines.split(",")]:
            print(f"[bench-data] {n:,} lines ...", flush=True)
            child = subprocess.run(
                [sys.executable, __file__, "--one", str(n), "--work", work, "--steps", str(args.steps)],
                capture_output=True, text=True)
            if child.returncode != 0:
                sys.exit(child.stdout + child.stderr)
            rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
    header = ("| lines | rows | tokens | token file | tokenizing | cold run ({} steps) | 1-step run, "
              "warm cache | peak RSS |".format(args.steps))
    print(header)
    print("|" + "---|" * 8)
    for r in rows:
        print(f"| {r['lines']:,} | {r['rows']:,} | {r['tokens']:,} | {r['token_file_mb']:.1f} MB | "
              f"{r['tokenize_s']:.1f} s | {r['run_s_cold']:.1f} s | {r['first_step_s_warm']:.1f} s | "
              f"{r['peak_rss_mib']:.0f} MiB |")
    if len(rows) >= 2:
        ratio = rows[-1]["peak_rss_mib"] / rows[0]["peak_rss_mib"]
        print(f"peak RSS, {rows[-1]['lines']:,} lines / {rows[0]['lines']:,} lines: {ratio:.2f}x")
    (out / "bench_data.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
