#!/usr/bin/env bash
# The five-minute tour: installs what is missing, builds, starts drunc-broker
# with the built-in configuration (control tcp://127.0.0.1:5555, events
# tcp://127.0.0.1:5556), boots config/demo-session.json, shows ps and a few log
# lines. The broker keeps running afterwards; the last lines say how to stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
bin=$PWD/build

if "$bin/client/drunc-pm" --timeout 1 describe >/dev/null 2>&1; then
  echo "demo: a broker already answers on tcp://127.0.0.1:5555; using it"
else
  log=/tmp/drunc-broker.log
  nohup "$bin/broker/drunc-broker" >"$log" 2>&1 &
  echo $! >/tmp/drunc-broker.pid
  # Wait for the broker to say it is serving (or to fail, e.g. port in use).
  for _ in $(seq 1 100); do
    grep -q "serving on" "$log" && break
    if ! kill -0 "$(cat /tmp/drunc-broker.pid)" 2>/dev/null; then cat "$log"; exit 1; fi
    sleep 0.1
  done
  echo "demo: drunc-broker started (pid $(cat /tmp/drunc-broker.pid), log $log)"
fi

pm() { echo; echo "\$ drunc-pm $*"; "$bin/client/drunc-pm" "$@"; }
pm describe
# Run again, the demo replaces its session: drunc-pm refuses duplicate names.
"$bin/client/drunc-pm" kill --session demo >/dev/null 2>&1 || true
"$bin/client/drunc-pm" flush --session demo >/dev/null 2>&1 || true
pm boot --file config/demo-session.json
pm ps
pm logs --name run-control --how-far 5
pm logs --name '^readout-01$' --how-far 5
pm logs --name calibration
echo
echo "The broker is still running. Try:  build/client/drunc-pm ps --long-format"
echo "Stop the demo with:                build/client/drunc-pm terminate --yes && kill \$(cat /tmp/drunc-broker.pid)"
