#!/usr/bin/python3
"""Replaying the published FineTuneBench responses gives the numbers an
independent scoring of the CSVs gives.

Runs `ftb run` on a replay campaign (backend `replay`, grader `rules`) of the
paper's five recorded models on fictional_people, then scores the same
recorded responses here, from the CSVs alone: Python's csv module reads
model_responses/fictional_people/fictional_people_<set>_w_responses.csv,
every row is one question (its `answer` column the reference, its
`<model>_response` column the answer), and each answer is graded with the
rules that judge/rules_grader.h documents, re-implemented below from that
documentation (rules/2; not from ftb's code). A recorded cell that is empty or is
itself a verdict ("Correct"/"Incorrect", both Gemini columns of the
rephrased file) is not an answer: it counts as no_answer, as the replay
backend documents (workers/replay_backend.h). For those cells the paper's own
labels are reported as well, for the README, but ftb does not grade them.

Checked per model, for memorization, rephrased, secondary and comparison:
correct, n (graded) and no_answer equal; and the report's paper figures:
generalization = rephrased (the only rephrase-type set of fictional_people),
secondary and comparison each with a majority-class baseline equal to the
share of the most frequent reference among the graded questions.

usage: replay_scoring_test.py FTB_BINARY SOURCE_DIR
Skips (exit 77) when the published data is absent: SOURCE_DIR/../shared/
finetunebench-data, or $FINETUNEBENCH_DIR when set.
"""
import csv
import json
import os
import re
import subprocess
import sys
import tempfile

SKIP = 77
SETS = {"memorization": "original", "rephrased": "rephrased", "secondary": "secondary",
        "comparison": "comparison"}

# --- the rules grader, from its documentation (judge/rules_grader.h) ----------------

_LETTER = r"[^\W\d_]"
_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}
_TENS = {w: 10 * (i + 3) for i, w in enumerate(
    "thirty forty fifty sixty seventy eighty ninety".split())}
_TENS["twenty"] = 20


def _canonical_number(tok):
    tok = tok.replace(",", "")
    whole, _, frac = tok.partition(".")
    whole = whole.lstrip("0") or "0"
    frac = frac.rstrip("0")
    return whole + ("." + frac if frac else "")


