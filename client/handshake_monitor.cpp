#include "handshake_monitor.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <zmq_addon.hpp>

namespace drunc::client {

namespace {

// errno of one non-blocking connect to addr, waiting at most timeout_ms;
// ETIMEDOUT when it neither succeeds nor fails in time, 0 when it connects.
int probe_connect(const sockaddr* addr, socklen_t length, int family, int timeout_ms) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int error = 0;
  if (::connect(fd, addr, length) != 0) {
    error = errno;
    if (error == EINPROGRESS) {
      pollfd item{fd, POLLOUT, 0};
      if (::poll(&item, 1, timeout_ms) == 1) {
        socklen_t size = sizeof error;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
      } else {
        error = ETIMEDOUT;
      }
    }
  }
  ::close(fd);
  return error;
}

std::string explain_errno(int error) {
  if (error == ECONNREFUSED)
    return "connection refused: nothing listens there (is drunc-broker running, on that port?)";
  if (error == ENOENT) return "no such socket file (is drunc-broker running?)";
  if (error == ETIMEDOUT) return "the connection attempt failed (no answer from the host)";
  if (error == 0) return "the connection failed (ZeroMQ retries it)";
  return std::strerror(error);
}

std::string diagnose_tcp(const std::string& rest) {
  // rest is HOST:PORT, HOST possibly [v6]; ZeroMQ accepted its form already.
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos) return "the address has no port";
  std::string host = rest.substr(0, colon);
  const std::string port = rest.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int status = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
  if (status != 0)
    return "cannot resolve host \"" + host +
           "\": " + (status == EAI_SYSTEM ? std::string(std::strerror(errno)) : std::string(::gai_strerror(status)));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(found, &::freeaddrinfo);
  int error = 0;
  for (const addrinfo* entry = found; entry; entry = entry->ai_next) {
    error = probe_connect(entry->ai_addr, entry->ai_addrlen, entry->ai_family, 500);
    if (error == 0) break;
  }
  return explain_errno(error);
}

std::string diagnose_ipc(const std::string& path) {
  struct stat status;
  if (::stat(path.c_str(), &status) != 0) return "no socket file " + path + " (is drunc-broker running?)";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return "the socket path is too long";
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return explain_errno(probe_connect(reinterpret_cast<const sockaddr*>(&addr), sizeof addr, AF_UNIX, 500));
}

}  // namespace

std::string diagnose_connect_failure(const std::string& address) {
  if (address.rfind("tcp://", 0) == 0) return diagnose_tcp(address.substr(6));
  if (address.rfind("ipc://", 0) == 0) return diagnose_ipc(address.substr(6));
  return "the connection failed";
}

HandshakeMonitor::HandshakeMonitor(zmq::context_t& context, zmq::socket_t& watched, std::string address, bool curve)
    : socket_(context, zmq::socket_type::pair), address_(std::move(address)), curve_(curve) {
  char endpoint[64];
  std::snprintf(endpoint, sizeof endpoint, "inproc://drunc-handshake-%p", static_cast<void*>(this));
  const int events = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_CONNECTED |
                     ZMQ_EVENT_CONNECT_RETRIED;
  if (::zmq_socket_monitor(watched.handle(), endpoint, events) != 0) throw zmq::error_t();
  socket_.set(zmq::sockopt::linger, 0);
  socket_.connect(endpoint);
}

void HandshakeMonitor::check() {
  while (true) {
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(socket_, std::back_inserter(frames), zmq::recv_flags::dontwait)) return;
    if (frames.empty() || frames[0].size() < 6) continue;
    std::uint16_t event;
    std::uint32_t value;
    std::memcpy(&event, frames[0].data(), sizeof event);
    std::memcpy(&value, frames[0].data<char>() + 2, sizeof value);
    if (event == ZMQ_EVENT_CONNECTED) {
      connected_ = true;
      continue;
    }
    // A retry before any connection: the host did not resolve, or the
    // connection was refused or unreachable. ZeroMQ does not say which (its
    // events carry no errno), so ask the system the same question once.
    if (event == ZMQ_EVENT_CONNECT_RETRIED) {
      if (fail_fast_ && !connected_)
        throw ConnectError("cannot connect to " + address_ + ": " + diagnose_connect_failure(address_));
      continue;
    }
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
      throw HandshakeError("the broker at " + address_ + " refused this key (ZAP status " + std::to_string(value) +
                           "): it is not among the broker's admitted client certificates");
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      succeeded_ = true;
      continue;
    }
    // A CURVE server that cannot open our HELLO (we used the wrong server
    // key) just hangs up: the client sees the handshake end with no detail.
    // (libzmq 4.3 reports a mechanism mismatch this way too, at times).
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
      if (succeeded_) continue;
      throw HandshakeError(curve_ ? "the broker at " + address_ +
                                        " ended the CURVE handshake: the server key given (--server-key) is not "
                                        "this broker's, or it does not use CURVE"
                                  : "the broker at " + address_ +
                                        " ended the handshake: it probably requires CURVE security: give a client "
                                        "certificate and the broker's public key (--certificate and --server-key)");
    }
    if (event != ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) continue;
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
      throw HandshakeError(curve_ ? "the broker at " + address_ +
                                        " does not use CURVE security: connect without a certificate"
                                  : "the broker at " + address_ +
                                        " requires CURVE security: give a client certificate and the broker's "
                                        "public key (--certificate and --server-key)");
    char code[16];
    std::snprintf(code, sizeof code, "0x%08x", value);
    throw HandshakeError("the CURVE handshake with the broker at " + address_ + " failed (protocol error " + code +
                         "): is the server's public key right?");
  }
}

}  // namespace drunc::client
