#!/usr/bin/env bash
# `ftb run` killed halfway and run again resumes the campaign and completes
# it with every cell graded once. Uses the `test` backend with synthetic
# answers (so there is something to grade) and the `rules` grader.
# usage: run_resume_test.sh FTB_BINARY
set -u
ftb=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
here=$(cd "$(dirname "$0")" && pwd)
cd "$tmp"
seeds=$(seq -s ', ' 0 149)
cat > resume.yaml <<YAML
name: resume
datasets:
  - {source: builtin, name: people, size: 2, seed: 1}
models:
  - name: fixture
    backend: test
    options: {sleep_ms_min: 20, sleep_ms_max: 40, answers_per_cell: 6}
grid:
  epochs: [1, 2]
  seed: [$seeds]
judge: {grader: rules, batch_size: 4}
YAML
# 150 runs x 2 epochs = 300 cells, 6 answers each.
"$ftb" run --spec resume.yaml --state st --out out --slots 2 > first.log 2>&1 &
pid=$!
for _ in $(seq 100); do   # kill once some but not all work is stored
  sleep 0.1
  grep -q "started campaign" first.log && break
done
sleep 1.5
kill -9 $pid; wait $pid 2>/dev/null
if [[ -f out/report.json ]]; then echo "FAIL: the first run finished before it was killed"; exit 1; fi

"$ftb" run --spec resume.yaml --state st --out out --slots 2 > second.log 2>&1
rc=$?
if [[ $rc -ne 0 ]]; then echo "FAIL: rerun exited $rc"; cat second.log; exit 1; fi
grep -q "^resuming campaign resume" second.log || { echo "FAIL: rerun did not resume"; cat second.log; exit 1; }
for f in md json csv html; do [[ -s out/report.$f ]] || { echo "FAIL: no report.$f"; exit 1; }; done
/usr/bin/python3 - out/report.json "$here/../docs/report.schema.json" <<'PY'
import json, sys
import jsonschema
r = json.load(open(sys.argv[1]))
# The report validates against the documented schema (Draft 2020-12).
jsonschema.Draft202012Validator(json.load(open(sys.argv[2]))).validate(r)
cells = r["cells"]
assert len(cells) == 300, len(cells)
bad = [c for c in cells if c["state"] != "done"]
assert not bad, bad[:3]
for c in cells:
    # Every answer graded exactly once: 4 memorization + 2 rephrased.
    assert c["n"] == {"memorization": 4, "rephrased": 2}, c["n"]
    # Even-numbered answers are right: q0,q2,q4 -> q0 rephrased, q2,q4 memorization.
    assert abs(c["accuracy"]["memorization"] - 0.5) < 1e-9, c
    assert abs(c["accuracy"]["rephrased"] - 0.5) < 1e-9, c
print("ok: 300 cells done, each graded once")
PY
