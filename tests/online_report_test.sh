#!/usr/bin/env bash
# `ftb report --coordinator ADDR` (online, through ExportCampaign) renders
# exactly what `ftb report --state DIR` (offline) renders once the
# coordinator has stopped; the campaign is large enough to span several
# export pages. usage: online_report_test.sh FTB_BINARY
set -u
ftb=$1
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp"
fail() { echo "FAIL: $*"; for f in *.log; do echo "--- $f"; tail -5 "$f"; done; exit 1; }
seeds=$(seq -s ', ' 0 599)
cat > online.yaml <<YAML
name: online
datasets:
  - {source: builtin, name: people, size: 2, seed: 1}
models:
  - name: fixture
    backend: test
    options: {sleep_ms_min: 0, sleep_ms_max: 1, answers_per_cell: 4}
grid:
  epochs: [1, 2]
  seed: [$seeds]
judge: {grader: rules, batch_size: 4}
YAML
"$ftb" coordinator --listen 127.0.0.1:0 --state st > coordinator.log 2>&1 &
pids+=($!); coord=$!
for _ in $(seq 100); do grep -q "listening on" coordinator.log && break; sleep 0.1; done
addr=$(sed -n 's/.*listening on \([0-9.:]*\) .*/\1/p' coordinator.log)
[[ -n $addr ]] || fail "coordinator did not start"
id=$("$ftb" submit online.yaml --coordinator "$addr") || fail "submit failed"

# Online, before any worker ran: every cell pending.
"$ftb" report --coordinator "$addr" --campaign "$id" --format json > pending.json ||
  fail "online report of a pending campaign failed"
"$ftb" worker --role tune --backends test --slots 2 --coordinator "$addr" > tune.log 2>&1 &
pids+=($!)
"$ftb" worker --role judge --backends rules --slots 2 --coordinator "$addr" > judge.log 2>&1 &
pids+=($!)
timeout 120 "$ftb" watch "$id" --coordinator "$addr" > watch.log 2>&1 || fail "watch did not see the end"
grep -q succeeded watch.log || fail "campaign did not succeed"
# Online, newest campaign by default, every format.
for f in json md csv html; do
  "$ftb" report --coordinator "$addr" --format "$f" --out "online.$f" || fail "online report --format $f"
done
out=$("$ftb" report --coordinator "$addr" --campaign nope 2>&1) && fail "unknown campaign accepted"
[[ $out == *"no campaign nope"* ]] || fail "unknown campaign: unclear error: $out"

kill -TERM "$coord"; wait "$coord" 2>/dev/null
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null
for f in json md csv html; do
  "$ftb" report --state st --format "$f" --out "offline.$f" || fail "offline report --format $f"
  cmp -s "online.$f" "offline.$f" || fail "online and offline $f reports differ"
done
/usr/bin/python3 - pending.json online.json <<'PY' || exit 1
import json, sys
pending, done = (json.load(open(p)) for p in sys.argv[1:])
assert len(pending["cells"]) == 1200 and len(done["cells"]) == 1200
assert all(c["state"] == "pending" for c in pending["cells"]), "pending report"
assert all(c["state"] == "done" for c in done["cells"]), "done report"
assert all(sum(c["n"].values()) == 4 for c in done["cells"]), "each answer graded once"
print("ok: online == offline for 1200 cells in md, json, csv and html")
PY
