#!/usr/bin/env bash
# The ftb binary as a user meets it: the default plan, --help, and one-line
# errors with a non-zero exit on bad input. usage: cli_test.sh FTB_BINARY
set -u
ftb=$1
fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
check() {  # check NAME EXPECTED_EXIT EXPECTED_SUBSTRING -- COMMAND...
  local name=$1 want_exit=$2 want=$3; shift 4
  out=$("$@" 2>&1); got=$?
  if [[ $got -ne $want_exit ]] || [[ "$out" != *"$want"* ]]; then
    echo "FAIL $name: exit $got (want $want_exit), output:"; echo "$out" | head -20; fail=1
  else
    echo "ok   $name"
  fi
}
check default-plan 0 "campaign default: 2 dataset(s) x 1 model(s) -> 8 cells in 2 training runs" -- "$ftb" plan
check plan-json 0 '"cells_total": 8' -- "$ftb" plan --json
check help 0 "datasets" -- "$ftb" --help
check missing-spec 1 "ftb: cannot read campaign spec $tmp/none.yaml" -- "$ftb" plan "$tmp/none.yaml"
printf 'name: x\ndatasets:\n  - {source: builtin, name: people}\nmodels:\n  - {name: m, backend: local, epochs: [1, ten]}\n' > "$tmp/bad.yaml"
check bad-spec 1 "ftb: $tmp/bad.yaml:5:43: models[0].epochs: expected a list of positive integers, got \"ten\"" -- "$ftb" plan "$tmp/bad.yaml"
check unknown-dataset 1 "ftb: dataset nope is not built in" -- "$ftb" datasets show nope
check bad-format 1 'ftb: --format: expected openai or vertex, got "csv"' -- "$ftb" datasets export people --format csv
check unknown-command 106 "A subcommand is required" -- "$ftb" frobnicate
check export-vertex 0 '{"contents":[{"role":"user","parts":[{"text":' -- "$ftb" datasets export people --format vertex
lines=$("$ftb" datasets export people --format openai --size 3 | wc -l)
[[ $lines -eq 18 ]] && echo "ok   export-lines" || { echo "FAIL export-lines: $lines lines, want 18"; fail=1; }
# A single line of error output, nothing else.
n=$("$ftb" plan "$tmp/bad.yaml" 2>&1 | wc -l)
[[ $n -eq 1 ]] && echo "ok   one-line-error" || { echo "FAIL one-line-error: $n lines"; fail=1; }
exit $fail
