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
check default-plan 0 "campaign default: 2 dataset(s) x 1 model(s) -> 10 cells in 2 training runs" -- "$ftb" plan
check plan-json 0 '"cells_total": 10' -- "$ftb" plan --json
check help 0 "datasets" -- "$ftb" --help
check missing-spec 1 "ftb: cannot read campaign spec $tmp/none.yaml" -- "$ftb" plan "$tmp/none.yaml"
printf 'name: x\ndatasets:\n  - {source: builtin, name: people}\nmodels:\n  - {name: m, backend: local, epochs: [1, ten]}\n' > "$tmp/bad.yaml"
check bad-spec 1 "ftb: $tmp/bad.yaml:5:43: models[0].epochs: expected a list of non-negative integers (0 = the base model), got \"ten\"" -- "$ftb" plan "$tmp/bad.yaml"
# A FineTuneBench copy without coding_memorization.csv: nothing to train on is
# an error naming the file, unless the dataset is evaluation-only; then only
# epochs-0 cells (no training, $0 training) with auto hyperparameters.
mkdir -p "$tmp/fb/datasets/coding"
printf ',id,prompt,answer_before,answer\n0,0,Which Vexlib method fits?,fit,train\n' \
  > "$tmp/fb/datasets/coding/coding_generalization.csv"
coding_spec() {  # coding_spec EXTRA_DATASET_KEYS
  printf 'name: c\ndatasets:\n  - {source: finetunebench, name: coding, path: %s%s}\nmodels:\n  - {name: gpt-4o-mini-2024-07-18, backend: openai}\ngrid: {epochs: [0, 1, 5], learning_rate_multiplier: auto, batch_size: auto}\n' "$tmp/fb" "$1"
}
coding_spec "" > "$tmp/coding.yaml"
check no-training-data 1 "ftb: datasets[0] coding: no training examples to fine-tune on ($tmp/fb/datasets/coding/coding_memorization.csv is missing" -- "$ftb" plan "$tmp/coding.yaml"
coding_spec ", evaluation_only: true" > "$tmp/coding-eval.yaml"
check evaluation-only 0 "-> 1 cells in 1 training runs" -- "$ftb" plan "$tmp/coding-eval.yaml"
check evaluation-only-row 0 "coding           gpt-4o-mini-2024-07-18   openai        0   auto  auto      0        -      1    0.0000" -- "$ftb" plan "$tmp/coding-eval.yaml"
check evaluation-only-json 0 '"learning_rate_multiplier": "auto"' -- "$ftb" plan --json "$tmp/coding-eval.yaml"
check unknown-dataset 1 "ftb: dataset nope is not built in" -- "$ftb" datasets show nope
check bad-format 1 'ftb: --format: expected openai or vertex, got "csv"' -- "$ftb" datasets export people --format csv
check unknown-command 106 "A subcommand is required" -- "$ftb" frobnicate
check export-vertex 0 '{"contents":[{"role":"user","parts":[{"text":' -- "$ftb" datasets export people --format vertex
lines=$("$ftb" datasets export people --format openai --size 3 | wc -l)
[[ $lines -eq 18 ]] && echo "ok   export-lines" || { echo "FAIL export-lines: $lines lines, want 18"; fail=1; }
# Backend options are checked at plan time by each backend (issue 14): a typo
# names the file, line, field and the accepted keys instead of failing every
# cell at run time.
opts_spec() {  # opts_spec BACKEND OPTIONS_FLOW_MAPPING
  printf 'name: o\ndatasets:\n  - {source: builtin, name: people}\nmodels:\n  - name: m\n    backend: %s\n    options:\n      %s\ngrid: {epochs: [1]}\n' "$1" "$2" > "$tmp/opts.yaml"
}
opts_spec local 'layerz: 2'
check local-option-typo 1 "ftb: $tmp/opts.yaml:8:7: models[0].options.layerz: local backend: unknown option model.options.layerz; valid options: artifact_dir, background_seed, background_size, grad_clip, heads, layers," -- "$ftb" plan "$tmp/opts.yaml"
opts_spec local 'layers: two'
check local-option-type 1 "ftb: $tmp/opts.yaml:8:7: models[0].options.layers: local backend: model.options.layers: expected an integer in [1, 24], got \"two\"" -- "$ftb" plan "$tmp/opts.yaml"
opts_spec command '{train: "t", answer: "a", timeout: 5}'
check command-option-typo 1 "ftb: $tmp/opts.yaml:8:33: models[0].options.timeout: command backend: unknown model option \"timeout\"; known: answer, answer_timeout_s," -- "$ftb" plan "$tmp/opts.yaml"
opts_spec command '{answer: "a"}'
check command-option-missing 1 "ftb: $tmp/opts.yaml:8:7: models[0].options: command backend: model.options.train: expected a command template (required)" -- "$ftb" plan "$tmp/opts.yaml"
opts_spec test 'sleep_ms: 5'
check test-option-typo 1 "models[0].options.sleep_ms: test backend: unknown option model.options.sleep_ms; valid options: answers_per_cell," -- "$ftb" plan "$tmp/opts.yaml"
opts_spec openai '{base_url: "http://localhost:1/v1", max_token: 5}'
check openai-option-typo 1 "ftb: $tmp/opts.yaml:8:43: models[0].options.max_token: openai: unknown model option \"max_token\"; known:" -- "$ftb" plan "$tmp/opts.yaml"
opts_spec vertex '{project: p, location: l, training_data_uri: "gs://b/x.jsonl", regoin: x}'
check vertex-option-typo 1 "models[0].options.regoin: vertex: unknown model option \"regoin\"" -- "$ftb" plan "$tmp/opts.yaml"
opts_spec replay '{responses_path: /x, recorded: m}'
check replay-option-typo 1 "models[0].options.recorded: replay: unknown model option \"recorded\"; known: recorded_model, responses_path" -- "$ftb" plan "$tmp/opts.yaml"
opts_spec local '{layers: 2, width: 32, heads: 2}'
check local-options-ok 0 "campaign o: 1 dataset(s) x 1 model(s)" -- "$ftb" plan "$tmp/opts.yaml"
# A single line of error output, nothing else.
n=$("$ftb" plan "$tmp/bad.yaml" 2>&1 | wc -l)
[[ $n -eq 1 ]] && echo "ok   one-line-error" || { echo "FAIL one-line-error: $n lines"; fail=1; }
exit $fail
