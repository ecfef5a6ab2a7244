#include "selection.hpp"

#include <memory>

#include <re2/re2.h>

namespace drunc::cli {

namespace pm = dunedaq::druncschema;

namespace {

std::string quoted(const std::string& text) { return "\"" + text + "\""; }

}  // namespace

std::string Selection::describe() const {
  std::vector<std::string> parts;
  if (!session.empty()) parts.push_back("session " + quoted(session));
  if (!user.empty()) parts.push_back("user " + quoted(user));
  auto any_of = [](const std::string& what, const std::vector<std::string>& values) {
    std::string text = what + " " + quoted(values[0]);
    for (std::size_t i = 1; i < values.size(); ++i) text += " or " + quoted(values[i]);
    return values.size() > 1 ? "(" + text + ")" : text;
  };
  if (!names.empty()) parts.push_back(any_of("name ~", names));
  if (!uuids.empty()) parts.push_back(any_of("uuid", uuids));
  if (parts.empty()) return "every process";
  std::string text = parts[0];
  for (std::size_t i = 1; i < parts.size(); ++i) text += " and " + parts[i];
  return text;
}

pm::ProcessQuery Selection::broker_query() const {
  pm::ProcessQuery query;
  for (const auto& uuid : uuids) query.add_uuids()->set_uuid(uuid);
  for (const auto& name : names) query.add_names(name);
  query.set_user(user);
  query.set_session(session);
  return query;
}

bool Selection::matches(const pm::ProcessInstance& process) const {
  const auto& metadata = process.process_description().metadata();
  if (!session.empty() && metadata.session() != session) return false;
  if (!user.empty() && metadata.user() != user) return false;
  if (!uuids.empty()) {
    bool any = false;
    for (const auto& uuid : uuids) any = any || process.uuid().uuid() == uuid;
    if (!any) return false;
  }
  if (!names.empty()) {
    if (patterns_.size() != names.size()) {
      patterns_.clear();
      re2::RE2::Options options;
      options.set_log_errors(false);
      for (const auto& name : names) patterns_.push_back(std::make_shared<re2::RE2>(name, options));
    }
    // The broker checked the patterns (it answered the same query): an
    // invalid one matches nothing here.
    bool any = false;
    for (const auto& pattern : patterns_)
      any = any || (pattern->ok() && re2::RE2::PartialMatch(metadata.name(), *pattern));
    if (!any) return false;
  }
  return true;
}

pm::ProcessInstanceList select(client::Client& client, const Selection& selection) {
  pm::ProcessInstanceList selected;
  const auto candidates = client.ps(selection.broker_query());
  for (const auto& process : candidates.values())
    if (selection.matches(process)) *selected.add_values() = process;
  return selected;
}

pm::ProcessInstance select_one(client::Client& client, const Selection& selection) {
  const auto selected = select(client, selection);
  if (selected.values_size() == 0) throw SelectionError("no process matched " + selection.describe());
  if (selected.values_size() > 1)
    throw SelectionError("it needs exactly one process; " + selection.describe() + " matches " +
                         std::to_string(selected.values_size()) + ": " + describe_processes(selected));
  return selected.values(0);
}

pm::ProcessQuery by_uuid(const pm::ProcessInstanceList& processes) {
  pm::ProcessQuery query;
  for (const auto& process : processes.values()) query.add_uuids()->set_uuid(process.uuid().uuid());
  return query;
}

std::string describe_process(const pm::ProcessInstance& process) {
  const auto& metadata = process.process_description().metadata();
  return metadata.name() + " (session " + quoted(metadata.session()) + ", uuid " + process.uuid().uuid() + ")";
}

std::string describe_processes(const pm::ProcessInstanceList& processes, int limit) {
  std::string text;
  for (int i = 0; i < processes.values_size() && i < limit; ++i) {
    if (i > 0) text += ", ";
    text += describe_process(processes.values(i));
  }
  if (processes.values_size() > limit) text += " and " + std::to_string(processes.values_size() - limit) + " more";
  return text;
}

}  // namespace drunc::cli
