#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Provisions the real peers the test suite runs against, into .cache/peers/ (git-ignored):
#
#   1. an OpenTelemetry Collector built with the OpenTelemetry Collector Builder (OCB) from
#      examples/collector-routing/collector/builder-config.yaml (pinned core + contrib modules);
#   2. the Go emitter (test/peers/go-emitter: OpenTelemetry Go SDK + otlploghttp), pinned by its
#      go.mod/go.sum;
#   3. a Python virtual environment with test/peers/requirements.txt (OpenTelemetry Python SDK +
#      OTLP/HTTP exporter, schemathesis), every package pinned.
#
# Each product is cached under a key made of its inputs and the toolchain's version, so a second
# run rebuilds nothing. Go's module and build caches and pip's cache are used as they are.
# Writes .cache/peers/peers.json, which the tests read. A missing toolchain (go, python3) fails
# with a message: tests that need a peer fail, they never skip.
set -euo pipefail

log() { printf '[peers] %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${KUBERNAUT_PEERS_CACHE:-$ROOT/.cache/peers}"
OCB_VERSION=v0.149.0
# The peers are compiled without optimisations: a third less compile time on a cold machine;
# what they do is the same, only slower, which no test measures.
GCFLAGS='all=-N -l'
MANIFEST="$ROOT/examples/collector-routing/collector/builder-config.yaml"
GO_EMITTER="$ROOT/test/peers/go-emitter"
PY_EMITTER="$ROOT/test/peers/python-emitter/emit.py"
REQUIREMENTS="$ROOT/test/peers/requirements.txt"

# --- toolchains -----------------------------------------------------------------------------
GO="$(command -v go || true)"
if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; fi
[ -n "$GO" ] || die "Go is not installed (no 'go' on PATH nor /usr/local/go/bin/go). The suite builds an
  OpenTelemetry Collector and a Go SDK emitter from Go modules: install Go >= 1.26."
PYTHON="$(command -v python3 || true)"
[ -n "$PYTHON" ] || die "Python 3 is not installed (no 'python3' on PATH). The suite runs the OpenTelemetry
  Python SDK and schemathesis in a virtual environment: install Python >= 3.10 with venv and pip."
PATH="$(dirname "$GO"):$PATH"
# The build directories live inside this git checkout; VCS stamping is not wanted there.
export PATH GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false"
go_version="$("$GO" env GOVERSION)"
py_version="$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
  die "Python $py_version is too old: the Python peers need >= 3.10"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- the Python environment (created in the background while Go builds) --------------------
py_key="$( (cat "$REQUIREMENTS"; echo "$py_version") | sha256sum | cut -c1-16)"
venv="$CACHE/venv-$py_key"
py_log="$CACHE/venv-$py_key.log"
py_pid=""
if [ -f "$venv/.complete" ]; then
  log "Python: cached ($venv)"
else
  log "Python: creating a virtual environment with Python $py_version and test/peers/requirements.txt"
  (
    t0="$(now)"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv" || { echo "python3 -m venv failed: install Python's venv module (Debian: apt-get install python3-venv)"; exit 1; }
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" ||
      { echo "pip could not install test/peers/requirements.txt"; exit 1; }
    touch "$venv/.complete"
    echo "ready in $(elapsed "$t0") s"
  ) >"$py_log" 2>&1 &
  py_pid=$!
fi

# --- the Collector -------------------------------------------------------------------------
collector_key="$( (cat "$MANIFEST"; echo "$OCB_VERSION $go_version $GCFLAGS") | sha256sum | cut -c1-16)"
collector_dir="$CACHE/otelcol-$collector_key"
collector_bin="$collector_dir/otelcol-audit"
if [ -x "$collector_bin" ]; then
  log "Collector: cached ($collector_bin)"
else
  log "Collector: building with OCB $OCB_VERSION and $go_version (first run only; a few minutes)"
  t0="$(now)"
  ocb="$CACHE/bin/ocb-$OCB_VERSION"
  if [ ! -x "$ocb" ]; then
    GOBIN="$CACHE/bin.tmp" "$GO" install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION" ||
      die "could not install the OpenTelemetry Collector Builder $OCB_VERSION from the Go module proxy"
    mkdir -p "$CACHE/bin"
    mv "$CACHE/bin.tmp/builder" "$ocb"
    rm -rf "$CACHE/bin.tmp"
  fi
  work="$collector_dir.tmp"
  rm -rf "$work"
  mkdir -p "$work"
  cp "$MANIFEST" "$work/builder-config.yaml"
  # OCB writes the sources and the binary under dist.output_path, relative to its directory.
  # OCB makes an otelcol-distribution* directory in TMPDIR and leaves it: give it the work dir's.
  mkdir -p "$work/tmp"
  (cd "$work" && TMPDIR="$work/tmp" "$ocb" --config builder-config.yaml --gcflags="$GCFLAGS" >"$work/build.log" 2>&1) || {
    tail -40 "$work/build.log" >&2
    die "the Collector build failed (log: $work/build.log)"
  }
  mkdir -p "$collector_dir"
  mv "$work/otelcol-audit/otelcol-audit" "$collector_bin.tmp"
  cp "$work/otelcol-audit/go.mod" "$collector_dir/go.mod"
  mv "$collector_bin.tmp" "$collector_bin"
  rm -rf "$work"
  log "Collector: built in $(elapsed "$t0") s ($collector_bin)"
fi

# --- the Go emitter ------------------------------------------------------------------------
go_key="$( (cat "$GO_EMITTER/go.mod" "$GO_EMITTER/go.sum" "$GO_EMITTER"/*.go; echo "$go_version $GCFLAGS") | sha256sum | cut -c1-16)"
go_dir="$CACHE/go-emitter-$go_key"
go_bin="$go_dir/go-emitter"
if [ -x "$go_bin" ]; then
  log "Go emitter: cached ($go_bin)"
else
  log "Go emitter: building with $go_version"
  t0="$(now)"
  mkdir -p "$go_dir"
  (cd "$GO_EMITTER" && "$GO" build -mod=readonly -trimpath -gcflags="$GCFLAGS" -ldflags='-s -w' -o "$go_bin.tmp" .) ||
    die "the Go emitter (test/peers/go-emitter) did not build"
  mv "$go_bin.tmp" "$go_bin"
  log "Go emitter: built in $(elapsed "$t0") s"
fi

if [ -n "$py_pid" ]; then
  wait "$py_pid" || { cat "$py_log" >&2; die "the Python environment could not be created (log: $py_log)"; }
  log "Python: $(tail -1 "$py_log")"
fi

# Products of earlier inputs are not needed any more (the lock is held: nothing else builds).
for stale in "$CACHE"/otelcol-* "$CACHE"/go-emitter-* "$CACHE"/venv-*; do
  case "$stale" in
  "$collector_dir" | "$go_dir" | "$venv" | "$py_log") ;;
  *) rm -rf "$stale" ;;
  esac
done

# --- what the tests read --------------------------------------------------------------------
collector_version="$("$collector_bin" --version | awk '{ print $NF }')"
schemathesis_version="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))')"
otel_py_version="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("opentelemetry-sdk"))')"
otel_go_version="$(cd "$GO_EMITTER" && "$GO" list -m -f '{{.Version}}' go.opentelemetry.io/otel/sdk/log)"
cat >"$CACHE/peers.json.tmp" <<EOF
{
  "collector": "$collector_bin",
  "collectorVersion": "$collector_version",
  "goEmitter": "$go_bin",
  "otelGoSdkLogVersion": "$otel_go_version",
  "python": "$venv/bin/python",
  "pythonEmitter": "$PY_EMITTER",
  "otelPythonSdkVersion": "$otel_py_version",
  "schemathesis": "$venv/bin/schemathesis",
  "schemathesisVersion": "$schemathesis_version"
}
EOF
mv "$CACHE/peers.json.tmp" "$CACHE/peers.json"
log "ready: Collector $collector_version, OTel Go SDK log $otel_go_version, OTel Python SDK $otel_py_version, schemathesis $schemathesis_version"
