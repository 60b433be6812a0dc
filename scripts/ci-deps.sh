#!/usr/bin/env bash
# Installs, idempotently, the system tools the test suite uses as oracles or
# test material, so a fresh machine needs only this script and cargo.
#   ssh-keygen     fingerprints oracle (openssh-client)
#   busybox        static binary for the tiny local Docker test images
#   docker-compose the demo fleet's compose file is checked with it
#   ldd            (libc-bin) lists what deploy/docker/build-images.sh copies
# The Docker engine itself is the CI host's: the fleet tests fail, not skip,
# under CI=true when it is missing.
set -euo pipefail
need=()
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v ldd >/dev/null 2>&1 || need+=(libc-bin)
if [ ${#need[@]} -gt 0 ]; then
  echo "ci-deps: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
