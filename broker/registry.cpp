#include "registry.hpp"

#include <algorithm>
#include <stdexcept>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include "wire/topic.hpp"

namespace drunc::broker {

namespace pm = dunedaq::druncschema;

std::string_view state_name(ProcessState state) {
  switch (state) {
    case ProcessState::running: return "running";
    case ProcessState::stopping: return "stopping";
    case ProcessState::exited: return "exited";
    case ProcessState::killed: return "killed";
    case ProcessState::lost: return "lost";
  }
  return "unknown";
}

ProcessState state_of_name(std::string_view name) {
  for (auto state : {ProcessState::stopping, ProcessState::exited, ProcessState::killed, ProcessState::lost})
    if (state_name(state) == name) return state;
  return ProcessState::running;
}

void LogRing::add(std::string line) {
  if (lines_.size() == capacity_) lines_.pop_front();
  lines_.push_back(std::move(line));
}

std::vector<const std::string*> LogRing::last(std::size_t count) const {
  std::vector<const std::string*> out;
  const std::size_t first = lines_.size() > count ? lines_.size() - count : 0;
  out.reserve(lines_.size() - first);
  for (std::size_t i = first; i < lines_.size(); ++i) out.push_back(&lines_[i]);
  return out;
}

ProcessRecord::ProcessRecord(std::string uuid_, pm::BootRequest boot_, std::size_t log_capacity,
                             std::uint64_t boot_order_)
    : uuid(std::move(uuid_)), boot(std::move(boot_)), boot_order(boot_order_), logs(log_capacity) {
  log_feed.topic = wire::process_topic(wire::kLogKind, session(), name(), uuid);
  state_feed.topic = wire::process_topic(wire::kStateKind, session(), name(), uuid);
}

const std::string& ProcessRecord::instance_bytes() const {
  if (instance_bytes_.empty()) instance().SerializeToString(&instance_bytes_);
  return instance_bytes_;
}

pm::ProcessInstance ProcessRecord::instance() const {
  pm::ProcessInstance instance;
  *instance.mutable_process_description() = boot.process_description();
  *instance.mutable_process_restriction() = boot.process_restriction();
  instance.set_status_code(is_alive(state) ? pm::ProcessInstance::RUNNING : pm::ProcessInstance::DEAD);
  instance.set_return_code(return_code);
  instance.mutable_uuid()->set_uuid(uuid);
  return instance;
}

void ProcessRecord::on_kill_sent() {
  if (state != ProcessState::running) throw std::logic_error("kill sent to a process that is not running");
  state = ProcessState::stopping;
  instance_bytes_.clear();
}

std::string_view ProcessRecord::on_exited(std::int32_t code, bool lost) {
  if (!is_alive(state)) throw std::logic_error("exit reported for a process that is not alive");
  return_code = code;
  instance_bytes_.clear();
  state = lost ? ProcessState::lost : state == ProcessState::stopping ? ProcessState::killed : ProcessState::exited;
  return state_name(state);
}

std::string_view ProcessRecord::on_restarted(std::uint32_t new_generation, std::int64_t new_pid,
                                             const std::string& host) {
  if (is_alive(state)) throw std::logic_error("restarted a process that is still alive");
  generation = new_generation;
  pid = new_pid;
  instance_bytes_.clear();
  return_code = 0;
  state = ProcessState::running;
  boot.mutable_process_description()->mutable_metadata()->set_hostname(host);
  return "restarted";
}

void ProcessRecord::on_recovered(std::uint32_t generation_, ProcessState state_, std::int32_t return_code_) {
  generation = generation_;
  state = state_;
  return_code = return_code_;
  instance_bytes_.clear();
}

std::string serialized_instance_list(const std::vector<ProcessRecord*>& records) {
  namespace io = google::protobuf::io;
  std::string bytes;
  {
    io::StringOutputStream stream(&bytes);
    io::CodedOutputStream out(&stream);
    for (const auto* record : records)
      google::protobuf::internal::WireFormatLite::WriteBytes(pm::ProcessInstanceList::kValuesFieldNumber,
                                                             record->instance_bytes(), &out);
  }
  return bytes;
}

ProcessRecord& Registry::add_booted(const std::string& uuid, pm::BootRequest boot, const std::string& host,
                                    const std::string& worker, std::int64_t pid) {
  if (index_.contains(uuid)) throw std::logic_error("uuid registered twice");
  auto* metadata = boot.mutable_process_description()->mutable_metadata();
  metadata->mutable_uuid()->set_uuid(uuid);
  metadata->set_hostname(host);
  records_.emplace_back(uuid, std::move(boot), log_capacity_, ++boots_);
  auto it = std::prev(records_.end());
  it->worker = worker;
  it->pid = pid;
  index_.emplace(uuid, it);
  return *it;
}

ProcessRecord* Registry::find(const std::string& uuid) {
  auto found = index_.find(uuid);
  return found == index_.end() ? nullptr : &*found->second;
}

std::vector<ProcessRecord*> Registry::match(const CompiledQuery& query, bool empty_matches_all) {
  std::vector<ProcessRecord*> out;
  if (query.empty() && !empty_matches_all) return out;
  if (query.only_uuids()) {  // the common case, answered from the index
    for (const auto& uuid : query.uuids())
      if (auto found = index_.find(uuid); found != index_.end()) out.push_back(&*found->second);
    std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->boot_order < b->boot_order; });
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }
  for (auto& record : records_)
    if (query.empty() || query.matches(record.uuid, record.metadata())) out.push_back(&record);
  return out;
}

std::vector<ProcessRecord*> Registry::all() {
  std::vector<ProcessRecord*> out;
  out.reserve(records_.size());
  for (auto& record : records_) out.push_back(&record);
  return out;
}

void Registry::remove(const std::string& uuid) {
  auto found = index_.find(uuid);
  if (found == index_.end()) return;
  if (is_alive(found->second->state)) throw std::logic_error("flushed a process that is alive");
  records_.erase(found->second);
  index_.erase(found);
}

}  // namespace drunc::broker
