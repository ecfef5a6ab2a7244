// The journal's format and its file (broker/journal.hpp): records read back,
// a tear at every byte read up to the tear, compaction keeping the state.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "journal.hpp"

using namespace drunc::broker;
namespace jpb = drunc_zmq::journal;

namespace {

jpb::Process process(const std::string& uuid, const std::string& state, std::uint32_t generation = 1) {
  jpb::Process p;
  p.set_uuid(uuid);
  p.set_state(state);
  p.set_generation(generation);
  p.set_pid(1000 + generation);
  p.set_start_time(123456);
  p.set_backend("local");
  p.set_worker("local");
  p.set_host("localhost");
  p.mutable_boot()->mutable_process_description()->mutable_metadata()->set_name("app-" + uuid);
  return p;
}

std::string entry_bytes(const jpb::Entry& entry) { return entry.SerializeAsString(); }

// A journal of puts, an offset and a forget, and the state after each record.
struct Sample {
  std::string bytes{kJournalMagic};
  std::vector<std::size_t> ends;  // where each record ends
  std::vector<jpb::Entry> entries;
};

Sample sample() {
  Sample s;
  auto add = [&](const jpb::Entry& entry) {
    append_journal_record(s.bytes, entry_bytes(entry));
    s.ends.push_back(s.bytes.size());
    s.entries.push_back(entry);
  };
  jpb::Entry entry;
  *entry.mutable_process() = process("a", "running");
  add(entry);
  *entry.mutable_process() = process("b", "running");
  add(entry);
  entry.mutable_offset()->set_uuid("a");
  entry.mutable_offset()->set_generation(1);
  entry.mutable_offset()->set_offset(4096);
  add(entry);
  *entry.mutable_process() = process("b", "exited");
  add(entry);
  entry.set_forget("b");
  add(entry);
  *entry.mutable_process() = process("c", "running", 2);
  add(entry);
  return s;
}

struct TempDirectory {
  TempDirectory() {
    char name[] = "/tmp/drunc-journal-XXXXXX";
    path = ::mkdtemp(name);
  }
  ~TempDirectory() { std::filesystem::remove_all(path); }
  std::string path;
};

std::string file_bytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("journal: CRC-32C of the standard check string") { CHECK(crc32c("123456789") == 0xE3069283u); }

TEST_CASE("journal: records are read back whole and in order") {
  const auto s = sample();
  const auto records = read_journal_records(s.bytes);
  CHECK(records.tear.empty());
  CHECK(records.good_bytes == s.bytes.size());
  REQUIRE(records.payloads.size() == s.entries.size());
  for (std::size_t i = 0; i < s.entries.size(); ++i) CHECK(records.payloads[i] == entry_bytes(s.entries[i]));
  CHECK(read_journal_records("").payloads.empty());
  CHECK_THROWS_AS(read_journal_records("not a journal at all\n"), JournalError);
}

TEST_CASE("journal: cut at every byte, it reads up to the last whole record, never fails") {
  const auto s = sample();
  for (std::size_t cut = 0; cut <= s.bytes.size(); ++cut) {
    INFO("cut at byte " << cut);
    const auto records = read_journal_records(std::string_view(s.bytes).substr(0, cut));
    std::size_t whole = 0;
    while (whole < s.ends.size() && s.ends[whole] <= cut) ++whole;
    CHECK(records.payloads.size() == whole);
    const std::size_t good = cut < kJournalMagic.size() ? 0 : whole == 0 ? kJournalMagic.size() : s.ends[whole - 1];
    CHECK(records.good_bytes == good);
    const bool at_boundary = cut == 0 || cut == kJournalMagic.size() || (whole > 0 && s.ends[whole - 1] == cut);
    CHECK(records.tear.empty() == at_boundary);
  }
}

TEST_CASE("journal: a damaged byte stops the reading at its record") {
  const auto s = sample();
  for (std::size_t at = kJournalMagic.size(); at < s.bytes.size(); ++at) {
    INFO("byte " << at << " flipped");
    auto damaged = s.bytes;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x5a);
    const auto records = read_journal_records(damaged);
    std::size_t record = 0;
    while (s.ends[record] <= at) ++record;
    CHECK(records.payloads.size() == record);
    CHECK_FALSE(records.tear.empty());
  }
}

