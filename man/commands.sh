#!/usr/bin/env bash
# commands.sh DRUNC_PM > FILE: a help2man include file with a COMMANDS section,
# each subcommand of drunc-pm with its own --help, so that drunc-pm(1) always
# lists the options the program has.
set -euo pipefail
program=$1
roff() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
echo "[COMMANDS]"
"$program" --help | awk '/^Subcommands:/ {on = 1; next} on && NF {print $1}' | while read -r command; do
  echo ".SS $command"
  echo ".nf"
  "$program" "$command" --help | sed -e "s|^Usage: [^ ]*drunc-pm|Usage: drunc-pm|" | roff
  echo ".fi"
done
