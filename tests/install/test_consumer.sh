#!/usr/bin/env bash
# test_consumer.sh BUILD_DIR: installs the build into a temporary prefix, checks
# what it holds (programs, the shared library's SONAME, headers, CMake package,
# pkg-config file), builds tests/install/consumer against it twice (find_package
# and pkg-config), starts the installed drunc-broker and runs both consumers
# against it: each prints the version and the broker's describe.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/install_prefix.sh"
install_prefix "$1"

for file in bin/drunc-broker bin/drunc-pm include/drunc_zmq/client.hpp include/drunc_zmq/version.hpp \
            include/drunc_zmq/wire/envelope.hpp include/drunc_zmq/druncschema/process_manager.pb.h \
            include/drunc_zmq/drunc_zmq/events.pb.h share/drunc-zmq/config/broker.json \
            share/drunc-zmq/proto/druncschema/process_manager.proto share/doc/drunc-zmq/README.md; do
  [ -e "$prefix/$file" ] || fail "$file is not installed"
done
[ -n "$libdir" ] || fail "libdrunc_zmq_client.so is not installed"
[ -e "$libdir/cmake/drunc_zmq/drunc_zmqConfig.cmake" ] || fail "no CMake package in $libdir/cmake"
[ -e "$libdir/pkgconfig/drunc-zmq.pc" ] || fail "no drunc-zmq.pc in $libdir/pkgconfig"
soname=$(objdump -p "$libdir/libdrunc_zmq_client.so" | awk '$1 == "SONAME" {print $2}')
[[ $soname =~ ^libdrunc_zmq_client\.so\.[0-9]+(\.[0-9]+)?$ ]] || fail "SONAME is '$soname'"
[ -e "$libdir/$soname" ] || fail "no $soname in $libdir"
echo "installed: SONAME $soname"

# find_package(drunc_zmq CONFIG)
work=$prefix/work
cmake -S "$here/consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/cmake" >/dev/null
# pkg-config drunc-zmq (the library's directory on the run path, as it is not a system one)
export PKG_CONFIG_PATH=$libdir/pkgconfig
[ "$(pkg-config --modversion drunc-zmq)" = "$("$prefix/bin/drunc-broker" --version | awk '{print $2}')" ] ||
  fail "pkg-config --modversion drunc-zmq is not the programs' version"
# shellcheck disable=SC2046
g++ -std=c++17 -o "$work/consumer-pkg-config" "$here/consumer/main.cpp" $(pkg-config --cflags --libs drunc-zmq) \
  -Wl,-rpath,"$libdir"
for consumer in "$work/cmake/consumer" "$work/consumer-pkg-config"; do
  libraries=$(ldd "$consumer")
  grep -q "$libdir/$soname" <<<"$libraries" || fail "$consumer does not load $libdir/$soname: $libraries"
done

# The installed broker, on free ports; its first line says where it serves.
cat >"$work/broker.json" <<'JSON'
{"name": "install-test", "control_endpoint": "tcp://127.0.0.1:*", "events_endpoint": "tcp://127.0.0.1:*"}
JSON
"$prefix/bin/drunc-broker" --config "$work/broker.json" >"$work/broker.log" 2>&1 &
broker_pid=$!
cleanup+=("kill $broker_pid; wait $broker_pid")
control=
for _ in $(seq 1 300); do  # up to 30 s
  control=$(sed -n 's/.*serving on \(tcp:[^ ,]*\),.*/\1/p' "$work/broker.log")
  [ -n "$control" ] && break
  kill -0 $broker_pid 2>/dev/null || fail "drunc-broker exited: $(cat "$work/broker.log")"
  sleep 0.1
done
[ -n "$control" ] || fail "drunc-broker did not start: $(cat "$work/broker.log")"

for consumer in "$work/cmake/consumer" "$work/consumer-pkg-config"; do
  output=$("$consumer" "$control")
  echo "$output"
  grep -q "^built against drunc-zmq [0-9]" <<<"$output" || fail "$consumer printed no version"
  grep -q "^describe: name install-test, [1-9][0-9]* commands" <<<"$output" || fail "$consumer: no describe"
done
echo "PASS"
