#include <catch2/catch.hpp>

#include "errors.hpp"
#include "query.hpp"

using namespace drunc::broker;
namespace pm = dunedaq::druncschema;

namespace {

pm::ProcessMetadata metadata(const std::string& name, const std::string& user, const std::string& session) {
  pm::ProcessMetadata metadata;
  metadata.set_name(name);
  metadata.set_user(user);
  if (!session.empty()) metadata.set_session(session);
  return metadata;
}

}  // namespace

TEST_CASE("an empty query is empty: empty strings are not given") {
  pm::ProcessQuery query;
  CHECK(CompiledQuery(query).empty());
  query.add_names("");
  query.add_uuids()->set_uuid("");
  query.set_user("");
  CompiledQuery compiled(query);
  CHECK(compiled.empty());
  CHECK_FALSE(compiled.matches("u", metadata("x", "", "")));
}

TEST_CASE("names are regular expressions searched anywhere in the friendly name") {
  pm::ProcessQuery query;
  query.add_names("read");
  CompiledQuery compiled(query);
  CHECK(compiled.matches("u", metadata("readout-01", "", "")));
  CHECK(compiled.matches("u", metadata("my-reader", "", "")));
  CHECK_FALSE(compiled.matches("u", metadata("trigger", "", "")));

  pm::ProcessQuery anchored;
  anchored.add_names("^readout-0[12]$");
  CompiledQuery exact(anchored);
  CHECK(exact.matches("u", metadata("readout-02", "", "")));
  CHECK_FALSE(exact.matches("u", metadata("readout-03", "", "")));
  CHECK_FALSE(exact.matches("u", metadata("readout-012", "", "")));
}

TEST_CASE("fields are OR-ed") {
  pm::ProcessQuery query;
  query.add_uuids()->set_uuid("uuid-1");
  query.add_names("^trigger$");
  query.set_user("alice");
  query.set_session("run-7");
  CompiledQuery compiled(query);
  CHECK(compiled.matches("uuid-1", metadata("x", "bob", "other")));
  CHECK(compiled.matches("uuid-2", metadata("trigger", "bob", "other")));
  CHECK(compiled.matches("uuid-2", metadata("x", "alice", "other")));
  CHECK(compiled.matches("uuid-2", metadata("x", "bob", "run-7")));
  CHECK_FALSE(compiled.matches("uuid-2", metadata("x", "bob", "other")));
}

TEST_CASE("uuid, user and session match exactly") {
  pm::ProcessQuery query;
  query.add_uuids()->set_uuid("abc");
  query.set_session("run");
  CompiledQuery compiled(query);
  CHECK_FALSE(compiled.matches("abcd", metadata("x", "", "")));
  CHECK_FALSE(compiled.matches("x", metadata("x", "", "run-7")));
}

TEST_CASE("an invalid regular expression is a DruncError naming it") {
  pm::ProcessQuery query;
  query.add_names("readout-(");
  CHECK_THROWS_AS(CompiledQuery(query), DruncError);
  CHECK_THROWS_WITH(CompiledQuery(query), Catch::Contains("readout-("));
}

TEST_CASE("Python-style pattern syntax works: pathological patterns stay fast") {
  pm::ProcessQuery query;
  query.add_names("(?i)^READOUT-(?P<link>\\d+)$");
  CHECK(CompiledQuery(query).matches("u", metadata("readout-17", "", "")));
  pm::ProcessQuery evil;
  evil.add_names("(a|a)*b");
  evil.add_names("(a*)*$x");
  CompiledQuery compiled(evil);
  // With a backtracking engine this name takes longer than the age of the universe.
  CHECK_FALSE(compiled.matches("u", metadata(std::string(100000, 'a'), "", "")));
}
