#!/usr/bin/env bash
# Issue 18, end to end on the real binary: separate user and worker tokens
# (--worker-token-file), workers reporting with their lease tokens, `ftb
# status` paging through more campaigns than one ListCampaigns page, and
# `ftb delete` (refused while running; --keep-report writes the report
# first; the deletion survives a restart). usage: delete_paging_test.sh FTB
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
echo "user-6b1f0c9e2d" > user.token
echo "worker-93d7a4e5f1" > worker.token
cat > small.yaml <<'YAML'
name: small
datasets:
  - {source: builtin, name: people, size: 2, seed: 1}
models:
  - name: fixture
    backend: test
    options: {sleep_ms_min: 0, sleep_ms_max: 1, answers_per_cell: 3}
grid:
  epochs: [1, 2]
  seed: [0, 1, 2]
judge: {grader: rules, batch_size: 4}
YAML
start_coordinator() {
  "$ftb" coordinator --listen 127.0.0.1:0 --state st --auth-token-file user.token \
    --worker-token-file worker.token --max-submissions-per-minute 0 > coordinator.log 2>&1 &
  coord=$!
  pids+=($coord)
  for _ in $(seq 100); do grep -q "listening on" coordinator.log && break; sleep 0.1; done
  addr=$(sed -n 's/.*listening on \([0-9.:]*\) .*/\1/p' coordinator.log)
  [[ -n $addr ]] || fail "coordinator did not start"
}
start_coordinator
grep -q "user and worker tokens required" coordinator.log || fail "startup line does not say tokens"
user=(--coordinator "$addr" --auth-token-file user.token)

# A worker token cannot submit.
out=$("$ftb" submit small.yaml --coordinator "$addr" --auth-token-file worker.token 2>&1) &&
  fail "worker token submitted"
[[ $out == *"worker token can only call worker RPCs"* ]] || fail "worker token: unclear error: $out"
id=$("$ftb" submit small.yaml "${user[@]}") || fail "submit failed"
running=$("$ftb" submit small.yaml "${user[@]}") || fail "second submit failed"
# A running campaign cannot be deleted.
out=$("$ftb" delete "$id" "${user[@]}" 2>&1) && fail "running campaign deleted"
[[ $out == *"only a succeeded, failed or cancelled campaign can be deleted"* ]] ||
  fail "delete running: unclear error: $out"

# Workers with the worker token run both campaigns (reports carry lease tokens).
"$ftb" worker --role tune --backends test --coordinator "$addr" --auth-token-file worker.token \
  > tune.log 2>&1 &
tune=$!
pids+=($tune)
"$ftb" worker --role judge --backends rules --coordinator "$addr" --auth-token-file worker.token \
  > judge.log 2>&1 &
judge=$!
pids+=($judge)
timeout 60 "$ftb" watch "$id" "${user[@]}" > watch.log 2>&1 || fail "watch did not see the end"
grep -q succeeded watch.log || fail "campaign did not succeed"
timeout 60 "$ftb" watch "$running" "${user[@]}" > watch2.log 2>&1 || fail "second campaign"
grep -q "PERMISSION_DENIED\|result dropped" tune.log judge.log && fail "a worker report was refused"

# Online report, then delete keeping the same report.
"$ftb" report "${user[@]}" --campaign "$id" --format json --out before.json ||
  fail "online report failed"
"$ftb" delete "$id" "${user[@]}" --keep-report kept > delete.log 2>&1 ||
  fail "delete failed: $(cat delete.log)"
for f in md json csv html; do [[ -s kept/report.$f ]] || fail "kept/report.$f missing"; done
cmp -s before.json kept/report.json || fail "kept report differs from the online report"
grep -q "deleted $id (" delete.log || fail "delete output: $(cat delete.log)"
out=$("$ftb" status "$id" "${user[@]}" 2>&1) && fail "deleted campaign still there"
[[ $out == *"no campaign $id"* ]] || fail "status of deleted: unclear error: $out"

kill -TERM "$tune" "$judge"; wait "$tune" "$judge" 2>/dev/null

# More campaigns than one ListCampaigns page (1000): `ftb status` pages.
for i in $(seq 1001); do echo "$i"; done |
  xargs -P 2 -I{} "$ftb" submit small.yaml "${user[@]}" --request-id "bulk-{}" > bulk.ids 2> bulk.log ||
  fail "bulk submit failed: $(sort bulk.log | uniq -c | head -5)"
n=$("$ftb" status "${user[@]}" | wc -l)
[[ $n -eq 1002 ]] || fail "ftb status listed $n campaigns, expected 1002 (1001 + 1)"

# The deletion is durable.
kill -TERM "$coord"; wait "$coord" 2>/dev/null
start_coordinator
user=(--coordinator "$addr" --auth-token-file user.token)
out=$("$ftb" status "$id" "${user[@]}" 2>&1) && fail "deleted campaign back after restart"
out=$("$ftb" status "$running" "${user[@]}" 2>&1)
[[ $out == *succeeded* ]] || fail "kept campaign lost: $out"
echo "ok: tokens separated, lease-bound reports accepted, delete kept its report, 1002 campaigns paged"
