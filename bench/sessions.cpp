#include "sessions.hpp"

#include <stdexcept>

namespace bench {

namespace pm = dunedaq::druncschema;

void boot_ready_processes(drunc::client::Client& client, const std::string& prefix, const std::string& session,
                          const std::vector<std::string>& hosts, int count) {
  std::vector<std::string> ids;
  for (int i = 0; i < count; ++i) {
    pm::BootRequest request;
    auto* description = request.mutable_process_description();
    description->mutable_metadata()->set_name(prefix + "-" + std::to_string(i));
    if (!session.empty()) description->mutable_metadata()->set_session(session);
    auto* command = description->add_executable_and_arguments();
    command->set_exec("sh");
    command->add_args("-c");
    command->add_args("echo ready; exec sleep 300");
    request.mutable_process_restriction()->add_allowed_hosts(hosts[i % hosts.size()]);
    ids.push_back(client.send(drunc::wire::Command::boot, &request));
  }
  for (const auto& id : ids) {
    const auto reply = client.wait(id, std::chrono::seconds(120));
    if (reply.response.flag() != pm::EXECUTED_SUCCESSFULLY)
      throw std::runtime_error("boot failed: " + drunc::client::response_text(reply.response));
  }
}

void wait_until_each_is_ready(drunc::client::Client& client, const std::string& prefix, int count) {
  for (int i = 0; i < count; ++i) {
    pm::LogRequest request;
    request.mutable_query()->add_names("^" + prefix + "-" + std::to_string(i) + "$");
    for (bool ready = false; !ready;) client.logs(request, [&](const pm::LogLine&) { ready = true; });
  }
}

std::string boot_sleepers(drunc::client::Client& client, int count) {
  std::string uuid;
  for (int i = 0; i < count; ++i) {
    dunedaq::druncschema::BootRequest boot;
    boot.mutable_process_description()->mutable_metadata()->set_name("app-" + std::to_string(i));
    boot.mutable_process_description()->mutable_metadata()->set_session("bench");
    auto* command = boot.mutable_process_description()->add_executable_and_arguments();
    command->set_exec("sleep");
    command->add_args("300");
    boot.mutable_process_restriction()->add_allowed_hosts("localhost");
    uuid = client.boot(boot).values(0).uuid().uuid();
  }
  return uuid;
}

}  // namespace bench
