#include "ssh/remote_process.hpp"

#include <signal.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>

#include "ssh/remote_command.hpp"

namespace drunc::workers::ssh {
namespace {

namespace pb = drunc_zmq::internal;

int signal_number(const std::string& name) {
  for (int number = 1; number < 65; ++number) {
    const char* abbreviation = ::sigabbrev_np(number);
    if (abbreviation && name == abbreviation) return number;
  }
  return 0;
}

bool is_socket_error(int error) {
  return error == LIBSSH2_ERROR_SOCKET_SEND || error == LIBSSH2_ERROR_SOCKET_RECV ||
         error == LIBSSH2_ERROR_SOCKET_DISCONNECT || error == LIBSSH2_ERROR_SOCKET_TIMEOUT;
}

// Reads what the channel has: stderr first (it carries the pid line, which
// must precede any output), then a bounded amount of stdout, so that one busy
// process cannot starve the others. False if the connection failed.
bool read_channel(Connection& connection, RemoteProcess& process, ChannelEvents& events, bool& read) {
  static thread_local std::array<char, 32 * 1024> buffer;
  LIBSSH2_CHANNEL* channel = process.channel.get();
  while (true) {
    const ssize_t n = libssh2_channel_read_stderr(channel, buffer.data(), buffer.size());
    if (n == LIBSSH2_ERROR_EAGAIN || n == 0) break;
    if (n < 0) {
      events.connection_failed(connection, "cannot read from the channel: " + last_error(connection.session.get()));
      return false;
    }
    read = true;
    std::vector<std::string> lines;
    process.errors.feed({buffer.data(), static_cast<std::size_t>(n)}, lines);
    pb::WorkerReport report;
    for (auto& line : lines) {
      if (process.pid == 0 && line.rfind(kRemotePidPrefix, 0) == 0) {
        process.pid = std::strtoll(line.c_str() + kRemotePidPrefix.size(), nullptr, 10);
        pb::WorkerReport started;
        started.mutable_started()->set_pid(process.pid);
        events.report(process, started);
        if (!process.early_output.empty()) {
          pb::WorkerReport early;
          for (auto& text : process.early_output) early.mutable_output()->add_lines(std::move(text));
          process.early_output.clear();
          events.report(process, early);
        }
      } else if (process.pid == 0) {
        process.error_text += (process.error_text.empty() ? "" : " ") + line;
      } else {
        report.mutable_output()->add_lines(std::move(line));
      }
    }
    if (report.has_output()) events.report(process, report);
  }
  for (int reads = 0; reads < 8; ++reads) {
    const ssize_t n = libssh2_channel_read(channel, buffer.data(), buffer.size());
    if (n == LIBSSH2_ERROR_EAGAIN || n == 0) break;
    if (n < 0) {
      events.connection_failed(connection, "cannot read from the channel: " + last_error(connection.session.get()));
      return false;
    }
    read = true;
    std::vector<std::string> lines;
    process.output.feed({buffer.data(), static_cast<std::size_t>(n)}, lines);
    if (lines.empty()) continue;
    if (process.pid == 0) {
      for (auto& line : lines) process.early_output.push_back(std::move(line));
      continue;
    }
    pb::WorkerReport report;
    for (auto& line : lines) report.mutable_output()->add_lines(std::move(line));
    events.report(process, report);
  }
  return true;
}

// The channel has closed: its exit, after the last output.
void report_end(RemoteProcess& process, LIBSSH2_SESSION* session, ChannelEvents& events) {
  pb::Exited exited;
  char* signal_name = nullptr;
  std::size_t signal_length = 0;
  libssh2_channel_get_exit_signal(process.channel.get(), &signal_name, &signal_length, nullptr, nullptr, nullptr,
                                  nullptr);
  if (signal_name) {
    const std::string name(signal_name, signal_length);
    libssh2_free(session, signal_name);
    exited.set_return_code(128 + signal_number(name));
    exited.set_reason("ended by signal " + name);
  } else {
    const int status = libssh2_channel_get_exit_status(process.channel.get());
    exited.set_return_code(status);
    exited.set_reason("exited with status " + std::to_string(status));
  }
  std::vector<std::string> last;
  process.output.finish(last);
  if (process.pid > 0 && !last.empty()) {
    pb::WorkerReport report;
    for (auto& line : last) report.mutable_output()->add_lines(std::move(line));
    events.report(process, report);
  }
  if (process.pid > 0) return events.exited(process, exited);
  std::vector<std::string> errors;
  process.errors.finish(errors);
  for (const auto& line : errors) process.error_text += (process.error_text.empty() ? "" : " ") + line;
  events.start_failed(process, "the command ended before starting (" + exited.reason() + ")" +
                                   (process.error_text.empty() ? "" : ": " + process.error_text));
}

}  // namespace

bool advance(Connection& connection, RemoteProcess& process, ChannelEvents& events) {
  LIBSSH2_SESSION* session = connection.session.get();
  const auto phase_before = process.phase;
  bool moved = false;
  if (process.phase == RemoteProcess::Phase::waiting) process.phase = RemoteProcess::Phase::opening;
  if (process.phase == RemoteProcess::Phase::opening) {
    LIBSSH2_CHANNEL* channel = libssh2_channel_open_session(session);
    if (!channel) {
      const int error = libssh2_session_last_errno(session);
      if (error == LIBSSH2_ERROR_EAGAIN) return false;
      if (error == LIBSSH2_ERROR_CHANNEL_FAILURE) {
        // MaxSessions reached, or (alone) the server not done yet with
        // channels that closed, or one that takes no channel at all.
        const bool alone =
            std::none_of(connection.processes.begin(), connection.processes.end(),
                         [&](const RemoteProcess* other) { return other != &process && other->channel; });
        events.channel_refused(connection, process, alone);
        return false;
      }
      const std::string reason = "cannot open a channel to " + connection.endpoint.host + ": " + last_error(session);
      if (is_socket_error(error))
        events.connection_failed(connection, reason);
      else
        events.start_failed(process, reason);
      return false;
    }
    process.channel.reset(channel);
    process.phase = RemoteProcess::Phase::executing;
  }
  if (process.phase == RemoteProcess::Phase::executing) {
    const int rc = libssh2_channel_exec(process.channel.get(), process.command.c_str());
    if (rc == LIBSSH2_ERROR_EAGAIN) return process.phase != phase_before;  // moved only if the channel just opened
    if (rc != 0) {
      events.start_failed(process,
                          "cannot start the command on " + connection.endpoint.host + ": " + last_error(session));
      return false;
    }
    process.phase = RemoteProcess::Phase::running;
  }
  if (process.phase == RemoteProcess::Phase::running) {
    while (!process.to_write.empty()) {
      const ssize_t written =
          libssh2_channel_write(process.channel.get(), process.to_write.data(), process.to_write.size());
      if (written == LIBSSH2_ERROR_EAGAIN) break;
      if (written < 0) {
        events.connection_failed(connection, "cannot write to the channel: " + last_error(session));
        return false;
      }
      process.to_write.erase(0, static_cast<std::size_t>(written));
      moved = true;
    }
    if (!read_channel(connection, process, events, moved)) return false;
    if (connection.closed || process.phase != RemoteProcess::Phase::running) return false;
    if (libssh2_channel_eof(process.channel.get())) process.phase = RemoteProcess::Phase::closing;
  }
  if (process.phase == RemoteProcess::Phase::closing) {
    int rc = libssh2_channel_close(process.channel.get());
    if (rc == 0) rc = libssh2_channel_wait_closed(process.channel.get());
    if (rc == LIBSSH2_ERROR_EAGAIN) return moved || process.phase != phase_before;
    if (rc != 0) {
      events.connection_failed(connection, "cannot close the channel: " + last_error(session));
      return false;
    }
    report_end(process, session, events);
    return true;  // `process` is gone
  }
  return moved || process.phase != phase_before;
}

}  // namespace drunc::workers::ssh
