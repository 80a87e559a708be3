"""The reference side of tests/question_answering.rs.

`windows`: run_qa.py's feature preparation with transformers' fast tokenizer (question and
context, truncation="only_second", stride, overflowing tokens, offsets), with the answer's
start/end token per window as prepare_train_features finds them and the context-only offsets
of prepare_validation_features.

`answers`: postprocess_qa_predictions of utils_qa.py (transformers' examples), restated here
step by step, on the logits the Rust side drew.
"""
import json
import sys

import numpy as np
from transformers import AutoTokenizer


def windows(case):
    tok = AutoTokenizer.from_pretrained(case["tokenizer"])
    ex = case["examples"]
    enc = tok([e["question"].lstrip() for e in ex], [e["context"] for e in ex],
              truncation="only_second", max_length=case["max_len"], stride=case["stride"],
              return_overflowing_tokens=True, return_offsets_mapping=True)
    out = []
    for i, offsets in enumerate(enc["offset_mapping"]):
        ids = enc["input_ids"][i]
        seq = enc.sequence_ids(i)
        e = ex[enc["overflow_to_sample_mapping"][i]]
        cls = ids.index(tok.cls_token_id)
        if not e["answers"]:
            start, end = cls, cls
        else:
            a = e["answers"][0]
            start_char, end_char = a["start"], a["start"] + len(a["text"])
            s = 0
            while seq[s] != 1:
                s += 1
            t = len(ids) - 1
            while seq[t] != 1:
                t -= 1
            if not (offsets[s][0] <= start_char and offsets[t][1] >= end_char):
                start, end = cls, cls
            else:
                while s < len(offsets) and offsets[s][0] <= start_char:
                    s += 1
                start = s - 1
                while offsets[t][1] >= end_char:
                    t -= 1
                end = t + 1
        out.append({"example": enc["overflow_to_sample_mapping"][i], "ids": ids,
                    # RoBERTa's tokenizers return no token types: one type, 0.
                    "type_ids": (enc["token_type_ids"][i] if "token_type_ids" in enc
                                 else [0] * len(ids)),
                    "offsets": [list(o) if seq[k] == 1 else None for k, o in enumerate(offsets)],
                    "start": start, "end": end})
    return out


def answers(case):
    n_best, max_len, v2 = case["n_best"], case["max_answer_len"], case["with_no_answer"]
    threshold = case["null_threshold"]
    feats = case["features"]
    result = []
    for e_index, example in enumerate(case["examples"]):
        min_null, prelim = None, []
        for f_index, feat in enumerate(feats):
            if feat["example"] != e_index:
                continue
            start_logits = np.array(case["start_logits"][f_index], dtype=np.float32)
            end_logits = np.array(case["end_logits"][f_index], dtype=np.float32)
            offsets = feat["offsets"]
            null_score = float(start_logits[0]) + float(end_logits[0])
            if min_null is None or min_null["score"] > null_score:
                min_null = {"offsets": (0, 0), "score": null_score,
                            "start_logit": float(start_logits[0]), "end_logit": float(end_logits[0])}
            starts = np.argsort(start_logits, kind="stable")[-1:-n_best - 1:-1].tolist()
            ends = np.argsort(end_logits, kind="stable")[-1:-n_best - 1:-1].tolist()
            for i in starts:
                for j in ends:
                    if i >= len(offsets) or j >= len(offsets) or offsets[i] is None or offsets[j] is None:
                        continue
                    if j < i or j - i + 1 > max_len:
                        continue
                    prelim.append({"offsets": (offsets[i][0], offsets[j][1]),
                                   "score": float(start_logits[i]) + float(end_logits[j]),
                                   "start_logit": float(start_logits[i]),
                                   "end_logit": float(end_logits[j])})
        if v2 and min_null is not None:
            prelim.append(dict(min_null))
            null_score = min_null["score"]
        preds = sorted(prelim, key=lambda x: x["score"], reverse=True)[:n_best]
        if v2 and min_null is not None and not any(p["offsets"] == (0, 0) for p in preds):
            preds.append(dict(min_null))
        context = example["context"]
        for p in preds:
            o = p.pop("offsets")
            p["text"] = context[o[0]:o[1]]
        if len(preds) == 0 or (len(preds) == 1 and preds[0]["text"] == ""):
            preds.insert(0, {"text": "empty", "start_logit": 0.0, "end_logit": 0.0, "score": 0.0})
        scores = np.array([p.pop("score") for p in preds])
        exp = np.exp(scores - np.max(scores))
        probs = exp / exp.sum()
        for prob, p in zip(probs, preds):
            p["probability"] = float(prob)
        item = {"candidates": preds}
        if not v2:
            item["text"] = preds[0]["text"]
        else:
            i = 0
            while preds[i]["text"] == "":
                i += 1
            best = preds[i]
            diff = null_score - best["start_logit"] - best["end_logit"]
            item["null_score_diff"] = diff
            item["text"] = "" if diff > threshold else best["text"]
        result.append(item)
    return result


def main():
    case = json.load(open(sys.argv[2]))
    print(json.dumps({"windows": windows, "answers": answers}[sys.argv[1]](case)))


if __name__ == "__main__":
    main()
