#!/bin/sh
# Fills fuzz/corpus/<target>/ (git-ignored) from the repository's
# tests/fixtures and fuzz/regressions/.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
fx=$here/../tests/fixtures
seed() { # target, files...
    t=$1; shift; mkdir -p "$here/corpus/$t"
    for f in "$@"; do [ -f "$f" ] && cp "$f" "$here/corpus/$t/"; done
    [ -d "$here/regressions/$t" ] && cp "$here/regressions/$t/"* "$here/corpus/$t/" 2>/dev/null || true
}
seed mdstat "$fx"/mdstat/*
seed storcli "$fx"/megaraid/storcli*
seed megacli "$fx"/megaraid/megacli*
seed authorized_keys "$fx"/ssh/authorized_keys* "$fx"/ssh/pubkeys/*
seed sshd_config "$fx"/ssh/sshd_config* "$fx"/ssh/sshd-T*
seed rsyslog "$fx"/logconfig/rsyslog*
seed syslog_ng "$fx"/logconfig/syslog-ng*
seed journald "$fx"/logconfig/journald*
seed logrotate "$fx"/logconfig/logrotate*
seed dpkg_status /var/lib/dpkg/status
seed proc_stat /proc/self/stat /proc/1/stat
seed docker_inspect "$fx"/docker/*
echo "corpus in $here/corpus"
