#!/bin/sh
# Bake step: record what the image contains as the baseline every host built
# from it is compared with (`driftwatch diff HOST --baseline image`, and
# baseline findings in `driftwatch drift`). The first agent that reports
# from the image uploads it; scrub.sh keeps it in the image.
set -eu
AGENT=${AGENT:-driftwatch-agent}
STATE_DIR=${STATE_DIR:-/var/lib/driftwatch}
: "${IMAGE_ID:?IMAGE_ID must name the image (the template sets it from the build time)}"
if [ -n "${ROOT:-}" ]; then
    "$AGENT" baseline capture --state-dir "$STATE_DIR" --image-id "$IMAGE_ID" --root "$ROOT"
else
    "$AGENT" baseline capture --state-dir "$STATE_DIR" --image-id "$IMAGE_ID"
fi
