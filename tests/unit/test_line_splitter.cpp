#include <catch2/catch.hpp>

#include "line_splitter.hpp"
#include "wire/utf8.hpp"

using drunc::workers::LineSplitter;

TEST_CASE("lines are cut on newline, across reads") {
  LineSplitter splitter;
  std::vector<std::string> lines;
  splitter.feed("first\nsec", lines);
  CHECK(lines == std::vector<std::string>{"first"});
  splitter.feed("ond\n\nthird", lines);
  CHECK(lines == std::vector<std::string>{"first", "second", ""});
  splitter.finish(lines);
  CHECK(lines == std::vector<std::string>{"first", "second", "", "third"});
  splitter.finish(lines);
  CHECK(lines.size() == 4);  // nothing left to flush twice
}

TEST_CASE("carriage returns and other bytes are kept as they are") {
  LineSplitter splitter;
  std::vector<std::string> lines;
  splitter.feed("dos line\r\n\ttabbed\n", lines);
  CHECK(lines == std::vector<std::string>{"dos line\r", "\ttabbed"});
}

TEST_CASE("a line longer than 64 KiB is cut into marked pieces") {
  LineSplitter splitter;
  std::vector<std::string> lines;
  const std::string long_line(LineSplitter::kMaxLineBytes * 2 + 10, 'x');
  splitter.feed(long_line + "\nnext\n", lines);
  REQUIRE(lines.size() == 4);
  const std::string marker(LineSplitter::kContinuationMarker);
  CHECK(lines[0] == std::string(LineSplitter::kMaxLineBytes, 'x') + marker);
  CHECK(lines[1] == std::string(LineSplitter::kMaxLineBytes, 'x') + marker);
  CHECK(lines[2] == std::string(10, 'x'));
  CHECK(lines[3] == "next");
}

TEST_CASE("a long line fed in small reads is cut the same way") {
  LineSplitter splitter;
  std::vector<std::string> lines;
  const std::string chunk(1000, 'y');
  for (int i = 0; i < 70; ++i) splitter.feed(chunk, lines);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].size() == LineSplitter::kMaxLineBytes + LineSplitter::kContinuationMarker.size());
  splitter.feed("\n", lines);
  REQUIRE(lines.size() == 2);
  CHECK(lines[1].size() == 70 * 1000 - LineSplitter::kMaxLineBytes);
}

TEST_CASE("a cut never splits a UTF-8 character") {
  LineSplitter splitter;
  std::vector<std::string> lines;
  // 'é' is 2 bytes; an odd prefix puts a character across the 64 KiB boundary.
  std::string text = "a";
  while (text.size() < LineSplitter::kMaxLineBytes + 100) text += "é";
  splitter.feed(text + "\n", lines);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].find("\xEF\xBF\xBD") == std::string::npos);
  CHECK(lines[1].find("\xEF\xBF\xBD") == std::string::npos);
}

TEST_CASE("binary output becomes valid UTF-8 lines") {
  LineSplitter splitter;
  std::vector<std::string> lines;
  splitter.feed(std::string("ok\n\xFF\xFE\x00 raw\n", 12), lines);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "ok");
  CHECK(drunc::wire::is_valid_utf8(lines[1]));
  CHECK(lines[1] == std::string("\xEF\xBF\xBD\xEF\xBF\xBD\x00 raw", 11));
}
