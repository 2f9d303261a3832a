#include "core/cpu.h"

#include <cstdlib>
#include <cstring>
#include <fstream>

namespace xg {

Isa detected_isa() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // GCC's checks include the OS's support of the register state (XCR0 via xgetbv) for AVX and AVX-512.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl"))
    return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
#endif
  return Isa::Baseline;
}

Isa active_isa() {
  static const Isa isa = [] {
    const Isa detected = detected_isa();
    const char* forced = std::getenv("XGRAD_ISA");
    if (!forced || !*forced) return detected;
    Isa want = detected;
    if (std::strcmp(forced, "baseline") == 0) want = Isa::Baseline;
    else if (std::strcmp(forced, "avx2") == 0) want = Isa::Avx2;
    else if (std::strcmp(forced, "avx512") == 0) want = Isa::Avx512;
    return static_cast<int>(want) < static_cast<int>(detected) ? want : detected;
  }();
  return isa;
}

const char* to_string(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "baseline";
  }
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  return "unknown CPU";
}

}  // namespace xg
