#!/usr/bin/env bash
# A campaign nobody can serve says why (issue 14): against a real
# coordinator, `ftb status` and `ftb watch` of a campaign with no worker say
# "no connected worker offers backend `test`"; with only a tuning worker
# (training done, judging left) they say "no judge worker connected"; once a
# judge worker connects the campaign succeeds.
# usage: unservable_test.sh FTB_BINARY
set -u
ftb=$1
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp"
fail=0
bad() { echo "FAIL $*"; fail=1; }
cat > c.yaml <<YAML
name: unservable
datasets:
  - {source: builtin, name: people, size: 2, seed: 1}
models:
  - name: fixture
    backend: test
    options: {sleep_ms_min: 0, sleep_ms_max: 1, answers_per_cell: 2}
grid:
  epochs: [1]
judge: {grader: rules}
YAML
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
addr=127.0.0.1:$port
"$ftb" coordinator --state st --listen $addr > coord.log 2>&1 & pids+=($!)
for _ in $(seq 50); do grep -q listening coord.log && break; sleep 0.1; done
id=$("$ftb" submit --coordinator $addr c.yaml) || { bad "submit failed: $id"; exit 1; }
# status_until WANT: polls `ftb status --json` until status_message contains WANT.
status_until() {
  for _ in $(seq 100); do
    "$ftb" status --coordinator $addr "$id" --json > s.json 2>&1
    grep -qF "$1" s.json && return 0
    sleep 0.1
  done
  return 1
}
status_until 'waiting: no connected worker offers backend `test`' ||
  { bad "status of a campaign with no worker:"; cat s.json; }
"$ftb" status --coordinator $addr "$id" | grep -qF 'no connected worker offers backend `test`' ||
  bad "text status does not say why"
timeout 2 "$ftb" watch --coordinator $addr "$id" > watch.log 2>&1
grep -qF 'no connected worker offers backend `test`' watch.log || { bad "watch does not say why:"; cat watch.log; }

"$ftb" worker --coordinator $addr --backends test > tune.log 2>&1 & pids+=($!)
status_until 'waiting: no judge worker connected' ||
  { bad "status with only a tuning worker:"; cat s.json; }
timeout 2 "$ftb" watch --coordinator $addr "$id" > watch2.log 2>&1
grep -qF 'no judge worker connected' watch2.log || { bad "watch does not say no judge worker:"; cat watch2.log; }

"$ftb" worker --coordinator $addr --role judge --backends rules > judge.log 2>&1 & pids+=($!)
status_until '"state": "CAMPAIGN_STATE_SUCCEEDED"' ||
  { bad "campaign did not succeed once a judge worker connected:"; cat s.json; }
grep -q waiting s.json && bad "a finished campaign still says waiting"
[[ $fail -eq 0 ]] && echo "ok   an unservable campaign says why"
exit $fail
