#!/usr/bin/env python3
"""Independent check of workers/replay_backend_test.cc's pinned numbers.

Replays the recorded FineTuneBench fictional-people responses and grades them
with the rules of judge/rules_grader.h, re-implemented here from that header's
documentation (not from the C++), restricted to what this data needs (no
"None" references, no answer_before). Prints, per model and question type,
correct/graded and the no_answer count.

Usage: python3 judge/testdata/fictional_people_expected.py [DATA_DIR]
  DATA_DIR defaults to ../shared/finetunebench-data (relative to the repo).
"""
import csv
import os
import re
import sys

DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared", "finetunebench-data")
MODELS = ["gpt-4o-mini-2024-07-18", "gpt-3.5-turbo-0125", "gpt-4o-2024-08-06",
          "gemini-1.5-flash-002", "gemini-1.5-pro-002"]
TYPES = [("memorization", "original"), ("rephrased", "rephrased"),
         ("secondary", "secondary"), ("comparison", "comparison")]
WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split())}
WORDS.update({w: 10 * (i + 2) for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split())})


def number(m):
    s = m.group(0).replace(",", "")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return " " + (s.lstrip("0") or "0") + " "


def normalize(text):
    t = text.lower()
    t = re.sub(r"(?<=[a-z0-9])['\u2018\u2019]s\b", "", t)  # possessive
    t = re.sub(r"['\u2018\u2019]", "", t)
    # Numbers at the start of a token (digits glued after letters stay).
    t = re.sub(r"(?<![a-z0-9])\d{1,3}(?:,\d{3})+(?![\d])(?:\.\d+)?|(?<![a-z0-9])\d+(?:\.\d+)?", number, t)
    t = re.sub(r"[^a-z0-9.\u00c0-\uffff ]|[\u00a0-\u00bf\u2000-\u2fff]", " ", t)
    t = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", t)
    toks = t.split()
    kept = [w for w in toks if w not in ("a", "an", "the")] or toks
    out = []
    for w in kept:
        v = WORDS.get(w)
        if out and out[-1][1] and w in WORDS and 1 <= WORDS[w] <= 9:
            out[-1] = (str(int(out[-1][0]) + WORDS[w]), False)
        elif v is not None and w != "one":
            out.append((str(v), v >= 20))
        else:
            out.append((w, False))
    return [w for w, _ in out]


FULL = {tuple(p.split()) for p in [
    "none", "unknown", "n", "na", "n a", "nil", "null", "idk", "unsure", "unanswerable",
    "dont know", "i dont know", "do not know", "i do not know", "not known", "no answer",
    "no idea", "not available", "not applicable", "not sure", "im not sure", "i am not sure",
    "cannot be answered", "cant be answered", "cannot answer", "cant answer", "i cannot answer",
    "i cant answer", "cannot be determined", "cant be determined", "no information", "no data",
    "not enough information", "insufficient information"]}
MARKERS = [p.split() for p in [
    "dont know", "do not know", "not sure", "no idea", "unknown", "not known",
    "cannot be answered", "cant be answered", "cannot answer", "cant answer",
    "cannot be determined", "cant be determined", "cannot determine", "cant determine",
    "cannot say", "cant say", "cannot provide", "cant provide", "unable to", "no information",
    "not enough information", "insufficient information", "i dont have", "i do not have",
    "no way to know", "not aware", "no record", "no records"]]
NEGATIONS = {"not", "no", "never", "nor", "isnt", "wasnt", "arent", "werent", "dont", "doesnt",
             "didnt"}


def occurrences(hay, needle):
    return [i for i in range(len(hay) - len(needle) + 1) if hay[i:i + len(needle)] == needle]


def abstains(a, raw):
    if tuple(a) in FULL:
        return True
    if len(a) <= 16 and any(occurrences(a, m) for m in MARKERS):
        return True
    first = re.match(r"\s*(.*?)(?:\n|[.!?;:](?=\s|$))", raw, re.S)
    return bool(first) and len(first.group(1)) <= 40 and tuple(normalize(first.group(1))) in FULL


def is_num(t):
    return re.fullmatch(r"\d[\d.]*", t) is not None


def grade(reference, answer):
    a, r = normalize(answer), normalize(reference)
    if not a:
        return "no_answer"
    if r in (["yes"], ["no"]):
        if abstains(a, answer):
            return "abstained"
        yes, no = "yes" in a, "no" in a
        return "correct" if (yes != no and (yes == (r == ["yes"]))) else "incorrect"
    if a == r:
        return "correct"
    needle = r
    if len(r) <= 3 and is_num(r[0]) and not any(is_num(t) for t in r[1:]):
        needle = r[:1]
    elif len(r) == 1 and len(r[0]) < 3:
        needle = None
    hits = occurrences(a, needle) if needle else []
    if hits and not ("or" in a and "or" not in r):
        if any(i == 0 or a[i - 1] not in NEGATIONS for i in hits):
            return "correct"
    return "abstained" if abstains(a, answer) else "incorrect"


def key(row):
    return (row["id"], row["prompt"].replace("\r", "").strip())


for qtype, ftype in TYPES:
    questions = list(csv.DictReader(open(
        f"{DATA}/datasets/fictional_people/fictional_people_{qtype}.csv", newline="",
        encoding="utf-8")))
    recorded = list(csv.DictReader(open(
        f"{DATA}/model_responses/fictional_people/fictional_people_{ftype}_w_responses.csv",
        newline="", encoding="utf-8")))
    for model in MODELS:
        by_key = {}
        for row in recorded:
            by_key.setdefault(key(row), []).append(row[f"{model}_response"])
        counts = {}
        for q in questions:
            responses = by_key.get(key(q))
            if not responses:
                verdict = "no_answer"
            else:
                response = responses.pop(0)
                if not response.strip() or response.strip().rstrip(".").lower() in (
                        "correct", "incorrect"):
                    verdict = "no_answer"
                else:
                    verdict = grade(q["answer"], response)
            counts[verdict] = counts.get(verdict, 0) + 1
        graded = sum(v for k, v in counts.items() if k != "no_answer")
        print(f"{model:24s} {qtype:13s} correct {counts.get('correct', 0):3d} / {graded:3d} "
              f"graded, no_answer {counts.get('no_answer', 0):3d}, "
              f"abstained {counts.get('abstained', 0)}")
