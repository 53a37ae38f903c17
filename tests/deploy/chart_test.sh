#!/usr/bin/env bash
# Checks everything under deploy/ that can be checked without a cluster, a
# SLURM controller or a Docker engine:
#   - the Helm chart: `helm lint --strict`, `helm template` with the default
#     values, with every option on (values-all.yaml) and with the Secret
#     created from values (values-secret.yaml); each rendered manifest
#     validated against the Kubernetes / Prometheus Operator schemas, strictly
#     (validate.mjs); the rendered flags and mounts are the ones the values
#     ask for; bad value combinations fail the render;
#   - that the validator can fail: broken.yaml (one mistake per document) and
#     a rendered manifest with a misspelt field must be rejected;
#   - the SLURM scripts and this directory's scripts: bash -n, shellcheck;
#   - the systemd units: systemd-analyze verify (and a misspelt key must be
#     reported), systemd-analyze security below a threshold;
#   - with the ftb binary as $1: the SLURM scripts run for real outside
#     SLURM (coordinator publishes its address, a worker registers, both
#     drain on TERM and exit 0), and the Dockerfile's runtime packages
#     cover every library the binary links.
#
#   tests/deploy/install-tools.sh           # once: helm, schemas, shellcheck
#   tests/deploy/chart_test.sh [build/cli/ftb]
#
# Ends with "N passed, M failed"; exits 1 if anything failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
chart="$root/deploy/helm/ftb"
helm="$here/.tools/bin/helm"
ftb=${1:-}

if [[ ! -x "$helm" || ! -d "$here/node_modules/kubernetes-models" ]]; then
  echo "chart_test: tools missing: run tests/deploy/install-tools.sh (or scripts/install-deps.sh --test)" >&2
  exit 1
fi
for tool in node shellcheck systemd-analyze python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "chart_test: $tool missing: run tests/deploy/install-tools.sh" >&2
    exit 1
  fi
done

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

passed=0
failed=0
ok() { echo "ok   - $1"; passed=$((passed + 1)); }
fail() { echo "FAIL - $1"; failed=$((failed + 1)); }
# check NAME COMMAND...: passes when COMMAND exits 0; shows its output if not.
check() {
  local name=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then ok "$name"; else fail "$name"; sed 's/^/       /' "$tmp/out"; fi
}
# contains NAME FILE REGEX [COUNT]: FILE has REGEX (exactly COUNT times if given).
contains() {
  local n
  n=$(grep -c -E -- "$3" "$2")
  if [[ -n "${4:-}" ]]; then
    if [[ "$n" == "$4" ]]; then ok "$1"; else fail "$1 (found $n times, want $4: $3)"; fi
  else
    if [[ "$n" -gt 0 ]]; then ok "$1"; else fail "$1 (not found: $3)"; fi
  fi
}
lacks() {
  if grep -q -E -- "$3" "$2"; then fail "$1 (found: $3)"; else ok "$1"; fi
}

echo "# helm $("$helm" version --short), node $(node --version)"

# ---- Helm chart -------------------------------------------------------------
vall="$here/values-all.yaml"
vsec="$here/values-secret.yaml"
check "helm lint --strict (default values)" "$helm" lint --strict "$chart"
check "helm lint --strict (values-all.yaml)" "$helm" lint --strict "$chart" -f "$vall"
check "helm lint --strict (values-secret.yaml)" "$helm" lint --strict "$chart" -f "$vsec"

render() {  # render OUT [helm args...]
  local out=$1
  shift
  "$helm" template ftb "$chart" --namespace sweeps "$@" >"$out"
}
check "helm template (default values)" render "$tmp/default.yaml"
check "helm template (values-all.yaml)" render "$tmp/all.yaml" -f "$vall"
check "helm template (values-secret.yaml)" render "$tmp/secret.yaml" -f "$vsec"

for f in default all secret; do
  check "schemas, strict: $f render" node "$here/validate.mjs" "$tmp/$f.yaml"
  grep -E '^(ok|FAIL) ' "$tmp/out" | sed 's/^/       /'
done

