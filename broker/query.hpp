// ProcessQuery matching, as the upstream process manager does it:
// the fields are OR-ed; `uuids` match exactly; each of `names` is an ECMAScript
// regular expression searched anywhere in the friendly name (like Python's
// re.search); `user` and `session` match exactly. Empty strings, in any
// field, are "not given". A query with nothing given is empty.
#pragma once

#include <regex>
#include <string>
#include <vector>

#include "druncschema/process_manager.pb.h"

namespace drunc::broker {

class CompiledQuery {
 public:
  // Throws DruncError naming the pattern when a name is not a valid regex.
  explicit CompiledQuery(const dunedaq::druncschema::ProcessQuery& query);

  bool empty() const;
  // Whether a process with this metadata matches one of the given fields.
  // An empty query matches nothing here: callers decide what empty means.
  bool matches(const std::string& uuid, const dunedaq::druncschema::ProcessMetadata& metadata) const;

 private:
  std::vector<std::string> uuids_;
  std::vector<std::regex> names_;
  std::string user_;
  std::string session_;
};

}  // namespace drunc::broker
