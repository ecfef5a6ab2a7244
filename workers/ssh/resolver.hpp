// Name resolution off an SSH worker's thread. getaddrinfo blocks for as long
// as DNS takes (seconds when a server is slow), and one worker serves many
// hosts: its loop must not wait for one host's name. Each lookup runs on a
// helper thread (a few at once, the rest queued); results come back through
// an eventfd that the worker's epoll watches.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace drunc::workers::ssh {

using Addresses = std::vector<std::pair<sockaddr_storage, socklen_t>>;

// Fills addresses; returns 0 or a getaddrinfo error (EAI_*).
using Lookup = std::function<int(const std::string& host, int port, Addresses& addresses)>;

// getaddrinfo, for TCP, any address family, in its order.
int system_lookup(const std::string& host, int port, Addresses& addresses);
// The same for numeric addresses only (no DNS): EAI_NONAME for a name.
int numeric_lookup(const std::string& host, int port, Addresses& addresses);

class Resolver {
 public:
  struct Result {
    std::uint64_t id;
    int error;  // 0 or EAI_*
    Addresses addresses;
  };

  static constexpr int kMaxThreads = 4;

  explicit Resolver(Lookup lookup = system_lookup);
  // Lookups still running finish on their own threads; their results are dropped.
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Readable when results are waiting.
  int fd() const;
  // Starts a lookup; its result carries the id returned.
  std::uint64_t resolve(const std::string& host, int port);
  // The results that have come back, in no particular order.
  std::vector<Result> take_results();

 private:
  struct Shared;  // outlives the Resolver while its threads run
  std::shared_ptr<Shared> shared_;
  std::uint64_t next_id_ = 1;
};

}  // namespace drunc::workers::ssh
