#include "resolver.hpp"

#include <netdb.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>

namespace drunc::workers::ssh {
namespace {

int lookup_with(const std::string& host, int port, Addresses& addresses, int flags) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = flags;
  addrinfo* found = nullptr;
  const int error = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (error != 0) return error;
  for (const addrinfo* address = found; address; address = address->ai_next) {
    sockaddr_storage storage{};
    std::memcpy(&storage, address->ai_addr, address->ai_addrlen);
    addresses.emplace_back(storage, address->ai_addrlen);
  }
  ::freeaddrinfo(found);
  return 0;
}

}  // namespace

int system_lookup(const std::string& host, int port, Addresses& addresses) {
  return lookup_with(host, port, addresses, 0);
}

int numeric_lookup(const std::string& host, int port, Addresses& addresses) {
  return lookup_with(host, port, addresses, AI_NUMERICHOST);
}

struct Resolver::Shared {
  struct Request {
    std::uint64_t id;
    std::string host;
    int port;
  };

  explicit Shared(Lookup lookup_) : lookup(std::move(lookup_)), fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  }
  ~Shared() { ::close(fd); }

  // A helper thread: lookups until none is queued.
  static void serve(const std::shared_ptr<Shared>& self) {
    std::unique_lock lock(self->mutex);
    while (!self->queue.empty() && !self->closed) {
      Request request = std::move(self->queue.front());
      self->queue.pop_front();
      lock.unlock();
      Result result{request.id, 0, {}};
      result.error = self->lookup(request.host, request.port, result.addresses);
      lock.lock();
      self->results.push_back(std::move(result));
      const std::uint64_t one = 1;
      [[maybe_unused]] auto written = ::write(self->fd, &one, sizeof one);
    }
    --self->threads;
  }

  const Lookup lookup;
  const int fd;
  std::mutex mutex;
  std::deque<Request> queue;
  std::vector<Result> results;
  int threads = 0;
  bool closed = false;
};

Resolver::Resolver(Lookup lookup) : shared_(std::make_shared<Shared>(std::move(lookup))) {}

Resolver::~Resolver() {
  std::lock_guard lock(shared_->mutex);
  shared_->closed = true;
  shared_->queue.clear();
}

int Resolver::fd() const { return shared_->fd; }

std::uint64_t Resolver::resolve(const std::string& host, int port) {
  const std::uint64_t id = next_id_++;
  std::lock_guard lock(shared_->mutex);
  shared_->queue.push_back({id, host, port});
  if (shared_->threads < kMaxThreads) {
    ++shared_->threads;
    std::thread([shared = shared_] { Shared::serve(shared); }).detach();
  }
  return id;
}

std::vector<Resolver::Result> Resolver::take_results() {
  std::uint64_t count = 0;
  [[maybe_unused]] auto read = ::read(shared_->fd, &count, sizeof count);
  std::lock_guard lock(shared_->mutex);
  return std::exchange(shared_->results, {});
}

}  // namespace drunc::workers::ssh