# What the renders contain: the objects and flags the values ask for.
d="$tmp/default.yaml" a="$tmp/all.yaml" s="$tmp/secret.yaml"
contains "default: one StatefulSet, two worker Deployments" "$d" '^kind: (StatefulSet|Deployment)$' 3
contains "default: coordinator probed with grpc.health.v1 on 7070" "$d" '^            grpc:$' 2
contains "default: RocksDB on a volumeClaimTemplate at /var/lib/ftb" "$d" '^            - --state=/var/lib/ftb$' 1
contains "default: headless coordinator Service" "$d" '^  clusterIP: None$' 2
contains "default: workers probed on /healthz" "$d" 'path: /healthz' 4
lacks "default: no TLS or token flags" "$d" '--tls-|--auth-token-file'
lacks "default: no ServiceMonitor" "$d" 'kind: ServiceMonitor'
lacks "default: no Secret without values" "$d" '^kind: Secret$'
contains "all: ServiceMonitor" "$a" '^kind: ServiceMonitor$' 1
contains "all: GPU pool Deployment" "$a" 'name: ftb-worker-gpu$' 1
contains "all: 2 GPUs per GPU worker" "$a" 'nvidia.com/gpu: 2$' 1
contains "all: GPU workers run the command backend" "$a" '--backends=command$' 1
contains "all: coordinator serves TLS and requires client certs" "$a" '--tls-client-ca=/etc/ftb/tls/ca/ca.crt$' 1
contains "all: every worker verifies the server (3 pools)" "$a" '--tls-ca=/etc/ftb/tls/ca/ca.crt$' 3
contains "all: every worker presents a client cert" "$a" '--tls-cert=/etc/ftb/tls/client/tls.crt$' 3
contains "all: token file on coordinator and 3 pools" "$a" '--auth-token-file=/etc/ftb/auth/token$' 4
contains "all: TLS coordinator probed over HTTP /healthz" "$a" 'path: /healthz' 8
lacks "all: no plaintext gRPC probe under TLS" "$a" '^            grpc:$'
lacks "all: existingSecret, so no Secret created" "$a" '^kind: Secret$'
contains "all: keys read from the existing Secret" "$a" 'name: ftb-credentials$' 6
contains "secret: Secret created from values" "$s" '^kind: Secret$' 1
contains "secret: token key present" "$s" '^  auth-token: "dGVzdC10b2tlbi0wMTIzNDU2Nzg5"$' 1
contains "all pods: read-only root filesystem" "$a" 'readOnlyRootFilesystem: true' 4
contains "all pods: non-root" "$a" 'runAsNonRoot: true' 4

# NOTES.txt renders (helm template does not render it; a client-side dry-run does).
"$helm" install ftb "$chart" --namespace sweeps -f "$vall" --dry-run=client >"$tmp/notes.out" 2>&1
contains "NOTES.txt renders with the client flags for mutual TLS" "$tmp/notes.out" \
  'add --tls-ca ca.crt --tls-cert client.crt --tls-key client.key' 1

# Bad value combinations fail the render with a message naming the value.
refuses() {  # refuses NAME EXPECTED_MESSAGE helm-args...
  local name=$1 want=$2
  shift 2
  if "$helm" template ftb "$chart" "$@" >"$tmp/out" 2>&1; then
    fail "$name (rendered)"
  elif grep -q -- "$want" "$tmp/out"; then
    ok "$name"
  else
    fail "$name (wrong message)"; sed 's/^/       /' "$tmp/out"
  fi
}
refuses "render refuses tls.enabled without a certificate" "tls.enabled needs tls.secretName" \
  --set tls.enabled=true
refuses "render refuses tls.mutual without a client certificate" "tls.mutual needs tls.clientSecretName" \
  --set tls.enabled=true,tls.secretName=s,tls.caSecretName=c,tls.mutual=true
refuses "render refuses auth.enabled without a token" "auth.enabled needs secrets.authToken" \
  --set auth.enabled=true
refuses "render refuses an unknown worker role" "workers.judge.role must be tune or judge" \
  --set workers.judge.role=grade

