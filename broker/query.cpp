#include "query.hpp"

#include <algorithm>

#include "errors.hpp"

namespace drunc::broker {

CompiledQuery::CompiledQuery(const dunedaq::druncschema::ProcessQuery& query)
    : user_(query.user()), session_(query.session()) {
  for (const auto& uuid : query.uuids())
    if (!uuid.uuid().empty()) uuids_.push_back(uuid.uuid());
  for (const auto& name : query.names()) {
    if (name.empty()) continue;
    try {
      names_.emplace_back(name, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& error) {
      throw DruncError("name pattern \"" + name + "\" is not a valid regular expression: " + error.what());
    }
  }
}

bool CompiledQuery::empty() const { return uuids_.empty() && names_.empty() && user_.empty() && session_.empty(); }

bool CompiledQuery::matches(const std::string& uuid, const dunedaq::druncschema::ProcessMetadata& metadata) const {
  if (std::find(uuids_.begin(), uuids_.end(), uuid) != uuids_.end()) return true;
  for (const auto& pattern : names_)
    if (std::regex_search(metadata.name(), pattern)) return true;
  if (!user_.empty() && metadata.user() == user_) return true;
  if (!session_.empty() && metadata.session() == session_) return true;
  return false;
}

}  // namespace drunc::broker
