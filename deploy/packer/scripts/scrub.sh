#!/bin/sh
# Last bake step: leave no identity in the image. Every instance made from it
# must enroll as itself at first boot. Removes the agent's identity, spool and
# counters (also any set aside by a re-enrollment) and empties machine-id so
# systemd makes a fresh one at first boot. ROOT=/path runs it on a tree (tests).
set -eu
ROOT=${ROOT:-}
if [ -z "$ROOT" ] && command -v systemctl >/dev/null 2>&1; then
    systemctl stop driftwatch-agent.service 2>/dev/null || true
fi
STATE="$ROOT/var/lib/driftwatch"
rm -rf "$STATE/identity" "$STATE/spool" "$STATE/counters.json"
rm -rf "$STATE"/identity.replaced-* "$STATE"/spool.replaced-* "$STATE"/counters.json.replaced-*
rm -f "$STATE"/*.tmp
# An empty (not missing) machine-id: systemd fills it at first boot.
if [ -e "$ROOT/etc/machine-id" ]; then
    : > "$ROOT/etc/machine-id"
fi
# dbus keeps its own copy on older systems; it must follow the new one.
if [ -f "$ROOT/var/lib/dbus/machine-id" ] && [ ! -L "$ROOT/var/lib/dbus/machine-id" ]; then
    rm -f "$ROOT/var/lib/dbus/machine-id"
    ln -s /etc/machine-id "$ROOT/var/lib/dbus/machine-id"
fi
if [ -z "$ROOT" ] && command -v cloud-init >/dev/null 2>&1; then
    cloud-init clean --logs
fi
echo "scrub: no driftwatch identity left in the image"
