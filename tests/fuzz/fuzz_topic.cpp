// Fuzz target: event topics (proto/wire/topic.*): field encoding, decoding,
// and topics as subscribers read them (split at '/', each field decoded, as
// drunc-pm watch does).
//
// Input: a topic as it appears on the feed, e.g. "log/demo/readout-01/<uuid>".
//
// Invariants: any field encodes to text with no '/' that decodes back to it;
// decoding any text never grows it; a topic built from the input's decoded
// fields splits into exactly the same number of fields, which decode to them,
// and every topic of a process starts with the prefix a subscriber to that
// kind, session and name would use.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "wire/topic.hpp"

using namespace drunc::wire;

namespace {

std::vector<std::string> fields_of(std::string_view topic) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  while (true) {
    const auto slash = topic.find('/', start);
    fields.push_back(decode_topic_field(topic.substr(start, slash - start)));
    if (slash == std::string_view::npos) return fields;
    start = slash + 1;
  }
}

void check_field(std::string_view field) {
  const auto encoded = encode_topic_field(field);
  FUZZ_CHECK(encoded.find('/') == std::string::npos);
  FUZZ_CHECK(decode_topic_field(encoded) == field);
  FUZZ_CHECK(decode_topic_field(field).size() <= field.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_field(text);

  auto fields = fields_of(text);
  for (const auto& field : fields) check_field(field);
  fields.resize(4);  // kind, session, name, uuid (missing ones empty)
  for (auto kind : {kLogKind, kStateKind}) {
    const auto topic = process_topic(kind, fields[1], fields[2], fields[3]);
    const auto parts = fields_of(topic);
    FUZZ_CHECK(parts.size() == 4);
    FUZZ_CHECK(parts[0] == kind && parts[1] == fields[1] && parts[2] == fields[2] && parts[3] == fields[3]);
    const std::string prefix =
        std::string(kind) + "/" + encode_topic_field(fields[1]) + "/" + encode_topic_field(fields[2]) + "/";
    FUZZ_CHECK(topic.compare(0, prefix.size(), prefix) == 0);
  }
  const auto broadcast = broadcast_topic(fields[1], fields[2]);
  const auto parts = fields_of(broadcast);
  FUZZ_CHECK(parts.size() == 3);
  FUZZ_CHECK(parts[0] == kBroadcastKind && parts[1] == fields[1] && parts[2] == fields[2]);
  return 0;
}
