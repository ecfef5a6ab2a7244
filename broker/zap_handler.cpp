#include "zap_handler.hpp"

#include <arpa/inet.h>

#include <vector>

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include "wire/certificate.hpp"

namespace drunc::broker {
namespace {

// ZMTP metadata: per property, a 1-byte name length, the name, a 4-byte
// big-endian value length, the value.
std::string metadata_frame(const std::string& name, const std::string& value) {
  std::string frame;
  frame += static_cast<char>(name.size());
  frame += name;
  const std::uint32_t length = htonl(static_cast<std::uint32_t>(value.size()));
  frame.append(reinterpret_cast<const char*>(&length), sizeof length);
  frame += value;
  return frame;
}

}  // namespace

ZapHandler::ZapHandler(zmq::context_t& context) : socket_(context, zmq::socket_type::rep) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind(kZapEndpoint);
}

void ZapHandler::answer_requests(const AccessList& admitted) {
  while (true) {
    std::vector<zmq::message_t> request;
    if (!zmq::recv_multipart(socket_, std::back_inserter(request), zmq::recv_flags::dontwait)) return;
    // [version] [request id] [domain] [address] [routing id] [mechanism] [credentials...]
    std::string status = "400", text = "malformed ZAP request", user, metadata;
    std::string request_id = request.size() > 1 ? request[1].to_string() : std::string();
    if (request.size() >= 6 && request[0].to_string_view() == "1.0") {
      const std::string address = request[3].to_string();
      const auto mechanism = request[5].to_string_view();
      const std::string key = request.size() >= 7 ? wire::z85_encode_key(request[6].to_string()) : std::string();
      if (mechanism != "CURVE" || key.empty()) {
        text = "only CURVE clients are admitted";
        spdlog::warn("refused a {} connection from {}: only CURVE clients are admitted", mechanism, address);
      } else if (auto found = admitted.find(key); found == admitted.end()) {
        text = "this key is not admitted";
        spdlog::warn("refused a connection from {}: key {} is not admitted", address, key);
      } else {
        status = "200";
        text = "OK";
        user = found->second.user;
        metadata = metadata_frame(kKeyProperty, key);
        spdlog::debug("admitted {} ({}) from {}", user, role_name(found->second.role), address);
      }
    }
    std::vector<zmq::message_t> reply;
    reply.emplace_back(std::string_view("1.0"));
    reply.emplace_back(request_id);
    reply.emplace_back(status);
    reply.emplace_back(text);
    reply.emplace_back(user);
    reply.emplace_back(metadata);
    zmq::send_multipart(socket_, reply);
  }
}

}  // namespace drunc::broker
