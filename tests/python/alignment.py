"""The transformers side of tests/tagging.rs: word-piece ids, word_ids() and the labels
run_ner.py's tokenize_and_align_labels gives for sentences given as words."""
import json
import sys

from transformers import AutoTokenizer


def main():
    case = json.load(open(sys.argv[1]))
    tok = AutoTokenizer.from_pretrained(case["tokenizer"])
    out = []
    for words, labels in zip(case["words"], case["labels"]):
        enc = tok(words, is_split_into_words=True, truncation=True, max_length=case["max_len"])
        word_ids = enc.word_ids()
        row = {"ids": enc["input_ids"], "word_ids": word_ids}
        for all_tokens in (False, True):
            aligned, previous = [], None
            for w in word_ids:
                if w is None:
                    aligned.append(-100)
                elif w != previous:
                    aligned.append(labels[w])
                else:
                    aligned.append(case["b_to_i"][labels[w]] if all_tokens else -100)
                previous = w
            row["label_all" if all_tokens else "labels"] = aligned
        out.append(row)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
