#!/bin/sh
# The demo fleet in one command:
#   deploy/docker/demo.sh up     build images (release), make the PKI, start collector + 3 agents
#   deploy/docker/demo.sh down   stop it and delete its volumes (the PKI directory stays)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
export DRIFTWATCH_DEMO_PKI=${DRIFTWATCH_DEMO_PKI:-$here/.demo-pki}
case "${1:-up}" in
    up)
        "$here/build-images.sh" ${BIN_DIR:+--bin-dir "$BIN_DIR"}
        "$here/demo-pki.sh" "$DRIFTWATCH_DEMO_PKI"
        docker-compose -p driftwatch-demo -f "$here/compose.yaml" up -d
        cat <<MSG
fleet started. Ask the collector (published on 127.0.0.1:7443):
  export DRIFTWATCH_COLLECTOR=https://localhost:7443 DRIFTWATCH_CA=$DRIFTWATCH_DEMO_PKI/ca.pem \\
         DRIFTWATCH_CERT=$DRIFTWATCH_DEMO_PKI/admin.pem DRIFTWATCH_KEY=$DRIFTWATCH_DEMO_PKI/admin-key.pem
  driftwatch hosts
or without a local CLI:
  docker-compose -p driftwatch-demo -f $here/compose.yaml exec collector driftwatch --collector https://localhost:7443 \\
         --ca /pki/ca.pem --cert /pki/admin.pem --key /pki/admin-key.pem hosts
MSG
        ;;
    down) docker-compose -p driftwatch-demo -f "$here/compose.yaml" down -v ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
