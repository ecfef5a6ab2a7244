// drunc-pm watch: prints the live event feed (docs/PROTOCOL.md, "Events").
#pragma once

#include <string>

#include "client.hpp"

namespace drunc::cli {

struct WatchOptions {
  std::string session;  // only this session ("" = all)
  std::string name;     // only this exact friendly name ("" = all); needs no session filter
  bool logs = false, states = false, broadcasts = false;  // none set = all three
  bool json = false;
  bool color = false;      // ANSI colours (drunc-pm decides: --color, NO_COLOR, a terminal)
  client::CurveKeys keys;  // CURVE keys for the feed, if the broker uses them
};

// Follows the feed at events_address until interrupted (Ctrl-C), or until
// the broker broadcasts SERVER_SHUTDOWN (then says so on stderr and returns 0).
// Every line starts with the time the broker published the event. The
// broker's broadcasts are shown whatever the session and name filters (they
// are the broker's, not a session's). Returns an exit status.
int watch(const std::string& events_address, const WatchOptions& options);

}  // namespace drunc::cli