TEST_CASE("journal: the state applies puts, offsets of the same generation, and forgets") {
  const auto s = sample();
  JournalState state;
  for (const auto& entry : s.entries) state.apply(entry);
  REQUIRE(state.size() == 2);
  const auto processes = state.processes();
  CHECK(processes[0]->uuid() == "a");
  CHECK(processes[0]->output_offset() == 4096);
  CHECK(processes[1]->uuid() == "c");
  CHECK(state.find("b") == nullptr);
  jpb::Entry stale;
  stale.mutable_offset()->set_uuid("c");
  stale.mutable_offset()->set_generation(1);  // c is at generation 2
  stale.mutable_offset()->set_offset(99);
  state.apply(stale);
  CHECK(state.find("c")->output_offset() == 0);

  // The snapshot is a journal describing the same state.
  JournalState again;
  jpb::Entry entry;
  const std::string snapshot = state.snapshot();
  for (const auto payload : read_journal_records(snapshot).payloads) {
    REQUIRE(entry.ParseFromArray(payload.data(), static_cast<int>(payload.size())));
    again.apply(entry);
  }
  REQUIRE(again.size() == 2);
  CHECK(again.find("a")->SerializeAsString() == state.find("a")->SerializeAsString());
  CHECK(again.find("c")->SerializeAsString() == state.find("c")->SerializeAsString());
}

TEST_CASE("journal file: written, read back by the next owner, a torn tail cut off") {
  TempDirectory directory;
  {
    Journal journal(directory.path);
    CHECK(journal.state().size() == 0);
    journal.put(process("a", "running"));
    journal.put(process("b", "running"));
    journal.offset("a", 1, 77);
    journal.sync();
    CHECK(journal.syncs() == 1);
    journal.offset("a", 1, 78);
    journal.sync();  // no transition: written, not fdatasync'd
    CHECK(journal.syncs() == 1);
    // Two brokers never share a journal.
    CHECK_THROWS_WITH(Journal(directory.path), Catch::Contains("another broker"));
  }
  // A crash in the middle of the next record.
  const std::string path = directory.path + "/journal";
  {
    std::string torn;
    jpb::Entry entry;
    *entry.mutable_process() = process("c", "running");
    append_journal_record(torn, entry.SerializeAsString());
    std::ofstream(path, std::ios::binary | std::ios::app) << torn.substr(0, torn.size() / 2);
  }
  {
    Journal journal(directory.path);
    CHECK_FALSE(journal.tear().empty());
    REQUIRE(journal.state().size() == 2);
    CHECK(journal.state().find("a")->output_offset() == 78);
    CHECK(journal.state().find("c") == nullptr);
    // The tear is gone: what is appended now is read back.
    journal.put(process("a", "exited"));
    journal.sync();
  }
  Journal journal(directory.path);
  CHECK(journal.tear().empty());
  CHECK(journal.state().find("a")->state() == "exited");
}

TEST_CASE("journal file: compacted when it has grown, with the same state") {
  TempDirectory directory;
  Journal journal(directory.path);
  const auto compactions = journal.compactions();
  for (int i = 0; i < 20000; ++i) {
    journal.put(process("p" + std::to_string(i % 10), i % 2 ? "running" : "exited", 1 + i / 10));
    if (i % 100 == 99) journal.sync();
  }
  journal.sync();
  CHECK(journal.compactions() > compactions);
  CHECK(std::filesystem::file_size(directory.path + "/journal") < (2u << 20));
  JournalState read;
  jpb::Entry entry;
  const auto bytes = file_bytes(directory.path + "/journal");
  for (const auto payload : read_journal_records(bytes).payloads) {
    REQUIRE(entry.ParseFromArray(payload.data(), static_cast<int>(payload.size())));
    read.apply(entry);
  }
  REQUIRE(read.size() == 10);
  for (const auto* process : journal.state().processes())
    CHECK(read.find(process->uuid())->SerializeAsString() == process->SerializeAsString());
}

TEST_CASE("journal file: a directory that is missing or not writable is refused") {
  CHECK_THROWS_WITH(Journal("/nonexistent/drunc-journal"), Catch::Contains("journal_directory"));
  TempDirectory directory;
  std::filesystem::permissions(directory.path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  if (::geteuid() != 0)  // root writes anywhere
    CHECK_THROWS_WITH(Journal(directory.path), Catch::Contains("not writable"));
  std::filesystem::permissions(directory.path, std::filesystem::perms::owner_all);
}
