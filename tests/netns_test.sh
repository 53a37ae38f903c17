#!/usr/bin/env bash
# Multi-host: the coordinator and two tuning workers on three "hosts" —
# network namespaces with their own addresses on a private subnet, joined by
# veth pairs to a bridge in a fourth namespace (a star). Nothing is
# configured in the root namespace and no namespace has a route out, so all
# traffic stays inside these namespaces.
#
#   ftbc-N  10.213.0.1  coordinator          \
#   ftbw1-N 10.213.0.11 worker w1  --veth--  ftbbr-N (bridge br0)
#   ftbw2-N 10.213.0.12 worker w2            /
#
# A campaign of two 6-second training runs (backend: test) with 3-second
# leases: w1 leases one, w2 the other; w1's link is cut (`ip link set eth0
# down`) mid-task. Checks: w1's lease expires ("lease expired: worker w1" in
# the campaign's events), w2 runs the task and the campaign succeeds with
# exactly one re-lease (3 attempts) and one stored result per training run;
# then the link is restored, w1's late result is refused (its log shows the
# lease loss) and the results are unchanged (reports before and after are
# byte-identical).
#
# Needs root and `ip netns` (Debian iproute2); exits 77 (ctest: skipped)
# with a message otherwise. usage: netns_test.sh FTB_BINARY [STATE_DUMP]
set -u
ftb=$(readlink -f "$1")
dump=${2:-$(dirname "$ftb")/../tests/ftb_state_dump}
skip() { echo "SKIP: $*"; exit 77; }
fail() {
  echo "FAIL: $*"
  for f in "$tmp"/*.log; do echo "--- $f"; tail -15 "$f"; done
  exit 1
}

wait_for() {  # wait_for SECONDS COMMAND... : polls until COMMAND succeeds
  local until=$((SECONDS + $1)); shift
  while ! "$@"; do [[ $SECONDS -lt $until ]] || return 1; sleep 0.2; done
}

[[ $(id -u) -eq 0 ]] || skip "needs root (ip netns)"
command -v ip > /dev/null || skip "ip (iproute2) not installed"
n=$(( $$ % 100000 ))
C=ftbc-$n W1=ftbw1-$n W2=ftbw2-$n BR=ftbbr-$n
ip netns add "$BR" 2> /dev/null || skip "ip netns add is not permitted here"
tmp=$(mktemp -d /tmp/ftb-netns.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2> /dev/null; done
  wait 2> /dev/null
  for ns in "$C" "$W1" "$W2" "$BR"; do ip netns del "$ns" 2> /dev/null; done
  if [[ ${FTB_KEEP_TEST_DIR:-} == "" ]]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT
start=$SECONDS

# --- the network -------------------------------------------------------------
ip -n "$BR" link add br0 type bridge || fail "bridge"
ip -n "$BR" link set br0 up
ip -n "$BR" link set lo up
host() {  # host NS ADDRESS PORT_NAME
  ip netns add "$1" || fail "netns add $1"
  # Both ends are created inside namespaces: the root namespace is untouched.
  ip link add eth0 netns "$1" type veth peer name "$3" netns "$BR" || fail "veth $1"
  ip -n "$BR" link set "$3" master br0 up
  ip -n "$1" addr add "$2/24" dev eth0
  ip -n "$1" link set eth0 up
  ip -n "$1" link set lo up
}
host "$C" 10.213.0.1 pc
host "$W1" 10.213.0.11 p1
host "$W2" 10.213.0.12 p2
# No route leaves the namespaces.
for ns in "$C" "$W1" "$W2"; do
  [[ -z $(ip -n "$ns" route show default) ]] || fail "$ns has a default route"
done

# --- coordinator and campaign ------------------------------------------------
addr=10.213.0.1:7070
unset FTB_AUTH_TOKEN FTB_COORDINATOR
export FTB_COORDINATOR=$addr
inc() { ip netns exec "$C" "$ftb" "$@"; }  # a client on the coordinator's host
ip netns exec "$C" "$ftb" coordinator --listen $addr --state "$tmp/state" > "$tmp/coordinator.log" 2>&1 &
pids+=($!)
for i in $(seq 100); do grep -q "listening on" "$tmp/coordinator.log" && break; sleep 0.1; done
grep -q "listening on" "$tmp/coordinator.log" || fail "coordinator did not start"
reach() {  # reach NS: a TCP connection from NS to the coordinator succeeds
  ip netns exec "$1" python3 -c 'import socket; socket.create_connection(("10.213.0.1", 7070), 1)' \
    2> /dev/null
}
wait_for 10 reach "$W1" || fail "no connectivity w1 -> coordinator"
wait_for 10 reach "$W2" || fail "no connectivity w2 -> coordinator"

cat > "$tmp/spec.yaml" << 'EOF'
name: netns
datasets:
  - {source: builtin, name: people, size: 2, seed: 5}
models:
  - name: fixture
    backend: test
    options: {sleep_ms_min: 6000, sleep_ms_max: 6000}
grid:
  epochs: [1, 2]
  seed: [0, 1]
retry: {lease_seconds: 3, initial_backoff_seconds: 0.5, max_attempts: 3}
EOF
# Submitted before the workers start, so they register with its 3 s lease
# (heartbeat every second).
id=$(inc submit "$tmp/spec.yaml") || fail "submit"
inc watch "$id" > "$tmp/watch.log" 2>&1 &
pids+=($!)

leased() { inc status "$id" --json | python3 -c 'import json,sys; print(int(json.load(sys.stdin).get("tasks_leased", 0)))'; }
leased_is() { [[ $(leased) == "$1" ]]; }

ip netns exec "$W1" "$ftb" worker --coordinator $addr --backends test --worker-id w1 \
  > "$tmp/w1.log" 2>&1 &
pids+=($!)
wait_for 15 leased_is 1 || fail "w1 did not lease a task"
ip netns exec "$W2" "$ftb" worker --coordinator $addr --backends test --worker-id w2 \
  > "$tmp/w2.log" 2>&1 &
pids+=($!)
wait_for 15 leased_is 2 || fail "w2 did not lease the other task"

# --- cut w1 mid-task ---------------------------------------------------------
sleep 1
ip -n "$W1" link set eth0 down
cut_at=$SECONDS
echo "cut w1's link $((SECONDS - start)) s into the test"
done_() { inc status "$id" | grep -q succeeded; }
wait_for 40 done_ || fail "campaign did not finish without w1"
echo "campaign succeeded $((SECONDS - cut_at)) s after the cut"
grep -q "lease expired: worker w1" "$tmp/watch.log" || fail "no lease expiry of w1 in the events"
inc status "$id" --json > "$tmp/status-before.json"
python3 - "$tmp/status-before.json" << 'EOF' || fail "status after the cut"
import json, sys
p = {k: int(v) if isinstance(v, str) and v.isdigit() else v
     for k, v in json.load(open(sys.argv[1])).items()}
assert p["cells_done"] == 4 and p.get("cells_failed", 0) == 0, p
assert p["tasks_done"] == 2, p
assert p["attempts"] == 3, ("expected exactly one re-lease", p)
EOF
inc report --coordinator $addr --campaign "$id" --format json --out "$tmp/report-before.json" ||
  fail "report before"

# --- restore: w1's late result is refused ------------------------------------
ip -n "$W1" link set eth0 up
refused() { grep -Eq "lease lost|LEASE_LOST" "$tmp/w1.log"; }
wait_for 30 refused || fail "w1's late result was not refused"
echo "w1's late result refused: $(grep -Eh 'lease lost|LEASE_LOST' "$tmp/w1.log" | head -1)"
sleep 1
inc status "$id" --json > "$tmp/status-after.json"
cmp -s "$tmp/status-before.json" "$tmp/status-after.json" || {
  diff "$tmp/status-before.json" "$tmp/status-after.json"; fail "status changed after w1's report"; }
inc report --coordinator $addr --campaign "$id" --format json --out "$tmp/report-after.json" ||
  fail "report after"
cmp -s "$tmp/report-before.json" "$tmp/report-after.json" || fail "results changed after w1's report"

# --- the store: one result per training run ----------------------------------
for p in "${pids[@]}"; do kill -TERM "$p" 2> /dev/null; done
for p in "${pids[@]}"; do wait "$p" 2> /dev/null; done
pids=()
# w2 ran both training runs (its own and w1's); w1 recorded nothing.
grep -q "stopped (ok): leased 2, completed 2" "$tmp/w2.log" || fail "w2 did not complete 2 tasks"
grep -q "leased 1, completed 0," "$tmp/w1.log" || fail "w1 should have completed nothing"
if [[ -x $dump ]]; then
  results=$("$dump" "$tmp/state" 2> /dev/null | grep -ac "^r/$id/")
  [[ $results -eq 2 ]] || fail "$results stored results, want 2"
  echo "store: $results results for 2 training runs"
fi
echo "ok: netns test passed in $((SECONDS - start)) s"
