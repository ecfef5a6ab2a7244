#include <catch2/catch.hpp>

#include "wire/topic.hpp"
#include "wire/utf8.hpp"

using namespace drunc::wire;

TEST_CASE("topic fields escape only the separator and the escape character") {
  CHECK(process_topic(kLogKind, "run-7", "readout.01", "u-1") == "log/run-7/readout.01/u-1");
  CHECK(process_topic(kStateKind, "", "a/b%c", "u") == "state//a%2Fb%25c/u");
  CHECK(broadcast_topic("s", "pm") == "bcast/s/pm");
  for (const std::string field : {"", "plain", "a/b", "%", "%2F", "100%/x/", "dotted.name.x", "ünï/cødé"})
    CHECK(decode_topic_field(encode_topic_field(field)) == field);
}

TEST_CASE("a name prefix filter does not leak into a longer name when the separator is included") {
  const auto topic = process_topic(kLogKind, "s", "app10", "u");
  CHECK(topic.rfind("log/s/app1", 0) == 0);   // bare prefix matches app10 too
  CHECK(topic.rfind("log/s/app1/", 0) != 0);  // with the separator it is exact
}

TEST_CASE("valid UTF-8 passes unchanged") {
  for (const std::string text : {"", "ascii", "café", "日本語", "emoji \xF0\x9F\x98\x80", "\xEF\xBF\xBD"}) {
    CHECK(is_valid_utf8(text));
    CHECK(to_valid_utf8(text) == text);
  }
}

TEST_CASE("invalid UTF-8 sequences are replaced by U+FFFD") {
  const std::string replacement = "\xEF\xBF\xBD";
  CHECK(to_valid_utf8("a\xFF"
                      "b") == "a" + replacement + "b");
  CHECK(to_valid_utf8("\xC0\xAF") == replacement + replacement);                    // overlong '/'
  CHECK(to_valid_utf8("\xED\xA0\x80") == replacement + replacement + replacement);  // surrogate
  CHECK(to_valid_utf8("x\xE6\x97") == "x" + replacement + replacement);             // truncated at the end
  CHECK(to_valid_utf8("\xF4\x90\x80\x80").find("\xF4") == std::string::npos);       // above U+10FFFF
  std::string binary;
  for (int b = 0; b < 256; ++b) binary += static_cast<char>(b);
  CHECK(is_valid_utf8(to_valid_utf8(binary)));
}
