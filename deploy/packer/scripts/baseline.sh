#!/bin/sh
# Bake step: record what the image contains as the baseline its hosts are
# later compared with. `driftwatch-agent baseline capture` arrives with the
# snapshot-history work (issue 5); until an agent has it, skip with a message
# instead of failing the bake.
set -eu
AGENT=${AGENT:-driftwatch-agent}
if "$AGENT" baseline --help >/dev/null 2>&1; then
    "$AGENT" baseline capture --config /etc/driftwatch/agent.toml
else
    echo "driftwatch-agent has no 'baseline' subcommand: skipping the bake-time baseline"
fi
