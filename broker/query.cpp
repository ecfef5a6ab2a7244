#include "query.hpp"

#include <algorithm>

#include <re2/re2.h>

#include "errors.hpp"

namespace drunc::broker {

CompiledQuery::CompiledQuery(const dunedaq::druncschema::ProcessQuery& query)
    : user_(query.user()), session_(query.session()) {
  for (const auto& uuid : query.uuids())
    if (!uuid.uuid().empty()) uuids_.push_back(uuid.uuid());
  for (const auto& name : query.names()) {
    if (name.empty()) continue;
    re2::RE2::Options options;
    options.set_log_errors(false);
    auto pattern = std::make_unique<re2::RE2>(name, options);
    if (!pattern->ok())
      throw DruncError("name pattern \"" + name + "\" is not a valid regular expression: " + pattern->error());
    names_.push_back(std::move(pattern));
  }
}

CompiledQuery::~CompiledQuery() = default;
CompiledQuery::CompiledQuery(CompiledQuery&&) noexcept = default;

bool CompiledQuery::empty() const { return uuids_.empty() && names_.empty() && user_.empty() && session_.empty(); }

bool CompiledQuery::matches(const std::string& uuid, const dunedaq::druncschema::ProcessMetadata& metadata) const {
  if (std::find(uuids_.begin(), uuids_.end(), uuid) != uuids_.end()) return true;
  for (const auto& pattern : names_)
    if (re2::RE2::PartialMatch(metadata.name(), *pattern)) return true;
  if (!user_.empty() && metadata.user() == user_) return true;
  if (!session_.empty() && metadata.session() == session_) return true;
  return false;
}

}  // namespace drunc::broker
