#include "libssh2_handles.hpp"

#include <mutex>

namespace drunc::workers::ssh {

void initialise_library() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (libssh2_init(0) != 0) throw SshError("libssh2_init failed");
  });
}

std::string last_error(LIBSSH2_SESSION* session) {
  char* message = nullptr;
  int length = 0;
  libssh2_session_last_error(session, &message, &length, 0);
  return message && length > 0 ? std::string(message, static_cast<std::size_t>(length)) : "unknown libssh2 error";
}

void SessionDeleter::operator()(LIBSSH2_SESSION* session) const {
  // A non-blocking free returns EAGAIN while it still has channels to close;
  // once the socket is shut down (the owner does that first) it fails fast
  // instead, and frees.
  for (int attempt = 0; attempt < 100; ++attempt)
    if (libssh2_session_free(session) != LIBSSH2_ERROR_EAGAIN) return;
}

void ChannelDeleter::operator()(LIBSSH2_CHANNEL* channel) const { libssh2_channel_free(channel); }

}  // namespace drunc::workers::ssh
