#!/bin/sh
# Makes the demo fleet's PKI in DIR (default deploy/docker/.demo-pki): a CA,
# a server certificate for the name "collector" (and localhost, for the CLI
# on this machine), an admin certificate and one host certificate per demo
# agent. Existing files are kept, so running it twice is harmless.
#
# With BIN_DIR set (built binaries) it runs $BIN_DIR/driftwatch-collector,
# otherwise the collector image, as the calling user: the admin key must be
# readable by whoever runs the CLI on this machine.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-${DRIFTWATCH_DEMO_PKI:-$here/.demo-pki}}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ -n "${BIN_DIR:-}" ] && [ -x "$BIN_DIR/driftwatch-collector" ]; then
    pki() { "$BIN_DIR/driftwatch-collector" pki "$@"; }
    at=$dir
else
    pki() { docker run --rm --user "$(id -u):$(id -g)" -v "$dir:/pki" driftwatch-collector:dev pki "$@"; }
    at=/pki
fi
[ -f "$dir/ca.pem" ] ||
    pki init --dir "$at" --server-name collector --server-name localhost --server-name 127.0.0.1
for h in web-1 web-2 web-3 db-1; do
    [ -f "$dir/hosts/$h/agent.pem" ] || pki issue --dir "$at" --host-id "$h" --out "$at/hosts/$h"
done
echo "demo PKI in $dir"
