// One Markdown table row per measured quantity, drunc-zmq beside its
// same-run baseline: | scenario | quantity | drunc-zmq | baseline | ratio |
#pragma once

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace bench {

struct Stats {
  double median, min, max;
};

inline Stats stats_of(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return {values[values.size() / 2], values.front(), values.back()};
}

// How the ratio reads: for times, smaller is better; for rates, larger is.
enum class Better { smaller, larger };

inline void print_row(const std::string& scenario, const std::string& quantity, const std::vector<double>& ours,
                      const std::vector<double>& baseline, const std::string& unit, Better better) {
  const Stats a = stats_of(ours), b = stats_of(baseline);
  auto format = [&](const Stats& s) {
    char text[128];
    std::snprintf(text, sizeof text, "%.4g %s (%.4g-%.4g)", s.median, unit.c_str(), s.min, s.max);
    return std::string(text);
  };
  char ratio[64];
  if (a.median == 0 || b.median == 0)
    std::snprintf(ratio, sizeof ratio, "-");  // no ratio of nothing (lines lost, for instance)
  else if (better == Better::smaller && a.median <= b.median)
    std::snprintf(ratio, sizeof ratio, "%.1fx faster", b.median / a.median);
  else if (better == Better::smaller)
    std::snprintf(ratio, sizeof ratio, "%.2fx the baseline's time", a.median / b.median);
  else
    std::snprintf(ratio, sizeof ratio, "%.0f%% of the baseline's rate", 100.0 * a.median / b.median);
  std::cout << "| " << scenario << " | " << quantity << " | " << format(a) << " | " << format(b) << " | " << ratio
            << " |" << std::endl;
}

}  // namespace bench
