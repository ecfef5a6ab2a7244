// ProcessQuery matching, as the upstream process manager does it:
// the fields are OR-ed; `uuids` match exactly; each of `names` is a regular
// expression searched anywhere in the friendly name (like Python's re.search);
// `user` and `session` match exactly. Empty strings, in any field, are "not
// given". A query with nothing given is empty.
//
// Patterns are RE2's: Python's `re` syntax without backreferences and
// lookaround, matched in time linear in the name, so no client can stall the
// broker with a pathological pattern.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "druncschema/process_manager.pb.h"

namespace re2 {
class RE2;
}

namespace drunc::broker {

class CompiledQuery {
 public:
  // Throws DruncError naming the pattern when a name is not a valid regex.
  explicit CompiledQuery(const dunedaq::druncschema::ProcessQuery& query);
  ~CompiledQuery();
  CompiledQuery(CompiledQuery&&) noexcept;

  bool empty() const;
  // Whether uuids are the only field given (then matches() is a lookup of uuids()).
  bool only_uuids() const { return !uuids_.empty() && names_.empty() && user_.empty() && session_.empty(); }
  const std::vector<std::string>& uuids() const { return uuids_; }
  // Whether a process with this metadata matches one of the given fields.
  // An empty query matches nothing here: callers decide what empty means.
  bool matches(const std::string& uuid, const dunedaq::druncschema::ProcessMetadata& metadata) const;

 private:
  std::vector<std::string> uuids_;
  std::vector<std::unique_ptr<re2::RE2>> names_;
  std::string user_;
  std::string session_;
};

}  // namespace drunc::broker
