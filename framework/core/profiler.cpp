#include "core/profiler.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>

namespace xg::profiler {

namespace {
std::atomic<bool> g_on{false};
std::mutex g_mutex;
std::map<std::string, Entry>& table_data() {
  static std::map<std::string, Entry> t;
  return t;
}
}  // namespace

void enable(bool on) { g_on = on; }
bool enabled() { return g_on.load(std::memory_order_relaxed); }

void reset() {
  std::lock_guard<std::mutex> lock(g_mutex);
  table_data().clear();
}

void add(const char* name, bool backward, double seconds) {
  std::lock_guard<std::mutex> lock(g_mutex);
  Entry& e = table_data()[name];
  e.name = name;
  (backward ? e.backward_calls : e.forward_calls) += 1;
  (backward ? e.backward_seconds : e.forward_seconds) += seconds;
}

std::vector<Entry> entries() {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::vector<Entry> out;
  for (const auto& [name, e] : table_data()) out.push_back(e);
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    return a.forward_seconds + a.backward_seconds > b.forward_seconds + b.backward_seconds;
  });
  return out;
}

std::string table() {
  const auto rows = entries();
  double total = 0;
  int width = 16;  // the op column fits the longest name ("conv2d+sigmoid+max_pool2d", a user's "my_ops::softplus")
  for (const auto& e : rows) {
    total += e.forward_seconds + e.backward_seconds;
    width = std::max(width, static_cast<int>(std::min<std::size_t>(e.name.size(), 200)));
  }
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-*s %10s %12s %12s %12s %12s %7s\n", width, "op", "fwd calls", "fwd ms",
                "fwd us/call", "bwd calls", "bwd ms", "share");
  out += line;
  for (const auto& e : rows) {
    std::snprintf(line, sizeof line, "%-*.200s %10zu %12.2f %12.2f %12zu %12.2f %6.1f%%\n", width, e.name.c_str(),
                  e.forward_calls, e.forward_seconds * 1e3,
                  e.forward_calls ? e.forward_seconds * 1e6 / static_cast<double>(e.forward_calls) : 0.0,
                  e.backward_calls, e.backward_seconds * 1e3,
                  total > 0 ? 100.0 * (e.forward_seconds + e.backward_seconds) / total : 0.0);
    out += line;
  }
  std::snprintf(line, sizeof line, "%-*s %10s %12s %12s %12s %12.2f (all ops, forward + backward)\n", width, "total", "",
                "", "", "", total * 1e3);
  out += line;
  return out;
}

}  // namespace xg::profiler
