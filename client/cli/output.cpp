#include "output.hpp"

#include <unistd.h>

#include <cstdlib>

#include <google/protobuf/util/json_util.h>

#include "wire/shell_quote.hpp"

namespace drunc::cli {

namespace pm = dunedaq::druncschema;

namespace {

// Width on a terminal: count UTF-8 code points, not bytes, and not the
// ANSI sequences ("\033[...m") that colour a cell.
std::size_t display_width(const std::string& text) {
  std::size_t width = 0;
  bool in_sequence = false;
  for (unsigned char c : text) {
    if (in_sequence) {
      in_sequence = c != 'm';
      continue;
    }
    if (c == 0x1b) {
      in_sequence = true;
      continue;
    }
    if ((c & 0xC0) != 0x80) ++width;
  }
  return width;
}

std::string painted(const std::string& text, const char* colour, bool color) {
  return color && *colour && !text.empty() ? std::string(colour) + text + "\033[0m" : text;
}

std::string command_line(const pm::ProcessDescription& description) {
  std::string line;
  for (const auto& command : description.executable_and_arguments()) {
    if (!line.empty()) line += " ; ";
    line += wire::shell_quote(command.exec());
    for (const auto& argument : command.args()) {
      line += ' ';
      line += wire::shell_quote(argument);
    }
  }
  return line;
}

}  // namespace

bool use_color(ColorMode mode, int fd) {
  if (mode != ColorMode::automatic) return mode == ColorMode::always;
  const char* no_color = std::getenv("NO_COLOR");
  return ::isatty(fd) && !(no_color && *no_color);
}

void print_aligned(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  if (rows.empty()) return;
  std::vector<std::size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size() && c < widths.size(); ++c)
      widths[c] = std::max(widths[c], display_width(row[c]));
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(widths[c] - display_width(row[c]) + 2, ' ');
    }
    out << line << "\n";
  };
  print_row(rows.front());
  std::vector<std::string> rule;
  for (auto width : widths) rule.emplace_back(width, '-');
  print_row(rule);
  for (std::size_t r = 1; r < rows.size(); ++r) print_row(rows[r]);
}

void print_process_table(const pm::ProcessInstanceList& list, bool long_format, std::ostream& out, bool color) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"session", "friendly name", "user", "host", "uuid", "alive", "exit-code"};
  if (long_format) {
    header.insert(header.end(), {"directory", "log", "command"});
  }
  rows.push_back(header);
  for (const auto& instance : list.values()) {
    const auto& description = instance.process_description();
    const auto& metadata = description.metadata();
    const bool alive = instance.status_code() == pm::ProcessInstance::RUNNING;
    std::vector<std::string> row = {
        metadata.session(),
        metadata.name(),
        metadata.user(),
        metadata.hostname(),
        instance.uuid().uuid(),
        alive ? painted("True", "\033[32m", color)
              : painted("False", instance.return_code() == 0 ? "\033[33m" : "\033[31m", color),
        alive ? ""
              : painted(std::to_string(instance.return_code()), instance.return_code() == 0 ? "" : "\033[31m", color)};
    if (long_format) {
      row.push_back(description.process_execution_directory());
      row.push_back(description.process_logs_path());
      row.push_back(command_line(description));
    }
    rows.push_back(std::move(row));
  }
  print_aligned(rows, out);
}

std::string to_json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

}  // namespace drunc::cli
