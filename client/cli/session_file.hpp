// Reads a session file: many processes to boot in one go (config/demo-session.json
// is the example; docs/CLI.md describes every key).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "druncschema/process_manager.pb.h"

namespace drunc::cli {

class SessionFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One BootRequest per process, in file order. default_user fills "user" when absent.
std::vector<dunedaq::druncschema::BootRequest> load_session_file(const std::string& path,
                                                                 const std::string& default_user);

// The CURVE keys a session file names ("certificate", "server_key"; relative
// paths are taken from the file's directory); empty when it names none.
struct SessionKeys {
  std::string certificate;
  std::string server_key;
};
SessionKeys session_file_keys(const std::string& path);

}  // namespace drunc::cli
