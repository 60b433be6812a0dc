#!/bin/sh
# Bake step: install the agent package and write its enrollment config.
# Runs as root inside the image being built (Packer's shell provisioner), or
# against a directory tree with ROOT=/path for tests (then no apt, no systemctl).
#   DEB             path of driftwatch-agent_*.deb inside the image
#   COLLECTOR_URL   https://collector.example:7443
#   CA_FILE         the collector's CA certificate, uploaded beforehand
#   ENROLL_TOKEN    a `driftwatch tokens create` token (multi-use, expiring)
#   GROUP           optional group label (the token's group wins at enrollment)
#   INTERVAL        optional, default 60s
set -eu
ROOT=${ROOT:-}
: "${COLLECTOR_URL:?set COLLECTOR_URL}" "${CA_FILE:?set CA_FILE}" "${ENROLL_TOKEN:?set ENROLL_TOKEN}"
INTERVAL=${INTERVAL:-60s}

case "$COLLECTOR_URL" in https://*) ;; *) echo "COLLECTOR_URL must start with https://" >&2; exit 1 ;; esac

if [ -z "$ROOT" ]; then
    : "${DEB:?set DEB}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "$DEB"
fi

install -d -m 0755 "$ROOT/etc/driftwatch"
install -m 0644 "$CA_FILE" "$ROOT/etc/driftwatch/ca.pem"
# The token is a secret: root-only, never on a command line.
umask 077
printf '%s\n' "$ENROLL_TOKEN" > "$ROOT/etc/driftwatch/enroll-token"
umask 022
{
    echo "# Written at image bake time by deploy/packer/scripts/install-agent.sh."
    echo "collector = \"$COLLECTOR_URL\""
    echo 'ca = "/etc/driftwatch/ca.pem"'
    echo 'state_dir = "/var/lib/driftwatch"'
    echo 'enroll_token_file = "/etc/driftwatch/enroll-token"'
    echo "interval = \"$INTERVAL\""
    if [ -n "${GROUP:-}" ]; then
        printf '\n[labels]\ngroup = "%s"\n' "$GROUP"
    fi
} > "$ROOT/etc/driftwatch/agent.toml"

if [ -z "$ROOT" ]; then
    driftwatch-agent validate --config /etc/driftwatch/agent.toml
    # Enabled, not started: the agent must first run on the booted instance,
    # where its machine facts are the instance's own.
    systemctl enable driftwatch-agent.service
fi
