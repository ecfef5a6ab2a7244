// The --broker address: its form checked before any socket is made (a
// malformed one is a usage error, not a ZeroMQ "Invalid argument"), and
// whether it is on this machine (then "localhost" means here).
#pragma once

#include <string>

namespace drunc::cli {

// Empty when address is tcp://HOST:PORT or ipc://PATH; else what is wrong
// with it, with the expected form.
std::string endpoint_problem(const std::string& address);

// localhost, 127.0.0.1, ::1 or this machine's host name: the hosts a broker
// runs processes on directly by default (docs/CONFIG.md, local_hosts).
bool is_local_host(const std::string& host);

// The broker at address runs on this machine (ipc://, a loopback or own host name).
bool is_local_endpoint(const std::string& address);

}  // namespace drunc::cli
