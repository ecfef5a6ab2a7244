// The event feed's position that goes with every ps reply: a
// drunc_zmq.FeedPosition in Response.children[0] (docs/PROTOCOL.md, "Joining
// late"). It is kept as serialized Response bytes holding only that child,
// to append to the reply's own bytes (concatenated serialized messages merge,
// so the reply gains the child): building the child as fresh messages for
// every ps cost about as much as the rest of the reply.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "drunc_zmq/events.pb.h"
#include "druncschema/request_response.pb.h"
#include "registry.hpp"

namespace drunc::broker {

class FeedPositionChild {
 public:
  explicit FeedPositionChild(const std::string& broker_name);
  // The serialized Response holding the position for these records (listed
  // in this order); valid until the next call.
  std::string_view bytes(std::uint64_t publisher_id, std::uint64_t sequence, const std::vector<ProcessRecord*>& records,
                         const std::unordered_map<std::string, std::uint64_t>& session_sequences);

 private:
  drunc_zmq::FeedPosition position_;
  dunedaq::druncschema::Response holder_;  // children[0] only
  std::string bytes_;
};

}  // namespace drunc::broker