# ---- The validator can fail -------------------------------------------------
ndocs=$(grep -c '^kind:' "$here/broken.yaml")
node "$here/validate.mjs" "$here/broken.yaml" >"$tmp/broken.out" 2>&1
rc=$?
if [[ $rc == 1 ]] && grep -q "^0 valid, $ndocs invalid$" "$tmp/broken.out"; then
  ok "validator rejects each of the $ndocs broken manifests"
else
  fail "validator on broken.yaml (exit $rc)"; sed 's/^/       /' "$tmp/broken.out"
fi
sed 's/readinessProbe:/readinesProbe:/' "$tmp/default.yaml" >"$tmp/typo.yaml"
if node "$here/validate.mjs" "$tmp/typo.yaml" >"$tmp/out" 2>&1; then
  fail "validator rejects a misspelt field in the rendered chart"
elif grep -q 'unknown field "readinesProbe"' "$tmp/out"; then
  ok "validator rejects a misspelt field in the rendered chart"
else
  fail "validator: wrong error for a misspelt field"; sed 's/^/       /' "$tmp/out"
fi

# ---- Shell scripts ----------------------------------------------------------
for f in "$root"/deploy/slurm/*.sbatch "$here"/*.sh; do
  check "bash -n $(basename "$f")" bash -n "$f"
  check "shellcheck $(basename "$f")" shellcheck -x "$f"
done

# ---- systemd units ----------------------------------------------------------
# verify needs ExecStart's binary to exist: point it at the ftb binary given,
# else at /bin/true. Warnings (unknown keys, bad values) count as failures.
units="$tmp/units"
mkdir -p "$units"
exe=${ftb:-/bin/true}
[[ -n "$ftb" ]] && exe=$(cd "$(dirname "$ftb")" && pwd)/$(basename "$ftb")
for u in "$root"/deploy/systemd/*.service; do
  sed "s#/usr/local/bin/ftb#$exe#g" "$u" >"$units/$(basename "$u")"
done
verify() {  # verify UNIT_PATH: exit 0 and print nothing
  local out
  if out=$(systemd-analyze verify "$1" 2>&1) && [[ -z "$out" ]]; then return 0; fi
  echo "$out"
  return 1
}
check "systemd-analyze verify ftb-coordinator.service" verify "$units/ftb-coordinator.service"
check "systemd-analyze verify ftb-worker@tune.service" verify "$units/ftb-worker@tune.service"
check "systemd-analyze verify ftb-worker@judge.service" verify "$units/ftb-worker@judge.service"
sed 's/^KillSignal=/KillSignl=/' "$units/ftb-coordinator.service" >"$units/typo.service"
if verify "$units/typo.service" >"$tmp/out" 2>&1; then
  fail "systemd-analyze verify reports a misspelt key"
else
  ok "systemd-analyze verify reports a misspelt key"
fi
# Exposure 0 (locked down) .. 10 (unprotected); the units score about 1.4 and 1.9.
check "systemd-analyze security: exposure <= 2.5" \
  systemd-analyze security --offline=yes --threshold=25 \
  "$units/ftb-coordinator.service" "$units/ftb-worker@tune.service"
# The worker's ExecStart is a shell line; check it as one ($$ -> $).
grep '^ExecStart=' "$root/deploy/systemd/ftb-worker@.service" |
  sed "s/^ExecStart=\/bin\/sh -c '//; s/'\$//; s/\\\$\\\$/\$/g" >"$tmp/worker-exec.sh"
check "shellcheck ftb-worker@.service ExecStart (word splitting intended)" \
  shellcheck -s sh -e SC2086 "$tmp/worker-exec.sh"
check "ftb-worker@tune picks local,replay" \
  bash -c "FTB_ROLE=tune FTB_SLOTS=1 sh -c \"\$(sed 's#/usr/local/bin/ftb#echo#' '$tmp/worker-exec.sh')\" | grep -qx 'worker --role tune --backends local,replay --slots 1'"

# ---- Docker -----------------------------------------------------------------
df="$root/deploy/docker/Dockerfile"
contains "Dockerfile: build stage runs scripts/install-deps.sh" "$df" '^RUN scripts/install-deps.sh' 1
contains "Dockerfile: Debian 12 stages" "$df" '^FROM debian:bookworm(-slim)?( AS build)?$' 2
for opt in FTB_BUILD_TESTS FTB_BUILD_BENCH; do
  contains "Dockerfile: -D$opt=OFF is an option of CMakeLists.txt" "$root/CMakeLists.txt" "^option\($opt " 1
done
contains "Dockerfile: non-root user" "$df" '^USER 10001:10001$' 1

# ---- With the ftb binary ----------------------------------------------------
if [[ -z "$ftb" ]]; then
  echo "# no ftb binary given: SLURM run and Dockerfile library checks not done"
else
  # Every shared library the binary links directly (its DT_NEEDED entries)
  # comes from a package the runtime stage installs (or from the base image:
  # libc6, libstdc++6, libgcc-s1); apt brings those packages' own dependencies.
  mapfile -t needed < <(readelf -d "$ftb" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  mapfile -t libpkgs < <(for so in "${needed[@]}"; do
      ldd "$ftb" | awk -v so="$so" '$1 == so && $3 ~ /^\// {print $3}'
    done | xargs -n1 readlink -f | xargs dpkg -S 2>/dev/null | cut -d: -f1 | sort -u)
  missing=()
  for p in "${libpkgs[@]}"; do
    case "$p" in libc6 | libstdc++6 | libgcc-s1) continue ;; esac
    grep -q -x -F -- "      $p \\" "$df" || missing+=("$p")
  done
  if [[ ${#libpkgs[@]} -gt 0 && ${#missing[@]} -eq 0 ]]; then
    ok "Dockerfile runtime packages cover the ${#libpkgs[@]} packages ftb links"
  else
    fail "Dockerfile runtime stage lacks: ${missing[*]:-(ldd found nothing)}"
  fi

  # The SLURM scripts, run by bash as sbatch would, outside SLURM.
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  export FTB_BIN="$ftb" FTB_SHARED="$tmp/shared" FTB_PORT FTB_WAIT=30
  FTB_PORT=$(free_port)
  FTB_METRICS_PORT=$(free_port) bash "$root/deploy/slurm/coordinator.sbatch" >"$tmp/coord.log" 2>&1 &
  cpid=$!
  pids+=("$cpid")
  FTB_ROLE=judge bash "$root/deploy/slurm/workers.sbatch" >"$tmp/worker.log" 2>&1 &
  wpid=$!
  pids+=("$wpid")
  for _ in $(seq 1 100); do
    grep -q 'registered' "$tmp/worker.log" && break
    sleep 0.2
  done
  if [[ "$(cat "$tmp/shared/coordinator.addr" 2>/dev/null)" == *":$FTB_PORT" ]]; then
    ok "coordinator.sbatch publishes HOST:PORT in coordinator.addr"
  else
    fail "coordinator.sbatch: no address file"; sed 's/^/       /' "$tmp/coord.log"
  fi
  contains "workers.sbatch: the worker registers with the coordinator" "$tmp/worker.log" 'registered'
  # TERM as SLURM sends it (--signal=B:TERM) to the batch shell: exec made the
  # worker that shell; the coordinator script forwards it.
  stopped() {  # stopped PID SECONDS: the process exits 0 within SECONDS
    local pid=$1 deadline=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null; do
      ((SECONDS < deadline)) || return 1
      sleep 0.2
    done
    wait "$pid"
  }
  kill -TERM "$wpid"
  check "workers.sbatch: TERM drains the worker, exit 0" stopped "$wpid" 30
  kill -TERM "$cpid"
  check "coordinator.sbatch: TERM stops the coordinator, exit 0" stopped "$cpid" 30
  if [[ -e "$tmp/shared/coordinator.addr" ]]; then
    fail "coordinator.sbatch removes coordinator.addr on exit"
  else
    ok "coordinator.sbatch removes coordinator.addr on exit"
  fi
  if [[ -d "$tmp/shared/state" ]]; then
    ok "coordinator state on the shared directory"
  else
    fail "no state directory under FTB_SHARED"
  fi
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
