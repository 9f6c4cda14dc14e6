#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need, then runs them.
# README's second command and .ci/run both call this.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v docker-registry >/dev/null 2>&1 || need_pkgs+=(docker-registry)
command -v umoci >/dev/null 2>&1 || need_pkgs+=(umoci)
command -v skopeo >/dev/null 2>&1 || need_pkgs+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || need_pkgs+=(apache2-utils)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
command -v c++ >/dev/null 2>&1 || need_pkgs+=(g++) # libFuzzer, for scripts/fuzz-smoke.sh
command -v script >/dev/null 2>&1 || need_pkgs+=(bsdutils) # a pty for the progress-line tests
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "installing test dependencies: ${need_pkgs[*]}" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
command -v kubectl >/dev/null 2>&1 || echo "warning: kubectl not found; the kubectl oracle and plugin-discovery tests need it" >&2

# Two jobs for two cores; the suite's own servers bind only 127.0.0.1.
# First the one test that builds a 200 MB image layer (memory must stay flat while scanning it),
# then the whole suite, then a short run of every fuzz target (about 3 minutes; fuzz/README.md).
BUILD_LARGE=1 cargo test --locked -j 2 --test registry_memory -- --ignored
cargo test --workspace --locked -j 2 "$@"
# The criterion benches (bench/hot-paths) are not tests; checking them keeps them building.
cargo check --locked -j 2 -p image-sec-hot-paths --benches
bash scripts/fuzz-smoke.sh
