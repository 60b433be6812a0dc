#!/bin/sh
# The demo fleet in one command: a collector with the example policy and
# four agents whose fake host roots hold real drift (deploy/docker/demo/
# hosts/README.md says which), so `driftwatch drift` has something to say.
#
#   deploy/docker/demo.sh up     build images, make the PKI, start the fleet,
#                                wait for every host's first report, print
#                                the CLI lines to try
#   deploy/docker/demo.sh down   stop it and delete its volumes (the PKI stays)
#
# Environment:
#   DEMO_PORT=7443          where the collector is published on 127.0.0.1
#   BIN_DIR=DIR             use binaries built there (e.g. target/debug)
#                           instead of `cargo build --release`
#   DEMO_PROJECT=driftwatch-demo   compose project name (several demos side by side)
#   DRIFTWATCH_DEMO_PKI=DIR where the PKI lives (default deploy/docker/.demo-pki)
#   DEMO_DOCKER_SOCK=PATH   the engine's socket db-1 sees (default from
#                           DOCKER_HOST when unix://, else /var/run/docker.sock)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export DRIFTWATCH_DEMO_PKI=${DRIFTWATCH_DEMO_PKI:-$here/.demo-pki}
export DEMO_PORT=${DEMO_PORT:-7443}
project=${DEMO_PROJECT:-driftwatch-demo}
case "${DOCKER_HOST:-}" in
    unix://*) sock=${DOCKER_HOST#unix://} ;;
    *) sock=/var/run/docker.sock ;;
esac
export DEMO_DOCKER_SOCK=${DEMO_DOCKER_SOCK:-$sock}
agents="web-1 web-2 web-3 db-1"

compose() { docker-compose -p "$project" -f "$here/compose.yaml" "$@"; }

# wait_for WHAT SECONDS COMMAND...: runs COMMAND every second until it
# succeeds; fails naming WHAT after SECONDS.
wait_for() {
    what=$1; secs=$2; shift 2
    i=0
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ "$i" -ge "$secs" ]; then
            echo "demo: $what did not happen within ${secs}s; see: docker-compose -p $project -f $here/compose.yaml logs" >&2
            exit 1
        fi
        sleep 1
    done
}

unhealthy() {
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$(compose ps -q shop-unhealthy)")" = unhealthy ]
}

# Every demo host has reported once: `hosts --json` names each.
all_reported() {
    out=$("$cli" --json hosts) || return 1
    for h in $agents; do
        printf '%s' "$out" | grep -q "\"host_id\": \"$h\"" || return 1
    done
}

up() {
    if [ -n "${BIN_DIR:-}" ]; then
        bin_dir=$(cd "$BIN_DIR" && pwd)
    else
        (cd "$repo" && cargo build --release --bins --locked)
        bin_dir=${CARGO_TARGET_DIR:-$repo/target}/release
    fi
    cli=$bin_dir/driftwatch
    "$here/build-images.sh" --bin-dir "$bin_dir" --tag dev
    # The shop's images: the collector's, under the tags its containers
    # name (nothing is pulled; there is no registry).
    docker tag driftwatch-collector:dev driftwatch-demo-shop:latest
    docker tag driftwatch-collector:dev driftwatch-demo-shop:1.4.2
    BIN_DIR=$bin_dir "$here/demo-pki.sh" "$DRIFTWATCH_DEMO_PKI"

    log=$(mktemp)
    if ! compose up -d collector shop-latest shop-unhealthy >"$log" 2>&1; then
        cat "$log" >&2
        if grep -qi 'already allocated\|address already in use' "$log"; then
            echo "demo: port $DEMO_PORT is busy; pick another: DEMO_PORT=7444 $0 up" >&2
        fi
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
    # Health is a volatile value, re-sent only at a full refresh: the
    # agents start once Docker has judged the container, so the first
    # report already says unhealthy.
    wait_for "shop-unhealthy turning unhealthy" 60 unhealthy

    # Create the agents, copy each fake root in, then start them. docker cp
    # makes the files root's, as a real host's /root and /etc are (the agent
    # refuses key files owned by neither their user nor root).
    compose up --no-start $agents
    for h in $agents; do
        docker cp "$here/demo/hosts/$h/." "$(compose ps -q "$h"):/host"
    done
    compose up -d $agents

    export DRIFTWATCH_COLLECTOR=https://localhost:$DEMO_PORT \
        DRIFTWATCH_CA=$DRIFTWATCH_DEMO_PKI/ca.pem \
        DRIFTWATCH_CERT=$DRIFTWATCH_DEMO_PKI/admin.pem \
        DRIFTWATCH_KEY=$DRIFTWATCH_DEMO_PKI/admin-key.pem
    wait_for "the first report of every demo host" 90 all_reported

    cat <<MSG

The demo fleet is up: a collector on https://localhost:$DEMO_PORT with the policy
deploy/examples/policy.toml, and agents web-1 web-2 web-3 (group=web) and db-1
(group=db) on the fake roots in deploy/docker/demo/hosts (its README says what
drift each holds). Try:

  export DRIFTWATCH_COLLECTOR=$DRIFTWATCH_COLLECTOR \\
         DRIFTWATCH_CA=$DRIFTWATCH_CA \\
         DRIFTWATCH_CERT=$DRIFTWATCH_CERT \\
         DRIFTWATCH_KEY=$DRIFTWATCH_KEY
  $cli hosts
  $cli drift
  $cli drift --host web-3
  $cli keys find --fingerprint SHA256:uaE4DvrMgJ0GWb1YM7QxM9NNyfz41kdSi/yVmINGCX0
  $cli host show db-1 --section raid --section containers
  $cli diff web-1 web-3
MSG
    # The fleet report is newer than some builds of the CLI.
    if "$cli" report --help >/dev/null 2>&1; then
        echo "  $cli report --html demo-report.html"
    fi
    cat <<MSG

Stop it with: ${DEMO_PROJECT:+DEMO_PROJECT=$project }$0 down
MSG
}

case "${1:-up}" in
    up) up ;;
    down) compose down -v ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
