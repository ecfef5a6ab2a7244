#!/usr/bin/env bash
# test_units.sh BUILD_DIR: installs into a temporary prefix and checks the
# systemd units there with `systemd-analyze verify` (no running systemd
# needed): syntax, ExecStart naming the installed drunc-broker, the man pages
# of Documentation= (found through MANPATH in the prefix), the template with an
# instance; and the sysusers.d entry with systemd-sysusers --dry-run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/install_prefix.sh"
install_prefix "$1"
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (apt-get install systemd)"

units=$prefix/lib/systemd/system
for unit in drunc-broker.service drunc-broker@.service; do
  [ -f "$units/$unit" ] || fail "$unit is not installed in $units"
  grep -q "^ExecStart=$prefix/bin/drunc-broker " "$units/$unit" || fail "$unit: ExecStart is not $prefix/bin/drunc-broker"
  grep -q '^Type=notify$' "$units/$unit" || fail "$unit is not Type=notify"
  grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$units/$unit" || fail "$unit: ExecReload does not send SIGHUP"
done
# A template is verified through an instance of it.
verify=$prefix/verify
mkdir -p "$verify"
cp "$units/drunc-broker.service" "$verify/"
cp "$units/drunc-broker@.service" "$verify/drunc-broker@demo.service"
man_check=--man=yes
[ -f "$prefix/share/man/man1/drunc-broker.1" ] || man_check=--man=no
output=$(cd "$verify" && MANPATH=$prefix/share/man systemd-analyze verify $man_check \
  drunc-broker.service drunc-broker@demo.service 2>&1) || fail "systemd-analyze verify: $output"
# Some findings are warnings with exit status 0: none is expected from these units.
findings=$(grep -v -e 'Failed to connect to bus' -e '^$' <<<"$output" || true)
if [ -n "$findings" ]; then
  fail "systemd-analyze verify: $output"
fi
grep -q '^ExecStart=.* --config /etc/drunc-zmq/%i.json$' "$units/drunc-broker@.service" ||
  fail "the template does not read /etc/drunc-zmq/INSTANCE.json"

sysusers=$prefix/lib/sysusers.d/drunc-zmq.conf
[ -f "$sysusers" ] || fail "no sysusers.d entry"
grep -q '^u drunc ' "$sysusers" || fail "the sysusers.d entry does not create user drunc"
# Captured first: with pipefail, grep -q quitting early could fail the pipeline by SIGPIPE.
sysusers_help=$(systemd-sysusers --help 2>/dev/null || true)
if grep -q -- --dry-run <<<"$sysusers_help"; then
  systemd-sysusers --dry-run "$sysusers" >/dev/null 2>&1 || fail "systemd-sysusers rejects $sysusers"
fi
echo "PASS"
