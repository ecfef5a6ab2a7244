#include "thread_cpu.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace bench {

double thread_cpu_seconds(std::string_view name) {
  static const double ticks_per_second = static_cast<double>(::sysconf(_SC_CLK_TCK));
  double seconds = 0;
  std::error_code ignored;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ignored)) {
    std::string comm;
    std::getline(std::ifstream(task.path() / "comm"), comm);
    if (comm != name) continue;
    std::string stat;
    std::getline(std::ifstream(task.path() / "stat"), stat);
    // The fields after the command name, which is in parentheses and may hold spaces:
    // state is field 3, utime and stime are fields 14 and 15.
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int index = 3; index <= 15 && fields >> field; ++index) {
      if (index == 14) utime = std::stoull(field);
      if (index == 15) stime = std::stoull(field);
    }
    seconds += static_cast<double>(utime + stime) / ticks_per_second;
  }
  return seconds;
}

}  // namespace bench
