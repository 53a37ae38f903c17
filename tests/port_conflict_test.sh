#!/usr/bin/env bash
# One server per port (issue 17, finding 1): with a coordinator running, a
# second `ftb coordinator` on the same gRPC port, a second one on the same
# --metrics-listen port, and a worker whose --metrics-listen port is taken
# each exit non-zero with an error naming the address. Before the fix gRPC's
# default SO_REUSEPORT let the second coordinator start and share the port.
#
# usage: port_conflict_test.sh FTB_BINARY
set -u
ftb=$1
tmp=$(mktemp -d /tmp/ftb-ports.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
unset FTB_AUTH_TOKEN FTB_COORDINATOR

grpc_port=$(port); metrics_port=$(port)
"$ftb" coordinator --listen 127.0.0.1:$grpc_port --state "$tmp/first" \
  --metrics-listen 127.0.0.1:$metrics_port > "$tmp/first.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$tmp/first.log" && break; sleep 0.1; done
grep -q "listening on" "$tmp/first.log" || fail "first coordinator did not start: $(cat "$tmp/first.log")"

# expect_refused NAME ADDRESS COMMAND...: COMMAND exits non-zero within 10 s
# (not killed by the timeout) and its output names ADDRESS.
expect_refused() {
  local name=$1 address=$2; shift 2
  timeout 10 "$@" > "$tmp/$name.log" 2>&1
  local rc=$?
  [[ $rc -eq 124 ]] && fail "$name: still running after 10 s on a busy port (rc 124): $(cat "$tmp/$name.log")"
  [[ $rc -ne 0 ]] || fail "$name: exited 0 on a busy port: $(cat "$tmp/$name.log")"
  grep -qF -- "$address" "$tmp/$name.log" || fail "$name: error does not name $address: $(cat "$tmp/$name.log")"
  grep -qi "cannot listen" "$tmp/$name.log" || fail "$name: error does not say it cannot listen: $(cat "$tmp/$name.log")"
  echo "ok: $name refused (exit $rc): $(grep -i 'cannot listen' "$tmp/$name.log" | head -1)"
}

expect_refused second_grpc "127.0.0.1:$grpc_port" \
  "$ftb" coordinator --listen 127.0.0.1:$grpc_port --state "$tmp/second"
expect_refused second_metrics "127.0.0.1:$metrics_port" \
  "$ftb" coordinator --listen 127.0.0.1:$(port) --state "$tmp/third" \
  --metrics-listen 127.0.0.1:$metrics_port
expect_refused worker_metrics "127.0.0.1:$metrics_port" \
  "$ftb" worker --coordinator 127.0.0.1:$grpc_port --backends test \
  --metrics-listen 127.0.0.1:$metrics_port

# The first coordinator still serves, alone.
"$ftb" status --coordinator 127.0.0.1:$grpc_port > "$tmp/status.log" 2>&1 ||
  fail "first coordinator stopped answering: $(cat "$tmp/status.log")"
kill -0 "${pids[0]}" 2>/dev/null || fail "first coordinator died"
echo "ok: the first coordinator still answers on 127.0.0.1:$grpc_port"
