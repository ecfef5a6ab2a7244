// CURVE certificates in the ZeroMQ certificate format (ZPL, ZeroMQ RFC 4),
// as CZMQ's zcert and pyzmq's zmq.auth write them:
//
//   metadata
//       user = "alice"
//   curve
//       public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
//       secret-key = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
//
// A public certificate has no secret-key line; its secret twin, beside it
// with "_secret" appended to the name, has both. Keys are Z85 text.
// Shared by the broker (its own key, the admitted clients) and the clients.
#pragma once

#include <map>
#include <stdexcept>
#include <string>

namespace drunc::wire {

// A certificate that cannot be read or is unsafe; what() names the file.
class CertificateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Certificate {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters; empty in a public certificate
  std::map<std::string, std::string> metadata;
};

// Parses certificate text; source names it in errors. Both keys, when
// present, must be valid Z85 keys of 32 bytes.
Certificate parse_certificate(const std::string& text, const std::string& source);

// Reads a certificate file. A file holding a secret key must not be readable
// or writable by group or others: it is refused, naming the file and the fix.
Certificate read_certificate(const std::string& path);

// A new key pair (zmq_curve_keypair), with metadata.
Certificate generate_certificate(std::map<std::string, std::string> metadata);

// The certificate text as zmq.auth writes it; with_secret adds secret-key.
std::string certificate_text(const Certificate& certificate, bool with_secret);

// Writes path (public, mode 0644) and path + "_secret" (mode 0600), as
// zmq.auth's create_certificates does. Refuses to overwrite either.
void write_certificate_pair(const Certificate& certificate, const std::string& path);

// The 32 key bytes of a Z85 key, or empty if it is not one.
std::string z85_decode_key(const std::string& z85);
// The Z85 text of 32 key bytes.
std::string z85_encode_key(const std::string& bytes);

}  // namespace drunc::wire
