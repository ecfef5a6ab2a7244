// CURVE keys for the benchmarks' secure rows (issue 10): a server key pair and
// one admitted client (user "bench", role admin), written as certificates in
// a temporary directory that lives as long as this object. The broker is
// configured from the files, as a deployment would be; the bare baselines
// (echo ROUTER, PUB) are CURVE servers with the same server key and no ZAP
// handler; every client connects with the same client keys.
#pragma once

#include <string>

#include <zmq.hpp>

#include "client.hpp"
#include "security.hpp"

namespace bench {

class CurveSetup {
 public:
  CurveSetup();
  ~CurveSetup();
  CurveSetup(const CurveSetup&) = delete;
  CurveSetup& operator=(const CurveSetup&) = delete;

  // security.mode "curve", the server certificate, the admitted-clients directory.
  drunc::broker::SecuritySettings broker_settings() const;
  // Makes socket a CURVE server with the server key (before it binds).
  void make_server(zmq::socket_t& socket) const;
  const drunc::client::CurveKeys& client_keys() const { return client_keys_; }

 private:
  std::string directory_;
  std::string server_secret_key_;
  drunc::client::CurveKeys client_keys_;
};

}  // namespace bench
