#include "certificate.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include <zmq.h>

namespace drunc::wire {
namespace {

constexpr std::size_t kKeyBytes = 32;
constexpr std::size_t kZ85KeyLength = 40;

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

// A ZPL value: "quoted", 'quoted', or a bare word up to whitespace or a comment.
std::string zpl_value(const std::string& raw) {
  const std::string text = trim(raw);
  if (!text.empty() && (text.front() == '"' || text.front() == '\'')) {
    const auto close = text.find(text.front(), 1);
    return text.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  }
  return text.substr(0, text.find_first_of(" \t#"));
}

std::string now_text() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&now, &local);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &local);
  return text;
}

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) throw CertificateError(path + ": cannot create: " + std::strerror(errno));
  // The umask may have narrowed the mode; a public file must stay readable by others.
  ::fchmod(fd, mode);
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      ::close(fd);
      throw CertificateError(path + ": cannot write: " + std::strerror(error));
    }
    written += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) throw CertificateError(path + ": cannot write: " + std::strerror(errno));
}

}  // namespace

std::string z85_decode_key(const std::string& z85) {
  if (z85.size() != kZ85KeyLength) return {};
  std::string bytes(kKeyBytes, '\0');
  if (!::zmq_z85_decode(reinterpret_cast<std::uint8_t*>(bytes.data()), z85.c_str())) return {};
  return bytes;
}

std::string z85_encode_key(const std::string& bytes) {
  if (bytes.size() != kKeyBytes) return {};
  char text[kZ85KeyLength + 1];
  if (!::zmq_z85_encode(text, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size())) return {};
  return text;
}

Certificate parse_certificate(const std::string& text, const std::string& source) {
  Certificate certificate;
  std::istringstream lines(text);
  std::string line;
  std::string section;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    const std::string content = trim(line);
    if (content.empty() || content.front() == '#') continue;
    const bool top_level = line.front() != ' ' && line.front() != '\t';
    const auto equals = content.find('=');
    if (top_level) {
      section = content.substr(0, content.find_first_of(" \t#="));
      continue;
    }
    if (equals == std::string::npos) continue;  // a deeper section name: nothing we read
    const std::string name = trim(content.substr(0, equals));
    const std::string value = zpl_value(content.substr(equals + 1));
    if (section == "curve" && name == "public-key")
      certificate.public_key = value;
    else if (section == "curve" && name == "secret-key")
      certificate.secret_key = value;
    else if (section == "metadata")
      certificate.metadata[name] = value;
  }
  if (certificate.public_key.empty()) throw CertificateError(source + ": no curve public-key: not a certificate");
  if (z85_decode_key(certificate.public_key).empty())
    throw CertificateError(source + ": public-key is not a 40-character Z85 CURVE key");
  if (!certificate.secret_key.empty() && z85_decode_key(certificate.secret_key).empty())
    throw CertificateError(source + ": secret-key is not a 40-character Z85 CURVE key");
  return certificate;
}

Certificate read_certificate(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw CertificateError(path + ": cannot be read: " + std::strerror(errno));
  std::stringstream text;
  text << file.rdbuf();
  Certificate certificate = parse_certificate(text.str(), path);
  if (!certificate.secret_key.empty()) {
    struct stat status {};
    if (::stat(path.c_str(), &status) != 0) throw CertificateError(path + ": " + std::strerror(errno));
    if (status.st_mode & (S_IRWXG | S_IRWXO)) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(status.st_mode & 07777));
      throw CertificateError(path + " holds a secret key but its mode " + mode +
                             " lets group or others read or write it: chmod 600 " + path);
    }
  }
  return certificate;
}

Certificate generate_certificate(std::map<std::string, std::string> metadata) {
  char public_key[kZ85KeyLength + 1];
  char secret_key[kZ85KeyLength + 1];
  if (::zmq_curve_keypair(public_key, secret_key) != 0)
    throw CertificateError(std::string("cannot make a CURVE key pair: ") + ::zmq_strerror(::zmq_errno()));
  return Certificate{public_key, secret_key, std::move(metadata)};
}

std::string certificate_text(const Certificate& certificate, bool with_secret) {
  std::string text = "#   ****  Generated on " + now_text() + " by drunc-pm keygen  ****\n";
  text += with_secret ? "#   ZeroMQ CURVE **Secret** Certificate\n"
                        "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n"
                      : "#   ZeroMQ CURVE Public Certificate\n"
                        "#   Exchange securely, or use a secure mechanism to verify the contents\n"
                        "#   of this file after exchange.\n\n";
  text += "metadata\n";
  for (const auto& [name, value] : certificate.metadata) text += "    " + name + " = \"" + value + "\"\n";
  text += "curve\n";
  text += "    public-key = \"" + certificate.public_key + "\"\n";
  if (with_secret) text += "    secret-key = \"" + certificate.secret_key + "\"\n";
  return text;
}

void write_certificate_pair(const Certificate& certificate, const std::string& path) {
  const std::string secret_path = path + "_secret";
  for (const auto& existing : {path, secret_path})
    if (::access(existing.c_str(), F_OK) == 0) throw CertificateError(existing + " exists already: not overwritten");
  // The secret first: a public file without its secret would be useless.
  write_file(secret_path, certificate_text(certificate, true), 0600);
  write_file(path, certificate_text(certificate, false), 0644);
}

}  // namespace drunc::wire
