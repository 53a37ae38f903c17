#!/usr/bin/env bash
# Failures explain themselves (issue 14): a real `ftb run` whose cells fail
# (the test backend's fail_first_attempts outlasting retry.max_attempts)
# exits 2, prints each failed cell's last error and attempts, and `ftb status
# ID` (text and --json) against a real coordinator on the same state shows
# them too; a campaign without failures exits 0.
# usage: run_failures_test.sh FTB_BINARY
set -u
ftb=$1
tmp=$(mktemp -d)
coord=
trap '[[ -n $coord ]] && kill $coord 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp"
fail=0
bad() { echo "FAIL $*"; fail=1; }
spec() {  # spec FAIL_FIRST_ATTEMPTS
  cat <<YAML
name: failing
datasets:
  - {source: builtin, name: people, size: 2, seed: 1}
models:
  - name: ok
    backend: test
    options: {sleep_ms_min: 0, sleep_ms_max: 1}
  - name: broken
    backend: test
    options: {sleep_ms_min: 0, sleep_ms_max: 1, fail_first_attempts: $1}
grid:
  epochs: [1, 2]
retry: {max_attempts: 2, initial_backoff_seconds: 0.01, max_backoff_seconds: 0.02}
YAML
}
want_error='after 2 attempt(s): UNAVAILABLE: test backend: injected failure of attempt 2 (fail_first_attempts=5)'

spec 5 > fail.yaml
"$ftb" run --spec fail.yaml --state st --out out > run.log 2>&1
rc=$?
[[ $rc -eq 2 ]] || bad "ftb run with failed cells exited $rc, want 2"
[[ $(grep -c "^  failed: .* (people / broken @ [12] epochs) $want_error" run.log) -eq 2 ]] ||
  bad "ftb run did not list both failed cells with their error"
grep -q "^ftb: campaign .* ended FAILED: 2 of 4 cells failed; first: UNAVAILABLE" run.log ||
  bad "ftb run's error line does not say why"
[[ -s out/report.json ]] || bad "no report written for a failed campaign"
[[ $rc -eq 2 ]] || cat run.log
id=$(sed -n 's/^started campaign failing (\([a-z0-9]*\)).*/\1/p' run.log)
[[ -n $id ]] || { bad "no campaign id in the run log"; cat run.log; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$ftb" coordinator --state st --listen 127.0.0.1:$port > coord.log 2>&1 &
coord=$!
for _ in $(seq 50); do grep -q listening coord.log && break; sleep 0.1; done
"$ftb" status --coordinator 127.0.0.1:$port "$id" > status.txt 2>&1 || bad "ftb status exited $?"
[[ $(grep -c "^  failed: .* (people / broken @ [12] epochs) $want_error" status.txt) -eq 2 ]] ||
  { bad "ftb status does not show each failed cell's error and attempts:"; cat status.txt; }
"$ftb" status --coordinator 127.0.0.1:$port "$id" --json > status.json 2>&1 || bad "ftb status --json exited $?"
python3 - status.json <<'PY' || fail=1
import json, sys
j = json.load(open(sys.argv[1]))
f = j.get("failures")
ok = (j["state"] == "CAMPAIGN_STATE_FAILED" and isinstance(f, list) and len(f) == 2
      and all(x["model"] == "broken" and x["attempts"] == 2 and x["backend"] == "test"
              and "injected failure of attempt 2" in x["last_error"] for x in f)
      and sorted(x["epochs"] for x in f) == [1, 2])
if not ok:
    print("FAIL status --json failures:", json.dumps(j, indent=1)[:2000])
    sys.exit(1)
PY
kill $coord; wait $coord 2>/dev/null; coord=

# Retries that succeed in time: no failed cell, exit 0.
spec 1 > ok.yaml
"$ftb" run --spec ok.yaml --state st2 --out out2 > ok.log 2>&1
rc=$?
[[ $rc -eq 0 ]] || { bad "ftb run without failed cells exited $rc"; cat ok.log; }
grep -q "  failed:" ok.log && bad "a successful run lists failures"
[[ $fail -eq 0 ]] && echo "ok   run exits 2 and status explains failed cells"
exit $fail
