// The SSH workers' resolver: lookups run off the caller's thread, a slow one
// holds back neither the others nor the caller, and results say which lookup
// they answer. The lookup is a stand-in here (the real getaddrinfo is used by
// the SSH integration tests); the threads and the eventfd are real.
#include <catch2/catch.hpp>

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>

#include "ssh/resolver.hpp"

using drunc::workers::ssh::Addresses;
using drunc::workers::ssh::Resolver;

namespace {

// A lookup that answers at once, except for "slow", which waits until released.
class Lookups {
 public:
  int operator()(const std::string& host, int port, Addresses& addresses) {
    if (host == "slow") {
      std::unique_lock lock(mutex_);
      released_.wait(lock, [&] { return release_; });
    }
    if (host == "unknown") return EAI_NONAME;
    sockaddr_storage address{};
    auto& v4 = reinterpret_cast<sockaddr_in&>(address);
    v4.sin_family = AF_INET;
    v4.sin_port = htons(static_cast<std::uint16_t>(port));
    addresses.emplace_back(address, static_cast<socklen_t>(sizeof v4));
    return 0;
  }
  void release() {
    std::lock_guard lock(mutex_);
    release_ = true;
    released_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  bool release_ = false;
};

// Results until `count` have come, waiting on the resolver's fd (20 s at most).
std::vector<Resolver::Result> wait_for(Resolver& resolver, std::size_t count) {
  std::vector<Resolver::Result> all;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (all.size() < count && std::chrono::steady_clock::now() < deadline) {
    pollfd readable{resolver.fd(), POLLIN, 0};
    if (::poll(&readable, 1, 1000) <= 0) continue;
    for (auto& result : resolver.take_results()) all.push_back(std::move(result));
  }
  return all;
}

}  // namespace

TEST_CASE("a slow lookup holds back neither the other lookups nor the caller") {
  auto lookups = std::make_shared<Lookups>();
  Resolver resolver(
      [lookups](const std::string& host, int port, Addresses& out) { return (*lookups)(host, port, out); });
  const auto slow = resolver.resolve("slow", 22);
  std::set<std::uint64_t> fast;
  for (int i = 0; i < 2 * Resolver::kMaxThreads; ++i) fast.insert(resolver.resolve("fast-" + std::to_string(i), 2222));
  const auto unknown = resolver.resolve("unknown", 22);

  // More lookups than threads, one of them stuck: all the others answer.
  auto results = wait_for(resolver, fast.size() + 1);
  REQUIRE(results.size() == fast.size() + 1);
  for (const auto& result : results) {
    CHECK(result.id != slow);
    if (result.id == unknown) {
      CHECK(result.error == EAI_NONAME);
      continue;
    }
    CHECK(fast.count(result.id) == 1);
    CHECK(result.error == 0);
    REQUIRE(result.addresses.size() == 1);
    CHECK(ntohs(reinterpret_cast<const sockaddr_in&>(result.addresses[0].first).sin_port) == 2222);
  }
  lookups->release();
  results = wait_for(resolver, 1);
  REQUIRE(results.size() == 1);
  CHECK(results[0].id == slow);
}

TEST_CASE("a resolver destroyed while a lookup runs leaves it to finish on its own") {
  auto lookups = std::make_shared<Lookups>();
  {
    Resolver resolver(
        [lookups](const std::string& host, int port, Addresses& out) { return (*lookups)(host, port, out); });
    resolver.resolve("slow", 22);
  }                    // destroyed with the lookup still blocked: no wait, no crash
  lookups->release();  // the helper thread finishes and drops its result
}

TEST_CASE("numeric addresses need no lookup, names are refused by numeric_lookup") {
  Addresses addresses;
  CHECK(drunc::workers::ssh::numeric_lookup("127.0.0.2", 22, addresses) == 0);
  CHECK(addresses.size() == 1);
  addresses.clear();
  CHECK(drunc::workers::ssh::numeric_lookup("::1", 22, addresses) == 0);
  addresses.clear();
  CHECK(drunc::workers::ssh::numeric_lookup("localhost", 22, addresses) != 0);
  CHECK(addresses.empty());
}
