#include "curve.hpp"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "wire/certificate.hpp"

namespace bench {

CurveSetup::CurveSetup() {
  char pattern[] = "/tmp/drunc-bench-curve-XXXXXX";
  if (!::mkdtemp(pattern)) throw std::runtime_error("cannot create a directory for the CURVE certificates");
  directory_ = pattern;
  std::filesystem::create_directory(directory_ + "/clients");
  const auto server = drunc::wire::generate_certificate({{"user", "drunc-broker"}});
  drunc::wire::write_certificate_pair(server, directory_ + "/server.key");
  const auto client = drunc::wire::generate_certificate({{"user", "bench"}, {"role", "admin"}, {"sessions", "*"}});
  drunc::wire::write_certificate_pair(client, directory_ + "/client.key");
  // The admitted directory holds the client's public certificate only.
  std::ofstream(directory_ + "/clients/bench.key") << drunc::wire::certificate_text(client, false);
  server_secret_key_ = server.secret_key;
  // The server's public key as Z85 text, not its file: load_curve_keys takes
  // any 40-character argument made of Z85 characters for a key, and a path
  // such as /tmp/drunc-bench-curve-XXXXXX/server.key is 40 of them.
  client_keys_ = drunc::client::load_curve_keys(directory_ + "/client.key_secret", server.public_key);
}

CurveSetup::~CurveSetup() {
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

drunc::broker::SecuritySettings CurveSetup::broker_settings() const {
  drunc::broker::SecuritySettings settings;
  settings.mode = drunc::broker::SecuritySettings::Mode::curve;
  settings.server_certificate = directory_ + "/server.key_secret";
  settings.client_certificates = directory_ + "/clients";
  return settings;
}

void CurveSetup::make_server(zmq::socket_t& socket) const {
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey, server_secret_key_);
}

}  // namespace bench
