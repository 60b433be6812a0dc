#!/usr/bin/env bash
# Installs, idempotently, the system tools the test suite uses as oracles or
# test material, so a fresh machine needs only this script and cargo.
#   ssh-keygen     fingerprints oracle (openssh-client)
#   sshd           what logs in: tests/tests/e2e/offboard.rs runs it on loopback (openssh-server)
#   busybox        static binary for the tiny local Docker test images
#   docker-compose the demo fleet's compose file is checked with it
#   ldd            (libc-bin) lists what deploy/docker/build-images.sh copies
#   systemd-analyze  `verify` of the shipped units (systemd; nothing is started)
#   dpkg-deb       reading the built .deb packages (dpkg, on every Debian)
#   packer         `packer validate` of deploy/packer (Debian's packer, 1.6)
#   logrotate      `logrotate -d` oracle for the logrotate model
#   rsyslogd       `rsyslogd -N1` oracle for the rsyslog parser (rsyslog)
#   setfacl, getfacl (acl) and setfattr, getfattr (attr): a sweep's rewrite
#                  keeps every ACL and extended attribute
#   syslog-ng      `syslog-ng --syntax-only` oracle for the syslog-ng parser.
#                  Debian's syslog-ng-core conflicts with rsyslog (both are
#                  the system logger), so its package is unpacked, not
#                  installed, into $SYSLOG_NG_ROOT (nothing is started), and
#                  only its libraries are installed.
#   promtool       `promtool check rules` / `test rules` of deploy/prometheus
#                  (Debian's prometheus package). Its postinst adds a user
#                  and starts the daemon through invoke-rc.d (sysv script;
#                  systemctl only when /run/systemd/system exists), so it is
#                  installed under a policy-rc.d that refuses every start.
#   chromium       headless browser: the fleet report must render in a real
#                  one (tests/tests/e2e/report.rs: --dump-dom, --screenshot)
#   apt lists      `apt list --upgradable` is the oracle of the updates section
#                  and the lists' versions that of the dpkg ordering
#                  (agent/src/collect/updates_tests.rs): fetched when absent
#   ss             (iproute2) `ss -ltnup` oracle for the listening section
#                  (agent/src/collect/listening_tests.rs)
#   postgresql     the store's PostgreSQL tests start a cluster of their own
#                  (tests/src/pg.rs: initdb in a temp dir, a unix socket):
#                  collector/tests/pg_connect.rs (sslmode against a real
#                  TLS server), collector/tests/store_conformance.rs,
#                  tests/tests/e2e/pgstore.rs.
#                  The package's own cluster is neither made nor started.
#                  initdb refuses root, so the tests run the server as the
#                  unprivileged user driftwatch-pg, made here.
#   visudo         `visudo -c -f` oracle for the sudoers parser
#                  (agent/src/parse/sudoers/oracle.rs; Debian's sudo)
# cargo-deb is installed by scripts/build-debs, the one place that uses it.
# The Docker engine itself is the CI host's: the fleet tests fail, not skip,
# under CI=true when it is missing.
set -euo pipefail
need=()
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v ldd >/dev/null 2>&1 || need+=(libc-bin)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
command -v packer >/dev/null 2>&1 || need+=(packer)
[ -x /usr/sbin/logrotate ] || need+=(logrotate)
[ -x /usr/sbin/rsyslogd ] || need+=(rsyslog)
command -v setfacl >/dev/null 2>&1 || need+=(acl)
command -v setfattr >/dev/null 2>&1 || need+=(attr)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -x /usr/sbin/visudo ] || need+=(sudo)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
  apt-get update -qq
fi
for lib in libivykis0 libnet1 libpcre3 libglib2.0-0 libjson-c5 libwrap0 libcap2; do
  dpkg -s "$lib" >/dev/null 2>&1 || need+=("$lib")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "ci-deps: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v promtool >/dev/null 2>&1; then
  echo "ci-deps: installing prometheus (for promtool; the daemon is not started)" >&2
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# ci-deps: no service starts while installing\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
fi

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "ci-deps: installing postgresql (its own cluster is not made or started)" >&2
  mkdir -p /etc/postgresql-common/createcluster.d
  printf '# ci-deps: the tests make clusters of their own\ncreate_main_cluster = false\n' \
    >/etc/postgresql-common/createcluster.d/driftwatch-tests.conf
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# ci-deps: no service starts while installing\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
id -u driftwatch-pg >/dev/null 2>&1 ||
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin driftwatch-pg

# The test reads the same default (agent/src/parse/syslog_ng/oracle.rs).
SYSLOG_NG_ROOT=${SYSLOG_NG_ROOT:-/var/cache/driftwatch-tests/syslog-ng}
if [ ! -x "$SYSLOG_NG_ROOT/usr/sbin/syslog-ng" ]; then
  echo "ci-deps: unpacking syslog-ng-core into $SYSLOG_NG_ROOT" >&2
  dl=$(mktemp -d)
  chmod 0777 "$dl"
  (cd "$dl" && { apt-get download -qq syslog-ng-core 2>/dev/null ||
    { apt-get update -qq && apt-get download -qq syslog-ng-core; }; })
  mkdir -p "$SYSLOG_NG_ROOT"
  dpkg-deb -x "$dl"/syslog-ng-core_*.deb "$SYSLOG_NG_ROOT"
  # scl.conf lives in /etc/syslog-ng, which SYSLOGNG_PREFIX does not move;
  # the include directory is searched after it.
  cp "$SYSLOG_NG_ROOT/etc/syslog-ng/scl.conf" "$SYSLOG_NG_ROOT/usr/share/syslog-ng/include/"
  rm -rf "$dl"
fi
