"""The reference side of tests/entities.rs: seqeval's entity scores (its default,
conlleval-compatible mode, as run_ner.py calls it) and SQuAD's official exact match and F1
(the functions of evaluate-v1.1.py and evaluate-v2.0.py, restated here as published) for the
cases in a JSON file. Prints one JSON object."""
import collections
import json
import re
import string
import sys

from seqeval.metrics import accuracy_score, classification_report
from seqeval.metrics.sequence_labeling import get_entities


def seqeval_case(case):
    truth, pred = case["truth"], case["pred"]
    report = classification_report(truth, pred, output_dict=True, zero_division=0)
    by_type = {k: v for k, v in report.items() if k not in ("micro avg", "macro avg", "weighted avg")}
    return {
        "entities": [[list(e) for e in get_entities(seq)] for seq in truth],
        "by_type": {k: [v["precision"], v["recall"], v["f1-score"], int(v["support"])]
                    for k, v in by_type.items()},
        "overall": [report["micro avg"][k] for k in ("precision", "recall", "f1-score")]
                   + [int(report["micro avg"]["support"])],
        "accuracy": accuracy_score(truth, pred),
    }


# evaluate-v1.1.py
def normalize_answer(s):
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def f1_v1(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def exact_v1(prediction, ground_truth):
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def squad_v1(predictions, answers):
    em = f1 = 0.0
    for p, gold in zip(predictions, answers):
        em += max(exact_v1(p, g) for g in gold)
        f1 += max(f1_v1(p, g) for g in gold)
    n = len(predictions)
    return {"exact": 100.0 * em / n, "f1": 100.0 * f1 / n}


# evaluate-v2.0.py
def get_tokens(s):
    if not s:
        return []
    return normalize_answer(s).split()


def compute_exact(a_gold, a_pred):
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold, a_pred):
    gold_toks = get_tokens(a_gold)
    pred_toks = get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def squad_v2(predictions, answers):
    exact, f1, has = [], [], []
    for p, gold in zip(predictions, answers):
        gold = [a for a in gold if normalize_answer(a)]
        has.append(bool(gold))
        if not gold:
            gold = ['']
        exact.append(max(compute_exact(a, p) for a in gold))
        f1.append(max(compute_f1(a, p) for a in gold))
    out = {"exact": 100.0 * sum(exact) / len(exact), "f1": 100.0 * sum(f1) / len(f1)}
    for name, keep in (("HasAns", True), ("NoAns", False)):
        idx = [i for i, h in enumerate(has) if h == keep]
        if idx:
            out[name] = [100.0 * sum(exact[i] for i in idx) / len(idx),
                         100.0 * sum(f1[i] for i in idx) / len(idx), len(idx)]
    return out


def main():
    cases = json.load(open(sys.argv[1]))
    out = {
        "seqeval": [seqeval_case(c) for c in cases["seqeval"]],
        "normalized": [normalize_answer(s) for s in cases["texts"]],
        # v1.1 has no unanswerable question: its script is run on the sets without one.
        "v1": [squad_v1(c["predictions"], c["answers"]) if all(c["answers"]) else None
               for c in cases["squad"]],
        "v2": [squad_v2(c["predictions"], c["answers"]) for c in cases["squad"]],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
