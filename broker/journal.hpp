// The journal: the durable part of the process registry, kept by a broker
// with on_broker_exit "keep" so that a broker started again re-adopts the
// processes it leaves running. docs/JOURNAL.md describes the format.
//
// One owner, the broker thread: it appends an entry at each transition of a
// process (put: the whole record; forget: a flush) and as output is taken
// (offset), and calls sync() once per turn of its loop, before it sends that
// turn's replies: the turn's entries go out in one write, with one fdatasync
// if a transition is among them. So a client that got an answer knows the
// transition it reports is on disk, and a boot of many processes costs one
// fdatasync per turn, not per process.
//
// The file is DIR/journal: a magic line, then records, each a length, a
// CRC-32C and a serialized drunc_zmq.journal.Entry. A record cut short (a
// crash in the middle of a write) or damaged ends the reading: what comes
// before it is the journal, the rest is cut off. When the file has grown past
// four times its last compact size (and 1 MiB), it is rewritten as one put per
// process (write a new file, fsync, rename, fsync the directory).
#pragma once

#include <cstdint>
#include <list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "drunc_zmq/journal.pb.h"

namespace drunc::broker {

// The directory cannot hold a journal, or the journal cannot be written. what() says which and why.
class JournalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// ---- The format (pure)

inline constexpr std::string_view kJournalMagic = "drunc-zmq journal 1\n";
// Larger records are taken for damage.
inline constexpr std::uint32_t kMaxJournalRecordBytes = 64u << 20;

std::uint32_t crc32c(std::string_view bytes);
// Appends one record holding payload to out.
void append_journal_record(std::string& out, std::string_view payload);

struct JournalRecords {
  std::vector<std::string_view> payloads;  // into the bytes read
  std::size_t good_bytes = 0;              // the magic and every whole, sound record: where the next one goes
  std::string tear;                        // why reading stopped before the end; empty if it did not
};
// The records of a journal file's bytes, up to the first that is cut short or damaged.
// An empty file is an empty journal; one that does not start with the magic is refused (JournalError).
JournalRecords read_journal_records(std::string_view bytes);

// The processes a journal describes, in the order they were first put.
class JournalState {
 public:
  void apply(const drunc_zmq::journal::Entry& entry);
  const drunc_zmq::journal::Process* find(const std::string& uuid) const;
  std::vector<const drunc_zmq::journal::Process*> processes() const;
  std::size_t size() const { return index_.size(); }
  // A compact journal file (the magic and one put per process) describing this state.
  std::string snapshot() const;

 private:
  std::list<drunc_zmq::journal::Process> order_;
  std::unordered_map<std::string, std::list<drunc_zmq::journal::Process>::iterator> index_;
};

// ---- The journal file

class Journal {
 public:
  // Opens DIRECTORY/journal, creating it, and reads what it holds up to any
  // tear (which is cut off, so that new records follow sound ones). Takes an
  // exclusive lock (DIRECTORY/lock) for as long as it lives: two brokers never
  // share a journal. Throws JournalError if the directory is missing or not
  // writable, the file is not a journal, or another broker holds the lock.
  explicit Journal(std::string directory);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // What the journal held when it was opened, and then every entry appended.
  const JournalState& state() const { return state_; }
  // Why reading stopped short at open (a torn last record); empty if it did not.
  const std::string& tear() const { return tear_; }
  const std::string& directory() const { return directory_; }

  // A transition: the process's whole record; a flush.
  void put(const drunc_zmq::journal::Process& process);
  void forget(const std::string& uuid);
  // Output taken up to offset: written with the next sync, made durable with the next transition's.
  void offset(const std::string& uuid, std::uint32_t generation, std::uint64_t offset);
  // Writes what was appended since the last call (fdatasync if a transition
  // is among it), then compacts if the file has grown enough. Throws JournalError.
  void sync();

  std::uint64_t syncs() const { return syncs_; }
  std::uint64_t compactions() const { return compactions_; }

 private:
  void append(const drunc_zmq::journal::Entry& entry, bool transition);
  void compact();

  std::string directory_;
  std::string path_;
  int lock_fd_ = -1;
  int fd_ = -1;
  JournalState state_;
  std::string tear_;
  std::string pending_;  // records appended since the last sync
  bool pending_transition_ = false;
  std::uint64_t file_bytes_ = 0;
  std::uint64_t compact_at_ = 0;  // file size past which sync compacts
  std::uint64_t syncs_ = 0;
  std::uint64_t compactions_ = 0;
};

}  // namespace drunc::broker
