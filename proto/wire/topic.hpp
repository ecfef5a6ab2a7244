// Topics of the event feed (docs/PROTOCOL.md, "Events"):
//
//   topic  = kind "/" session "/" name [ "/" uuid ]
//   kind   = "log" | "state" | "bcast"
//
// Fields are percent-encoded so that '/' only ever separates them: '/' is
// written %2F and '%' is written %25; every other byte, dots included, stands
// as it is. An empty field stays empty ("state//name/uuid"), so a subscriber
// can filter on "log/", "log/session/", "log/session/name/" by prefix.
#pragma once

#include <string>
#include <string_view>

namespace drunc::wire {

inline constexpr std::string_view kLogKind = "log";
inline constexpr std::string_view kStateKind = "state";
inline constexpr std::string_view kBroadcastKind = "bcast";
inline constexpr std::string_view kEventProtocol = "drunc-pm-events/1";

std::string encode_topic_field(std::string_view field);
std::string decode_topic_field(std::string_view field);

// "log/<session>/<name>/<uuid>" or "state/<session>/<name>/<uuid>".
std::string process_topic(std::string_view kind, std::string_view session, std::string_view name,
                          std::string_view uuid);

// "bcast/<session>/<emitter>".
std::string broadcast_topic(std::string_view session, std::string_view emitter);

}  // namespace drunc::wire
