#!/bin/bash
# The README's stated test counts equal what ctest registers (issue 15).
#
# README.md's "## Tests" section says "(N tests, M of them labelled `unit`,
# as `ctest -N` counts them" and this test counts the tests of the build it
# runs in, at test time, with `ctest -N` and `ctest -N -L unit`. Adding or
# removing a test without updating the README fails here, naming both numbers.
#
# usage: readme_test_count_test.sh CTEST_COMMAND BUILD_DIR README
set -euo pipefail
ctest=$1 build=$2 readme=$3

fail() { echo "FAIL: $*" >&2; exit 1; }

line=$(grep -E -o '\([0-9]+ tests, [0-9]+ of them labelled `unit`, as `ctest -N` counts them' \
         "$readme" || true)
[[ -n $line ]] || fail "$readme: no \"(N tests, M of them labelled \`unit\`, as \`ctest -N\` counts them\" in the Tests section"
[[ $(printf '%s\n' "$line" | wc -l) -eq 1 ]] || fail "$readme: the test-count phrase appears more than once"
stated_total=$(sed -E 's/^\(([0-9]+) tests, .*/\1/' <<< "$line")
stated_unit=$(sed -E 's/^\([0-9]+ tests, ([0-9]+) of them.*/\1/' <<< "$line")

count() {  # count [ctest args...]: "Total Tests: N" of ctest -N
  "$ctest" --test-dir "$build" -N "$@" | sed -n -E 's/^Total Tests: ([0-9]+)$/\1/p'
}
total=$(count)
unit=$(count -L '^unit$')
[[ -n $total && -n $unit ]] || fail "could not read \"Total Tests:\" from $ctest -N in $build"

echo "README: $stated_total tests, $stated_unit unit; ctest -N in $build: $total tests, $unit unit"
status=0
if [[ $stated_total != "$total" ]]; then
  echo "FAIL: $readme states $stated_total tests; ctest -N registers $total" >&2
  status=1
fi
if [[ $stated_unit != "$unit" ]]; then
  echo "FAIL: $readme states $stated_unit tests labelled unit; ctest -N -L unit registers $unit" >&2
  status=1
fi
exit $status
