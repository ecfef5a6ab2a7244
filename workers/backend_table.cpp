// The backend table: one line per backend, in the order each allowed_hosts
// entry is offered to them (backend.hpp). A backend whose hosts look like
// host names must come before ssh, which takes every host name.
#include "backend.hpp"
#include "local/local_backend.hpp"
#include "ssh/ssh_backend.hpp"

namespace drunc::workers {

const BackendTable& backend_table() {
  static const BackendTable table = {
      local_backend_type(),  // workers/local/: this machine's names, without a port
      ssh_backend_type(),    // workers/ssh/: every other host name
  };
  return table;
}

}  // namespace drunc::workers
