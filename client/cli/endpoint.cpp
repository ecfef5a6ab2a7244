#include "endpoint.hpp"

#include <unistd.h>

#include <re2/re2.h>

namespace drunc::cli {

namespace {

constexpr const char* kExpected = "expected tcp://HOST:PORT (e.g. tcp://127.0.0.1:5555) or ipc://PATH";

// HOST:PORT of a tcp:// address, or empty fields.
bool split_tcp(const std::string& address, std::string* host, std::string* port) {
  static const re2::RE2 form(R"(tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]+))");
  return re2::RE2::FullMatch(address, form, host, port);
}

std::string this_host() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return {};
  return name;
}

}  // namespace

std::string endpoint_problem(const std::string& address) {
  const std::string shown = "\"" + address + "\"";
  if (address.rfind("ipc://", 0) == 0) return address.size() > 6 ? "" : shown + " has no path: " + kExpected;
  if (address.rfind("tcp://", 0) != 0) {
    if (address.find("://") == std::string::npos && address.find(':') != std::string::npos)
      return shown + " has no transport: " + kExpected + "; did you mean tcp://" + address + "?";
    return shown + " is not a broker endpoint: " + kExpected;
  }
  std::string host, port;
  if (!split_tcp(address, &host, &port)) return shown + " is not a broker endpoint: " + kExpected;
  if (host == "*") return shown + ": connect to a host, not * (" + kExpected + ")";
  const long number = port.size() <= 5 ? std::stol(port) : 0;
  if (number < 1 || number > 65535) return shown + ": the port must be 1 to 65535 (" + kExpected + ")";
  return {};
}

bool is_local_host(const std::string& host) {
  if (host == "localhost" || host == "127.0.0.1" || host == "::1" || host == "[::1]") return true;
  const auto own = this_host();
  return !own.empty() && host == own;
}

bool is_local_endpoint(const std::string& address) {
  if (address.rfind("ipc://", 0) == 0) return true;
  std::string host, port;
  if (!split_tcp(address, &host, &port)) return false;
  return is_local_host(host) || host.rfind("127.", 0) == 0;
}

}  // namespace drunc::cli
