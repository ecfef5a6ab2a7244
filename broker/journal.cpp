#include "journal.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace drunc::broker {

namespace jpb = drunc_zmq::journal;

namespace {

constexpr std::uint64_t kCompactFloor = 1u << 20;
constexpr std::uint64_t kCompactGrowth = 4;

std::array<std::uint32_t, 256> crc32c_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    table[i] = crc;
  }
  return table;
}

void put_u32(std::string& out, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

std::uint32_t get_u32(std::string_view bytes) {
  std::uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  return value;
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

void write_all(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw JournalError(errno_text("cannot write " + path));
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

// ---- The format

std::uint32_t crc32c(std::string_view bytes) {
  static const auto table = crc32c_table();
  std::uint32_t crc = 0xffffffffu;
  for (char c : bytes) crc = table[(crc ^ static_cast<unsigned char>(c)) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

void append_journal_record(std::string& out, std::string_view payload) {
  put_u32(out, static_cast<std::uint32_t>(payload.size()));
  put_u32(out, crc32c(payload));
  out.append(payload);
}

JournalRecords read_journal_records(std::string_view bytes) {
  JournalRecords records;
  if (bytes.empty()) return records;
  if (bytes.size() < kJournalMagic.size()) {
    // A journal cut in its magic line: only a crash while it was created.
    if (kJournalMagic.substr(0, bytes.size()) != bytes) throw JournalError("not a drunc-zmq journal");
    records.tear = "the file ends in its first line";
    return records;
  }
  if (bytes.substr(0, kJournalMagic.size()) != kJournalMagic) throw JournalError("not a drunc-zmq journal");
  std::size_t at = kJournalMagic.size();
  records.good_bytes = at;
  while (at < bytes.size()) {
    if (bytes.size() - at < 8) {
      records.tear = "a record's header is cut short at byte " + std::to_string(at);
      break;
    }
    const std::uint32_t length = get_u32(bytes.substr(at));
    const std::uint32_t crc = get_u32(bytes.substr(at + 4));
    if (length > kMaxJournalRecordBytes) {
      records.tear = "a record at byte " + std::to_string(at) + " says it is " + std::to_string(length) + " bytes long";
      break;
    }
    if (bytes.size() - at - 8 < length) {
      records.tear = "the record at byte " + std::to_string(at) + " is cut short";
      break;
    }
    const auto payload = bytes.substr(at + 8, length);
    if (crc32c(payload) != crc) {
      records.tear = "the record at byte " + std::to_string(at) + " fails its checksum";
      break;
    }
    records.payloads.push_back(payload);
    at += 8 + length;
    records.good_bytes = at;
  }
  return records;
}

void JournalState::apply(const jpb::Entry& entry) {
  switch (entry.kind_case()) {
    case jpb::Entry::kProcess: {
      const auto& uuid = entry.process().uuid();
      if (auto found = index_.find(uuid); found != index_.end()) {
        *found->second = entry.process();
      } else {
        order_.push_back(entry.process());
        index_.emplace(uuid, std::prev(order_.end()));
      }
      return;
    }
    case jpb::Entry::kForget:
      if (auto found = index_.find(entry.forget()); found != index_.end()) {
        order_.erase(found->second);
        index_.erase(found);
      }
      return;
    case jpb::Entry::kOffset:
      if (auto found = index_.find(entry.offset().uuid());
          found != index_.end() && found->second->generation() == entry.offset().generation())
        found->second->set_output_offset(entry.offset().offset());
      return;
    case jpb::Entry::KIND_NOT_SET: return;
  }
}

const jpb::Process* JournalState::find(const std::string& uuid) const {
  auto found = index_.find(uuid);
  return found == index_.end() ? nullptr : &*found->second;
}

std::vector<const jpb::Process*> JournalState::processes() const {
  std::vector<const jpb::Process*> out;
  out.reserve(order_.size());
  for (const auto& process : order_) out.push_back(&process);
  return out;
}

std::string JournalState::snapshot() const {
  std::string bytes(kJournalMagic);
  jpb::Entry entry;
  for (const auto& process : order_) {
    *entry.mutable_process() = process;
    append_journal_record(bytes, entry.SerializeAsString());
  }
  return bytes;
}

// ---- The journal file

Journal::Journal(std::string directory) : directory_(std::move(directory)), path_(directory_ + "/journal") {
  const std::string setting = "setting \"journal_directory\": " + directory_;
  struct stat status {};
  if (::stat(directory_.c_str(), &status) != 0) throw JournalError(errno_text(setting));
  if (!S_ISDIR(status.st_mode)) throw JournalError(setting + " is not a directory");
  if (::access(directory_.c_str(), W_OK | X_OK) != 0) throw JournalError(errno_text(setting + " is not writable"));

  const std::string lock_path = directory_ + "/lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) throw JournalError(errno_text(setting + ": cannot open " + lock_path));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(lock_fd_);
    throw JournalError(setting + ": " +
                       (error == EWOULDBLOCK ? "another broker is using this journal" : std::strerror(error)));
  }

  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    const std::string why = errno_text(setting + ": cannot open " + path_);
    ::close(lock_fd_);
    throw JournalError(why);
  }
  try {
    std::string bytes;
    std::array<char, 1 << 16> buffer;
    for (ssize_t n; (n = ::read(fd_, buffer.data(), buffer.size())) != 0;) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw JournalError(errno_text("cannot read " + path_));
      bytes.append(buffer.data(), static_cast<std::size_t>(n));
    }
    JournalRecords records;
    try {
      records = read_journal_records(bytes);
    } catch (const JournalError& error) {
      throw JournalError(path_ + ": " + error.what());
    }
    jpb::Entry entry;
    for (const auto payload : records.payloads) {
      if (!entry.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        records.tear = "a record does not parse";  // a sound checksum over garbage: stop there all the same
        break;
      }
      state_.apply(entry);
    }
    tear_ = records.tear;
    if (!tear_.empty()) spdlog::warn("journal {}: {}: read up to it, the rest is cut off", path_, tear_);
    // Rewritten compact at once: drops a tear and what the last broker left to compact.
    compact();
  } catch (...) {
    ::close(fd_);
    ::close(lock_fd_);
    throw;
  }
}

Journal::~Journal() {
  try {
    sync();
  } catch (const JournalError& error) {
    spdlog::error("journal: {}", error.what());
  }
  ::close(fd_);
  ::close(lock_fd_);
}

void Journal::append(const jpb::Entry& entry, bool transition) {
  state_.apply(entry);
  append_journal_record(pending_, entry.SerializeAsString());
  pending_transition_ = pending_transition_ || transition;
}

void Journal::put(const jpb::Process& process) {
  jpb::Entry entry;
  *entry.mutable_process() = process;
  append(entry, true);
}

void Journal::forget(const std::string& uuid) {
  jpb::Entry entry;
  entry.set_forget(uuid);
  append(entry, true);
}

void Journal::offset(const std::string& uuid, std::uint32_t generation, std::uint64_t offset) {
  jpb::Entry entry;
  auto* at = entry.mutable_offset();
  at->set_uuid(uuid);
  at->set_generation(generation);
  at->set_offset(offset);
  append(entry, false);
}

void Journal::sync() {
  if (pending_.empty()) return;
  write_all(fd_, pending_, path_);
  file_bytes_ += pending_.size();
  pending_.clear();
  if (pending_transition_) {
    if (::fdatasync(fd_) != 0) throw JournalError(errno_text("cannot fdatasync " + path_));
    ++syncs_;
  }
  pending_transition_ = false;
  if (file_bytes_ > compact_at_) compact();
}

// The state written to a new file, made durable, then renamed over the old one.
void Journal::compact() {
  const std::string bytes = state_.snapshot();
  const std::string next = path_ + ".next";
  const int fd = ::open(next.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw JournalError(errno_text("cannot create " + next));
  try {
    write_all(fd, bytes, next);
    if (::fsync(fd) != 0) throw JournalError(errno_text("cannot fsync " + next));
    if (::rename(next.c_str(), path_.c_str()) != 0) throw JournalError(errno_text("cannot rename " + next));
  } catch (...) {
    ::close(fd);
    throw;
  }
  const int directory = ::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory >= 0) {
    ::fsync(directory);
    ::close(directory);
  }
  ::lseek(fd, 0, SEEK_END);
  ::close(fd_);
  fd_ = fd;
  file_bytes_ = bytes.size();
  compact_at_ = std::max<std::uint64_t>(kCompactFloor, kCompactGrowth * file_bytes_);
  ++compactions_;
}

}  // namespace drunc::broker
