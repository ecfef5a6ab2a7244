#include "wire/topic.hpp"

namespace drunc::wire {

std::string encode_topic_field(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (char c : field) {
    if (c == '/')
      out += "%2F";
    else if (c == '%')
      out += "%25";
    else
      out += c;
  }
  return out;
}

std::string decode_topic_field(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '%' && i + 2 < field.size()) {
      const auto code = field.substr(i + 1, 2);
      if (code == "2F" || code == "2f") {
        out += '/';
        i += 2;
        continue;
      }
      if (code == "25") {
        out += '%';
        i += 2;
        continue;
      }
    }
    out += field[i];
  }
  return out;
}

std::string process_topic(std::string_view kind, std::string_view session, std::string_view name,
                          std::string_view uuid) {
  std::string topic(kind);
  topic += '/';
  topic += encode_topic_field(session);
  topic += '/';
  topic += encode_topic_field(name);
  topic += '/';
  topic += encode_topic_field(uuid);
  return topic;
}

std::string broadcast_topic(std::string_view session, std::string_view emitter) {
  std::string topic(kBroadcastKind);
  topic += '/';
  topic += encode_topic_field(session);
  topic += '/';
  topic += encode_topic_field(emitter);
  return topic;
}

}  // namespace drunc::wire
