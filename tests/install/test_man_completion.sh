#!/usr/bin/env bash
# test_man_completion.sh BUILD_DIR: installs into a temporary prefix; the man
# pages drunc-broker(1), drunc-pm(1) and drunc-zmq-config(5) are there and
# `man -l` renders each without a warning, with what it must say; the bash
# completion of drunc-pm is there, bash sources it, and it completes
# subcommands and a subcommand's options.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/install_prefix.sh"
install_prefix "$1"

man=$prefix/share/man
check_page() {  # page, then texts it must contain
  local page=$1 text
  shift
  [ -f "$man/$page" ] || fail "$page is not installed in $man"
  local rendered warnings
  warnings=$prefix/man-warnings
  rendered=$(MANWIDTH=100 MAN_KEEP_FORMATTING=0 man -l "$man/$page" 2>"$warnings" | col -b)
  [ ! -s "$warnings" ] || fail "man -l $page warns: $(cat "$warnings")"
  for text in "$@"; do
    grep -qF -- "$text" <<<"$rendered" || fail "$page does not say '$text'"
  done
  echo "$page: $(wc -l <<<"$rendered") lines"
}
check_page man1/drunc-broker.1 "drunc-broker - the drunc process manager over ZeroMQ" "--config" "--log-format" \
  "SIGHUP" "NOTIFY_SOCKET"
check_page man1/drunc-pm.1 "drunc-pm - command-line client" "COMMANDS" "kill the matching processes" "--session" \
  "DRUNC_PM_BROKER"
check_page man5/drunc-zmq-config.5 "drunc-zmq-config - the configuration file of drunc-broker" "control_endpoint" \
  "kill_timeout_s" "ssh.known_hosts_files" "/etc/drunc-zmq/broker.json"

completion=$prefix/share/bash-completion/completions/drunc-pm
[ -f "$completion" ] || fail "no bash completion in $prefix/share/bash-completion/completions"
# complete WORDS...: what bash offers for the last word (the program found on PATH).
complete_words() {
  PATH=$prefix/bin:$PATH bash -c '
    source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _drunc_pm; printf "%s\n" "${COMPREPLY[@]}"' bash "$completion" "$@"
}
registered=$(bash -c "source '$completion' && complete -p drunc-pm")
grep -q "_drunc_pm" <<<"$registered" || fail "sourcing does not register the completion"
[ "$(complete_words drunc-pm bo)" = "boot" ] || fail "drunc-pm bo<TAB> does not give boot: $(complete_words drunc-pm bo)"
# Captured first: with pipefail, grep -q quitting early could fail the pipeline by SIGPIPE.
words=$(complete_words drunc-pm "")
grep -qx terminate <<<"$words" || fail "drunc-pm <TAB> does not list terminate: $words"
words=$(complete_words drunc-pm kill --se)
grep -qx -- --session <<<"$words" || fail "drunc-pm kill --se<TAB> does not give --session: $words"
words=$(complete_words drunc-pm --br)
grep -qx -- --broker <<<"$words" || fail "drunc-pm --br<TAB> does not give --broker: $words"
echo "PASS"
