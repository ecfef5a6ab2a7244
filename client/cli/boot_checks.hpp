// Checks drunc-pm makes before it sends a boot, so that an operator's slip
// is refused with a clear reason instead of becoming a running surprise:
// a second process of the same name in a session (every -n then matches
// both), or an executable or directory that does not exist on this machine.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "client.hpp"
#include "druncschema/process_manager.pb.h"

namespace drunc::cli {

// Nothing was sent. drunc-pm exits 1.
class BootRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Refuses when a request's name is already used in its session, by a process
// the broker lists (alive or dead: a dead one still answers to its name until
// flushed) or by another of the requests. One ps.
void refuse_duplicate_names(client::Client& client, const std::vector<dunedaq::druncschema::BootRequest>& requests);

// When the broker runs on this machine (broker_address is local) and every
// allowed host of a request is local, its processes would run here: refuses
// an execution directory that is not a directory, an executable path that
// does not exist or cannot be executed, and a bare command name found neither
// on PATH (the request's own PATH, else drunc-pm's) nor among bash's builtins.
// A relative path with no execution directory is left to the broker (its
// working directory is not ours).
void refuse_missing_local_files(const std::string& broker_address,
                                const std::vector<dunedaq::druncschema::BootRequest>& requests);

}  // namespace drunc::cli
