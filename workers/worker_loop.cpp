#include "worker_loop.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <system_error>

#include <spdlog/spdlog.h>

#include "worker_link.hpp"

namespace drunc::workers {

WorkerLoop::WorkerLoop(zmq::socket_t& socket, int stop_fd, std::string worker)
    : socket_(socket), stop_fd_(stop_fd), worker_(std::move(worker)), epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  socket_fd_ = socket_.get(zmq::sockopt::fd);
  watch(socket_fd_, EPOLLIN);
  watch(stop_fd_, EPOLLIN);
}

WorkerLoop::~WorkerLoop() { ::close(epoll_fd_); }

void WorkerLoop::run() {
  std::array<epoll_event, 64> events;
  while (!stopping_) {
    drain_commands(socket_, worker_,
                   [this](const drunc_zmq::internal::WorkerCommand& command) { on_command(command); });
    before_wait();
    const int n = ::epoll_wait(epoll_fd_, events.data(), events.size(), milliseconds_to_wait());
    if (n < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "epoll_wait");
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == stop_fd_)
        stopping_ = true;
      else if (fd != socket_fd_)  // commands: drained at the top of the loop
        on_ready(fd, events[i].events);
    }
    after_events();
  }
}

void WorkerLoop::watch(int fd, std::uint32_t events) {
  epoll_event event{};
  event.events = events;
  event.data.fd = fd;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl add");
}

void WorkerLoop::change_watch(int fd, std::uint32_t events) {
  epoll_event event{};
  event.events = events;
  event.data.fd = fd;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event) != 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl mod");
}

void WorkerLoop::unwatch(int fd) { ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

bool WorkerLoop::send(const drunc_zmq::internal::WorkerReport& report) {
  if (!send_report(socket_, report, stop_fd_)) stopping_ = true;
  return !stopping_;
}

WorkerThread::WorkerThread(zmq::context_t& context, std::string endpoint, std::string routing_id, std::string backend,
                           MakeLoop make_loop)
    : stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (stop_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  thread_ = std::thread([this, &context, endpoint = std::move(endpoint), routing_id = std::move(routing_id),
                         backend = std::move(backend), make_loop = std::move(make_loop)] {
    name_this_thread("drunc-" + routing_id);
    try {
      zmq::socket_t socket = connect_to_broker(context, endpoint, routing_id);
      const auto loop = make_loop(socket, stop_fd_);
      send_ready(socket, backend);
      loop->run();
    } catch (const std::exception& error) {
      // The loop is gone, and with it every process it owned.
      spdlog::critical("launcher worker {} stopped: {}", routing_id, error.what());
      report_worker_failure(context, endpoint, routing_id, error.what());
    }
  });
}

WorkerThread::~WorkerThread() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto written = ::write(stop_fd_, &one, sizeof one);
  thread_.join();
  ::close(stop_fd_);
}

}  // namespace drunc::workers
