#!/usr/bin/env bash
# Installs the nats-server version this project pins (deploy/nats-server.version, the same as the
# Kubernetes manifests' image tag) from its official Go module into a per-user cache, and prints
# the binary's path on stdout (progress goes to stderr). Idempotent: an installed binary of the
# pinned version is reused. Needs Go (1.24 or newer) and the Go module proxy.
#
#   scripts/install-nats-server.sh            # installs (once) and prints the path
#   export PATH="$(dirname "$(scripts/install-nats-server.sh)"):$PATH"
#
# The cache is $HOLDOVER_CACHE_DIR, else $XDG_CACHE_HOME/holdover, else ~/.cache/holdover; the
# test harness, the benchmarks and `npm start` look for the pinned binary there first.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="$(tr -d ' \n\r' <"$root/deploy/nats-server.version")"
cache="${HOLDOVER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/holdover}"
dir="$cache/nats-server/v$version"
bin="$dir/nats-server"

installed() { [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qx "nats-server: v$version"; }

if ! installed; then
  if ! command -v go >/dev/null 2>&1; then
    echo "install-nats-server: Go is needed to install nats-server v$version (https://go.dev/dl/)," >&2
    echo "or put a nats-server 2.10+ on PATH yourself (docs/deploying.md, 'Server versions')." >&2
    exit 1
  fi
  echo "install-nats-server: building nats-server v$version from its Go module into $dir (about a minute)…" >&2
  mkdir -p "$dir"
  GOBIN="$dir" GOFLAGS="-mod=mod" go install "github.com/nats-io/nats-server/v2@v$version" >&2
  installed || {
    echo "install-nats-server: $bin does not report v$version" >&2
    exit 1
  }
fi
echo "install-nats-server: $("$bin" --version) at $bin" >&2
echo "$bin"
