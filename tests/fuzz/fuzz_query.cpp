// Fuzz target: query compilation and matching (broker/query.*).
//
// Input: text lines. The first line is the name of the process the query is
// matched against; each further line is one field of the query: "@uuid=X",
// "@user=X", "@session=X", or else a name pattern (an RE2 regular
// expression, as clients send them in ProcessQuery.names).
//
// Invariants: compiling either succeeds or throws DruncError (a client's bad
// pattern is answered, never crashes or stalls the broker); a compiled query
// agrees with its fields: a listed uuid matches, the user and session match
// exactly, a pattern matches when RE2 finds it in the name; an empty query
// matches nothing.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <re2/re2.h>

#include "errors.hpp"
#include "fuzz_check.hpp"
#include "query.hpp"

namespace pm = dunedaq::druncschema;
using drunc::broker::CompiledQuery;
using drunc::broker::DruncError;

namespace {

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  while (lines.size() < 64) {
    const auto newline = text.find('\n');
    lines.push_back(text.substr(0, newline));
    if (newline == std::string_view::npos) break;
    text.remove_prefix(newline + 1);
  }
  return lines;
}

bool starts_with(std::string_view text, std::string_view prefix, std::string_view* rest) {
  if (text.substr(0, prefix.size()) != prefix) return false;
  *rest = text.substr(prefix.size());
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto lines = lines_of(std::string_view(reinterpret_cast<const char*>(data), size));
  pm::ProcessMetadata metadata;
  metadata.set_name(std::string(lines[0]));
  metadata.set_user("daq");
  metadata.set_session("demo");

  pm::ProcessQuery query;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    std::string_view value;
    if (starts_with(lines[i], "@uuid=", &value))
      query.add_uuids()->set_uuid(std::string(value));
    else if (starts_with(lines[i], "@user=", &value))
      query.set_user(std::string(value));
    else if (starts_with(lines[i], "@session=", &value))
      query.set_session(std::string(value));
    else
      query.add_names(std::string(lines[i]));
  }

  std::optional<CompiledQuery> compiled;
  try {
    compiled.emplace(query);
  } catch (const DruncError& error) {
    // what() is a C string: a pattern holding a NUL byte cuts the message there.
    FUZZ_CHECK(std::string_view(error.what()).rfind("name pattern \"", 0) == 0);
    return 0;
  }

  bool expected = false;
  for (const auto& uuid : query.uuids())
    if (!uuid.uuid().empty()) {
      FUZZ_CHECK(compiled->matches(uuid.uuid(), metadata));
      if (uuid.uuid() == "no-such-uuid") expected = true;
    }
  if (!query.user().empty() && query.user() == metadata.user()) expected = true;
  if (!query.session().empty() && query.session() == metadata.session()) expected = true;
  bool any_field = !query.user().empty() || !query.session().empty();
  for (const auto& uuid : query.uuids()) any_field |= !uuid.uuid().empty();
  for (const auto& name : query.names()) {
    if (name.empty()) continue;
    any_field = true;
    re2::RE2::Options options;
    options.set_log_errors(false);
    const re2::RE2 pattern(name, options);
    FUZZ_CHECK(pattern.ok());  // CompiledQuery accepted it
    if (re2::RE2::PartialMatch(metadata.name(), pattern)) expected = true;
  }
  FUZZ_CHECK(compiled->empty() == !any_field);
  FUZZ_CHECK(compiled->matches("no-such-uuid", metadata) == expected);
  if (compiled->only_uuids()) FUZZ_CHECK(query.user().empty() && query.session().empty());
  return 0;
}
