// Which processes a drunc-pm command acts on. The options narrow: a process
// is selected when it matches every option given (-s AND -u AND one of the -n
// AND one of the --uuid). The protocol's ProcessQuery ORs its fields
// (docs/PROTOCOL.md, "Queries"), so drunc-pm asks the broker with the OR of
// the options (a superset), keeps the processes that match all of them, and
// then acts on those by uuid: a command never reaches a process the options
// did not all select.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "client.hpp"
#include "druncschema/process_manager.pb.h"

namespace re2 {
class RE2;
}

namespace drunc::cli {

// The selection matched no process, or several where one is needed: nothing
// was done. drunc-pm exits 4.
class SelectionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Selection {
  std::string session;             // exact
  std::vector<std::string> names;  // regular expressions searched in the friendly name (RE2, like the broker)
  std::string user;                // exact
  std::vector<std::string> uuids;  // exact

  bool empty() const { return session.empty() && names.empty() && user.empty() && uuids.empty(); }
  // 'session "demo" and name ~ "readout-01"', for messages.
  std::string describe() const;
  // The OR query that finds a superset of the selection.
  dunedaq::druncschema::ProcessQuery broker_query() const;
  bool matches(const dunedaq::druncschema::ProcessInstance& process) const;

 private:
  mutable std::vector<std::shared_ptr<re2::RE2>> patterns_;  // names, compiled on first use
};

// The processes the selection matches, in the broker's order (one ps).
dunedaq::druncschema::ProcessInstanceList select(client::Client& client, const Selection& selection);

// The one process the selection matches; SelectionError naming the matches
// otherwise ("it needs exactly one process; ... matches 2: ...").
dunedaq::druncschema::ProcessInstance select_one(client::Client& client, const Selection& selection);

// A query for exactly these processes, by uuid.
dunedaq::druncschema::ProcessQuery by_uuid(const dunedaq::druncschema::ProcessInstanceList& processes);

// "readout-01 (session demo, uuid 54df...)".
std::string describe_process(const dunedaq::druncschema::ProcessInstance& process);

// The processes named in a list: "a (session s, uuid u), b (...)", at most `limit`, then "and N more".
std::string describe_processes(const dunedaq::druncschema::ProcessInstanceList& processes, int limit = 10);

}  // namespace drunc::cli
