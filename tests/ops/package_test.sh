#!/usr/bin/env bash
# The Debian package (issue 12 §5), run by ctest (scripts/test) as root: builds it with
# `cpack -G DEB`, checks its contents, installs it with `dpkg -i`, runs `joule --help` and
# `joule migrate` from /usr/bin against the test PostgreSQL (also as the `joule` user with the
# packaged /etc/joule/joule.conf), then purges it.
# Usage: package_test.sh BUILD_DIR   (env JOULE_TEST_PGPORT)
set -euo pipefail
build=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
JOULE_ROOT=$SRC
source "$SRC/scripts/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
: "${JOULE_TEST_PGPORT:?run through scripts/test}"
[ "$(id -u)" = 0 ] || fail "dpkg -i needs root (scripts/test runs as root in CI)"
command -v cpack >/dev/null && command -v dpkg-shlibdeps >/dev/null || fail "cpack/dpkg-dev missing"

work=$(mktemp -d /tmp/joule-pkg-test.XXXXXX)
exec 9>/tmp/joule-package-test.lock
installed=0
cleanup() {
  ((installed)) && dpkg --purge joule >/dev/null 2>&1 || true
  "$PG_BIN/psql" -h 127.0.0.1 -p "$JOULE_TEST_PGPORT" -U joule -d postgres -qc \
    "DROP DATABASE IF EXISTS joule_test_pkg WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- build
cmake --build "$build" --target joule_packaged >/dev/null
(cd "$build" && cpack -G DEB -B "$work" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log" >&2; fail "cpack"; }
deb=$(ls "$work"/joule_*.deb)
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/joule ./etc/joule/joule.conf ./lib/systemd/system/joule.service \
         ./usr/share/doc/joule/prometheus-rules.yml; do
  grep -q " $f\$" <<<"$contents" || fail "$f not in the package"
done
[ "$(dpkg-deb -f "$deb" Package)" = joule ] || fail "package name"
dpkg-deb -f "$deb" Depends | grep -q 'libpqxx' || fail "no shared library dependencies: $(dpkg-deb -f "$deb" Depends)"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/joule/joule.conf ||
  fail "/etc/joule/joule.conf is not a conffile"

# --- install (one package test at a time on this machine: they share /usr/bin/joule)
flock -w 300 9 || fail "another package test holds the lock"
for attempt in $(seq 30); do  # dpkg's own lock may be held by someone's apt-get
  dpkg -i "$deb" >"$work/dpkg.log" 2>&1 && { installed=1; break; }
  grep -q 'lock' "$work/dpkg.log" || { cat "$work/dpkg.log" >&2; fail "dpkg -i"; }
  sleep 2
done
((installed)) || fail "dpkg -i: $(cat "$work/dpkg.log")"
dpkg-query -W -f='${Status}' joule | grep -q 'install ok installed' || fail "not installed"
getent passwd joule | grep -q ':/usr/sbin/nologin$' || fail "no joule system user: $(getent passwd joule)"
(($(id -u joule) < 1000)) || fail "joule is not a system user (uid $(id -u joule))"
[ "$(stat -c '%U:%G %a' /etc/joule/joule.conf)" = "root:joule 640" ] ||
  fail "/etc/joule/joule.conf: $(stat -c '%U:%G %a' /etc/joule/joule.conf)"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify /lib/systemd/system/joule.service || fail "systemd unit"
fi

# --- run it
help=$(/usr/bin/joule --help) || fail "joule --help"
grep -q 'default /etc/joule/joule.conf' <<<"$help" || fail "--help does not name /etc/joule/joule.conf"
PGPORT=$JOULE_TEST_PGPORT
"$PG_BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U joule -d postgres -qc \
  "DROP DATABASE IF EXISTS joule_test_pkg WITH (FORCE)" >/dev/null 2>&1
create_database joule_test_pkg
url="postgresql://joule@127.0.0.1:$PGPORT/joule_test_pkg"
out=$(JOULE_DB_URL=$url /usr/bin/joule migrate) || fail "joule migrate: $out"
grep -Eq '^applied [1-9][0-9]* migration' <<<"$out" || fail "joule migrate: $out"
# As the service user, with the packaged config (readable by the joule group only).
out=$(cd / && runuser -u joule -- env JOULE_DB_URL="$url" /usr/bin/joule migrate) || fail "migrate as joule: $out"
[ "$out" = "applied 0 migration(s)" ] || fail "second migrate: $out"
runuser -u joule -- /usr/bin/joule print-config --config /etc/joule/joule.conf >/dev/null ||
  fail "the joule user cannot read /etc/joule/joule.conf"
if runuser -u nobody -- /usr/bin/joule print-config --config /etc/joule/joule.conf >/dev/null 2>&1; then
  fail "/etc/joule/joule.conf is readable by everyone (db.url may hold a password)"
fi
[ "$("$PG_BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U joule -d joule_test_pkg -qtAc \
  "SELECT count(*) FROM schema_migrations")" -gt 0 ] || fail "no schema_migrations rows"

# --- remove
dpkg --purge joule >/dev/null
installed=0
[ ! -e /usr/bin/joule ] || fail "/usr/bin/joule left after purge"
echo "package test: $(basename "$deb") built, installed, ran --help and migrate, purged"
