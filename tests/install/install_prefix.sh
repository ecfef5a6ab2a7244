# Sourced by the install tests: install_prefix BUILD_DIR installs the build into
# a new temporary prefix, $prefix (removed on exit, with whatever the test adds
# to $cleanup), and sets $libdir.
prefix=$(mktemp -d /tmp/drunc-install.XXXXXX)
cleanup=()
on_exit() {
  for command in "${cleanup[@]}"; do eval "$command" || true; done
  rm -rf "$prefix"
}
trap on_exit EXIT

install_prefix() {
  cmake --install "$1" --prefix "$prefix" >"$prefix.log" 2>&1 || { cat "$prefix.log"; rm -f "$prefix.log"; exit 1; }
  rm -f "$prefix.log"
  libdir=$(dirname "$(find "$prefix" -name 'libdrunc_zmq_client.so' -print -quit)")
}

fail() { echo "FAIL: $*" >&2; exit 1; }
