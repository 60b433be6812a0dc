#!/bin/sh
# Makes the demo fleet's PKI in DIR (default deploy/docker/.demo-pki) with
# the collector image itself: a CA, a server certificate for the name
# "collector" (and localhost, for the CLI on this machine), an admin
# certificate and one host certificate per demo agent. Existing files are
# kept, so running it twice is harmless.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-${DRIFTWATCH_DEMO_PKI:-$here/.demo-pki}}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
pki() { docker run --rm -v "$dir:/pki" driftwatch-collector:dev pki "$@"; }
[ -f "$dir/ca.pem" ] ||
    pki init --dir /pki --server-name collector --server-name localhost --server-name 127.0.0.1
for h in web-1 web-2 db-1; do
    [ -f "$dir/hosts/$h/agent.pem" ] || pki issue --dir /pki --host-id "$h" --out "/pki/hosts/$h"
done
echo "demo PKI in $dir"