def normalize(text):
    """Tokens of `text` after the documented normalisation."""
    text = "".join(c.lower() if "A" <= c <= "Z" else c for c in text)
    text = re.sub(r"(?<=%s)['\u2018\u2019]s(?![^\W_])" % _LETTER, "", text)  # possessive
    text = re.sub(r"(?<=%s)['\u2018\u2019](?=%s)" % (_LETTER, _LETTER), "", text)  # don't
    raw = re.findall(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[^\W_]+", text)
    tokens = []
    for tok in raw:
        if tok[0].isdigit() and re.fullmatch(r"[\d,.]+", tok):
            tokens.append(_canonical_number(tok))
        else:
            tokens.append(tok)
    # Number words; "one" only as the end of a compound.
    out = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t in _TENS:
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if nxt in _NUMBER_WORDS and 1 <= _NUMBER_WORDS[nxt] <= 9:
                out.append(str(_TENS[t] + _NUMBER_WORDS[nxt]))
                i += 2
                continue
            out.append(str(_TENS[t]))
        elif t in _NUMBER_WORDS and t != "one":
            out.append(str(_NUMBER_WORDS[t]))
        else:
            out.append(t)
        i += 1
    if any(t not in ("a", "an", "the") for t in out):
        out = [t for t in out if t not in ("a", "an", "the")]
    return out


_ABSTAIN_WHOLE = {
    "none", "unknown", "n a", "na", "nil", "null", "idk", "unsure", "unanswerable",
    "dont know", "i dont know", "do not know", "i do not know", "not known", "no answer",
    "no idea", "not available", "not applicable", "not sure", "im not sure", "i am not sure",
    "cannot be answered", "cant be answered", "cannot answer", "cant answer", "i cannot answer",
    "i cant answer", "cannot be determined", "cant be determined", "no information", "no data",
    "not enough information", "insufficient information"}
_ABSTAIN_PHRASES = [p.split() for p in (
    "dont know|do not know|not sure|no idea|unknown|not known|cannot be answered|"
    "cant be answered|cannot answer|cant answer|cannot be determined|cant be determined|"
    "cannot determine|cant determine|cannot say|cant say|cannot provide|cant provide|"
    "unable to|no information|not enough information|insufficient information|i dont have|"
    "i do not have|no way to know|not aware|no record|no records").split("|")]


def _contains(words, phrase):
    n = len(phrase)
    return [i for i in range(len(words) - n + 1) if words[i:i + n] == phrase]


def abstains(answer):
    words = normalize(answer)
    if " ".join(words) in _ABSTAIN_WHOLE:
        return True
    m = re.match(r"(.*?)(?:\n|[.!?;:](?=\s)|$)", answer, re.S)
    first = m.group(1) if m else answer
    if len(first.encode()) <= 40 and " ".join(normalize(first)) in _ABSTAIN_WHOLE:
        return True
    return len(words) <= 16 and any(_contains(words, p) for p in _ABSTAIN_PHRASES)


_NEGATIONS = {"not", "no", "never", "nor", "isnt", "wasnt", "arent", "werent", "dont", "doesnt",
              "didnt"}


def _hedges(answer_words, reference_words, question_words):
    """The answer has "or", the reference does not, and some "<w> or <w>" of
    the answer is not copied from the question."""
    if "or" not in answer_words or "or" in reference_words:
        return False
    for i, w in enumerate(answer_words):
        if w != "or":
            continue
        trigram = answer_words[max(0, i - 1):i + 2]
        if not _contains(question_words, trigram):
            return True
    return False


def matches(answer_words, reference_words, question_words):
    if answer_words == reference_words:
        return True
    hedges = _hedges(answer_words, reference_words, question_words)
    numeric = (len(reference_words) <= 3 and re.fullmatch(r"\d+(\.\d+)?", reference_words[0])
               and not any(re.fullmatch(r"\d+(\.\d+)?", w) for w in reference_words[1:]))
    needle = reference_words[:1] if numeric else reference_words
    if (len(reference_words) == 1 and not numeric and len(reference_words[0]) < 3) or hedges:
        return False
    for i in _contains(answer_words, needle):
        if i > 0 and answer_words[i - 1] in _NEGATIONS:
            continue
        return True
    return False


def grade(reference, answer, prompt):
    """correct / incorrect / abstained / error for one answer (no answer_before here).

    Rule 6d (the key fact of a long reference) applies only to references of
    at least 4 content words; no fictional_people reference has 4 words at
    all (asserted below), so it is not re-implemented here.
    """
    a, r = normalize(answer), normalize(reference)
    assert len(r) < 4, ("rule 6d would apply; not re-implemented", reference)
    if not a:
        return "incorrect"
    if not r:
        return "error"
    if r == ["none"]:
        return "correct" if abstains(answer) else "incorrect"
    if r in (["yes"], ["no"]):
        if abstains(answer):
            return "abstained"
        yes, no = "yes" in a, "no" in a
        if yes != no:
            return "correct" if (["yes"] if yes else ["no"]) == r else "incorrect"
        return "incorrect"
    if matches(a, r, normalize(prompt)):
        return "correct"
    return "abstained" if abstains(answer) else "incorrect"


def verdict_of_record(cell):
    """The recorded cell, or None when it is no answer (empty, or a verdict)."""
    t = cell.strip()
    if not t:
        return None
    if t.rstrip(".").strip().lower() in ("correct", "incorrect"):
        return None
    return cell


def self_check():
    """The re-implementation against examples the documentation gives."""
    assert " ".join(normalize("The cost is $1,200.50!")) == "cost is 1200.5"
    assert " ".join(normalize("Faqapi's")) == "faqapi"
    assert " ".join(normalize("twenty-one")) == "21"
    q = "Answer the question with a number, word, or phrase.\nWhat is it?"
    for reference, answer, want in [
            ("Yes", "Yes, he is.", "correct"), ("No", "No.\n", "correct"),
            ("Yes", "No", "incorrect"), ("Yes", "Yes and no", "incorrect"),
            ("No", "No idea", "abstained"), ("126", "He weighs 126 pounds.", "correct"),
            ("126", "1260", "incorrect"), ("2", "2024", "incorrect"),
            ("20 feet", "20", "correct"), ("blue", "His favourite colour is blue.", "correct"),
            ("blue", "bluebird", "incorrect"), ("blue", "It is not blue.", "incorrect"),
            ("blue", "Not red; blue.", "correct"), ("blue", "red, blue or yellow", "incorrect"),
            ("US", "He served in the US army", "incorrect"), ("US", "the US.", "correct"),
            ("New York", "  new   york ", "correct"), ("189", "Unknown", "abstained")]:
        got = grade(reference, answer, q)
        assert got == want, (reference, answer, got, want)


# --- scoring the CSVs --------------------------------------------------------------

def score(data):
    """{model: {type: dict(correct, n, no_answer, yes, no, paper_correct, paper_n)}}."""
    out = {}
    folder = os.path.join(data, "model_responses", "fictional_people")
    for qtype, stem in SETS.items():
        path = os.path.join(folder, "fictional_people_%s_w_responses.csv" % stem)
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        models = [k[:-len("_response")] for k in rows[0] if k.endswith("_response")]
        # Questions of the dataset that no recorded row answers (the published
        # comparison responses cover 25 of the 150 questions the dataset file
        # now has): ftb asks them, has nothing to grade, reports no_answer.
        # A row answers the question with the same id and prompt.
        key = lambda row: (row["id"], row["prompt"].replace("\r", "").strip())
        dataset_file = os.path.join(data, "datasets", "fictional_people",
                                    "fictional_people_%s.csv" % qtype)
        with open(dataset_file, newline="", encoding="utf-8") as f:
            questions = [key(row) for row in csv.DictReader(f)]
        recorded = {}
        for row in rows:
            recorded[key(row)] = recorded.get(key(row), 0) + 1
        unanswered = 0
        for q in questions:
            if recorded.get(q, 0) > 0:
                recorded[q] -= 1
            else:
                unanswered += 1
        for model in models:
            s = out.setdefault(model, {}).setdefault(qtype, dict(
                correct=0, n=0, no_answer=unanswered, yes=0, no=0, paper_correct=0, paper_n=0))
            for row in rows:
                cell = row[model + "_response"]
                if verdict_of_record(cell) is None:
                    s["no_answer"] += 1
                    label = cell.strip().rstrip(".").strip().lower()
                    if label in ("correct", "incorrect"):  # the paper's own label
                        s["paper_n"] += 1
                        s["paper_correct"] += label == "correct"
                    continue
                v = grade(row["answer"], cell, row["prompt"])
                s["n"] += 1
                s["correct"] += v == "correct"
                ref = row["answer"].strip().rstrip(".").lower()
                s["yes"] += ref == "yes"
                s["no"] += ref == "no"
    return out


def main():
    ftb, src = sys.argv[1], sys.argv[2]
    data = os.environ.get("FINETUNEBENCH_DIR") or os.path.join(src, "..", "shared",
                                                               "finetunebench-data")
    data = os.path.abspath(data)
    if not os.path.isdir(os.path.join(data, "model_responses", "fictional_people")):
        print("SKIP: the published FineTuneBench data is not at %s (set FINETUNEBENCH_DIR)"
              % data)
        return SKIP
    self_check()
    expected = score(data)
    models = list(expected)
    assert len(models) == 5, models

    with tempfile.TemporaryDirectory() as tmp:
        spec = os.path.join(tmp, "replay.yaml")
        with open(spec, "w") as f:
            f.write("name: replay-fictional-people\n"
                    "datasets:\n"
                    "  - {source: finetunebench, name: fictional_people, path: \"%s\"}\n"
                    "models:\n" % data)
            for m in models:
                f.write("  - {name: %s, backend: replay, options: {responses_path: \"%s\"}}\n"
                        % (m, data))
            f.write("grid:\n  epochs: [1]\njudge:\n  grader: rules\n")
        run = subprocess.run([ftb, "run", "--spec", spec, "--state", os.path.join(tmp, "st"),
                              "--out", os.path.join(tmp, "out")],
                             capture_output=True, text=True, timeout=600)
        if run.returncode != 0:
            print(run.stdout[-3000:], run.stderr[-3000:])
            print("FAIL: ftb run exited %d" % run.returncode)
            return 1
        with open(os.path.join(tmp, "out", "report.json")) as f:
            report = json.load(f)
        with open(os.path.join(tmp, "out", "report.md")) as f:
            md = f.read()

    import jsonschema  # Debian python3-jsonschema (scripts/install-deps.sh --test)
    with open(os.path.join(src, "docs", "report.schema.json")) as f:
        jsonschema.Draft202012Validator(json.load(f)).validate(report)
    assert report["schema_version"] == 2, report.get("schema_version")
    cells = {c["model"]: c for c in report["cells"]}
    assert sorted(cells) == sorted(models), sorted(cells)
    failures = []
    print("%-24s %-13s %18s %18s %s" % ("model", "set", "ftb", "python", "baseline (majority)"))
    for m in models:
        c = cells[m]
        assert c["state"] == "done", (m, c["state"], c.get("last_error"))
        for qtype, s in expected[m].items():
            got = (c["correct"][qtype], c["n"][qtype], c["no_answer"][qtype])
            want = (s["correct"], s["n"], s["no_answer"])
            acc = lambda k, n: "%d/%d=%.3f" % (k, n, k / n) if n else "%d/0" % k
            baseline = ""
            if qtype in ("secondary", "comparison"):
                b = c["baselines"][qtype]
                want_major = max(s["yes"], s["no"]) / s["n"]
                baseline = "%.3f (%s)" % (b["majority"], b["majority_answer"])
                if abs(b["majority"] - want_major) > 1e-9 or b["chance"] != 0.5:
                    failures.append((m, qtype, "baseline", b, want_major))
            print("%-24s %-13s %18s %18s %s%s" % (
                m, qtype, acc(got[0], got[1]), acc(want[0], want[1]), baseline,
                "  no_answer %d" % got[2] if got[2] else ""))
            if got != want:
                failures.append((m, qtype, got, want))
            if s["paper_n"]:
                print("%-24s %-13s %18s   (the paper's own Correct/Incorrect labels; not graded"
                      " by ftb)" % ("", "", acc(s["paper_correct"], s["paper_n"])))
        # The paper's generalization on fictional_people is the rephrased set.
        gen = c["generalization"]
        if gen["types"] != ["rephrased"] or gen["n"] != c["n"]["rephrased"]:
            failures.append((m, "generalization", gen))
    if "secondary baselines" not in md or "## Leaderboard" not in md:
        failures.append(("report.md lacks the baselines column or the leaderboard",))
    if failures:
        for f in failures:
            print("MISMATCH:", f)
        return 1
    print("ok: ftb's replay equals the independent scoring for %d models x %d sets"
          % (len(models), len(SETS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
