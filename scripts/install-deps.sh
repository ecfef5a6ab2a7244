#!/usr/bin/env bash
# Installs, with apt-get, the Debian 12 packages drunc-zmq needs. By default
# only what building and running the broker and drunc-pm needs (the demo).
# Installs only what is missing; needs root (or sudo).
#   --docs   also help2man and go-md2man, for the man pages of an install
#   --tests  also what the tests need: Catch2, the test sshd and the shells its
#            users log in with, Python with pyzmq and protobuf, the tools the
#            install tests use (systemd-analyze, man, bash-completion), and the
#            man page tools, clang-format (scripts/test.sh passes it)
#   --fuzz   also clang, its sanitizer and libFuzzer runtimes and llvm-symbolizer,
#            for the fuzz targets (scripts/fuzz.sh, which passes it)
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libzmq3-dev cppzmq-dev libprotobuf-dev protobuf-compiler libssh2-1-dev
  libspdlog-dev nlohmann-json3-dev libcli11-dev libre2-dev libsystemd-dev
)
docs_packages=(help2man go-md2man)
test_packages=(
  catch2 openssh-server openssh-client tcsh zsh fish procps
  python3 python3-zmq python3-protobuf python3-setuptools python3-wheel python3-venv
  systemd man-db bsdextrautils bash-completion clang-format "${docs_packages[@]}"
)
fuzz_packages=(clang libclang-rt-14-dev llvm)

for option in "$@"; do
  case "$option" in
    --docs) packages+=("${docs_packages[@]}") ;;
    --tests) packages+=("${test_packages[@]}") ;;
    --fuzz) packages+=("${fuzz_packages[@]}") ;;
    *) echo "install-deps: unknown option $option (known: --docs, --tests, --fuzz)" >&2; exit 2 ;;
  esac
done

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: every package is installed"
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then as_root=(sudo); fi
echo "install-deps: installing ${missing[*]}"
"${as_root[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
