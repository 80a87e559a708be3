"""scikit-learn's and scipy's figures for the cases in a JSON file: the reference side of
tests/metrics.rs. Prints one JSON object with the same structure as the input."""
import json
import sys

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import (accuracy_score, f1_score, matthews_corrcoef,
                             precision_recall_fscore_support)


def main():
    cases = json.load(open(sys.argv[1]))
    out = {"classes": [], "regression": [], "multilabel": []}
    for c in cases["classes"]:
        labels = list(range(c["k"]))
        p, r, f, s = precision_recall_fscore_support(c["labels"], c["preds"], labels=labels,
                                                     average=None, zero_division=0)
        mp, mr, mf, _ = precision_recall_fscore_support(c["labels"], c["preds"], labels=labels,
                                                        average="macro", zero_division=0)
        item = {"precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(),
                "support": s.tolist(), "macro": [mp, mr, mf],
                "accuracy": accuracy_score(c["labels"], c["preds"]),
                "mcc": matthews_corrcoef(c["labels"], c["preds"])}
        if c["k"] == 2:
            item["binary_f1"] = f1_score(c["labels"], c["preds"], zero_division=0)
        out["classes"].append(item)
    for c in cases["regression"]:
        out["regression"].append({"pearson": float(pearsonr(c["x"], c["y"])[0]),
                                  "spearman": float(spearmanr(c["x"], c["y"])[0])})
    for c in cases["multilabel"]:
        p, l = np.array(c["preds"]), np.array(c["labels"])
        out["multilabel"].append({"micro_f1": f1_score(l, p, average="micro", zero_division=0),
                                  "subset_accuracy": accuracy_score(l, p)})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
