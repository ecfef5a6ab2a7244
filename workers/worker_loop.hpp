// The skeleton every worker thread runs, written once: the thread itself
// (WorkerThread) and its epoll loop (WorkerLoop). A backend's worker fills
// in what is its own: what a command does, what an fd it watches means, its
// timers. The local launcher and the SSH worker are both built on it.
//
// WorkerThread owns the thread and an eventfd its destructor writes to stop
// the loop. On the thread: name it, connect a DEALER to the broker's worker
// endpoint (worker_link.hpp), make the loop, say Ready for the backend, run.
// A loop that throws is gone with everything it owned (its processes end
// with it); the thread then tells the broker it failed, from a socket of its
// own, and ends.
//
// WorkerLoop::run: until the stop eventfd is readable, hand every queued
// command to on_command (the ZeroMQ fd only says the socket's state may have
// changed, so commands are drained before every wait), call before_wait,
// sleep in epoll_wait for at most milliseconds_to_wait, hand each ready fd
// to on_ready, then call after_events.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "backend.hpp"
#include "drunc_zmq/internal.pb.h"

namespace drunc::workers {

class WorkerLoop {
 public:
  // worker: for log messages ("local launcher", "ssh worker").
  WorkerLoop(zmq::socket_t& socket, int stop_fd, std::string worker);
  virtual ~WorkerLoop();
  WorkerLoop(const WorkerLoop&) = delete;
  WorkerLoop& operator=(const WorkerLoop&) = delete;

  // Serves until the stop eventfd is written; throws if a system call fails.
  void run();

 protected:
  virtual void on_command(const drunc_zmq::internal::WorkerCommand& command) = 0;
  // An fd it watches is ready (events: EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP).
  virtual void on_ready(int fd, std::uint32_t events) = 0;
  // How long epoll_wait may sleep: -1 for ever, 0 when work is pending.
  virtual int milliseconds_to_wait() const = 0;
  virtual void before_wait() {}
  virtual void after_events() {}

  // Adds fd to the epoll set; change_watch changes the events of one in it.
  void watch(int fd, std::uint32_t events);
  void change_watch(int fd, std::uint32_t events);
  void unwatch(int fd);
  // Sends a report to the broker, waiting while the pipe is full, but not
  // past a stop (worker_link.hpp): then false, and the loop ends.
  bool send(const drunc_zmq::internal::WorkerReport& report);
  bool stopping() const { return stopping_; }

 private:
  zmq::socket_t& socket_;
  int stop_fd_;
  std::string worker_;
  int epoll_fd_;
  int socket_fd_;
  bool stopping_ = false;
};

class WorkerThread : public Worker {
 public:
  // Called on the worker thread; the loop lives there and nowhere else.
  using MakeLoop = std::function<std::unique_ptr<WorkerLoop>(zmq::socket_t& socket, int stop_fd)>;

  // Starts the thread, named "drunc-" + routing_id, which says Ready for backend.
  WorkerThread(zmq::context_t& context, std::string endpoint, std::string routing_id, std::string backend,
               MakeLoop make_loop);
  // Stops the loop and joins: what the loop owned is gone (its processes too).
  ~WorkerThread() override;

 private:
  int stop_fd_ = -1;
  std::thread thread_;
};

}  // namespace drunc::workers
