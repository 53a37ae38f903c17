#!/usr/bin/env bash
# Installs the Debian 12 packages ftb needs to build, test and run, and only
# those that are missing. Idempotent: a second run installs nothing and does
# not touch the network. Needs root (or sudo) when something is missing.
#
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also what the test suite uses
#   scripts/install-deps.sh --bench  also the benchmarks' baselines (Optuna)
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build pkg-config ccache
  protobuf-compiler libprotobuf-dev libprotoc-dev
  libgrpc++-dev protobuf-compiler-grpc
  libabsl-dev librocksdb-dev prometheus-cpp-dev
  libcurl4-openssl-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libeigen3-dev libjemalloc-dev
)
test_pkgs=(
  python3-grpcio python3-protobuf python3-jsonschema chromium prometheus openssl iproute2 curl
)

bench_pkgs=(
  python3-optuna
)

want=("${build_pkgs[@]}")
case "${1:-}" in
  --test) want+=("${test_pkgs[@]}") ;;
  --bench) want+=("${bench_pkgs[@]}") ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -gt 0 ]]; then
  echo "install-deps: installing ${missing[*]}" >&2
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Chart rendering and validation tools (npm, pinned; see tests/deploy/).
if [[ "${1:-}" == --test ]]; then
  "$(dirname "$0")/../tests/deploy/install-tools.sh"
fi
