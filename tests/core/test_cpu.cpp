// core/cpu.h and the kernel choice: the ISA level comes from the CPU's features, XGRAD_ISA can only lower it, and the
// BLAS kernels follow it (the whole unit suite also runs at every lower level this machine has: tests/CMakeLists.txt).
#include <cstdlib>
#include <cstring>

#include "core/cpu.h"
#include "core/linalg.h"
#include "helpers.h"

TEST_SUITE("cpu") {

TEST_CASE("the active ISA level is the detected one, lowered (never raised) by XGRAD_ISA, and the kernels say so") {
  const xg::Isa detected = xg::detected_isa(), active = xg::active_isa();
  CHECK(static_cast<int>(active) <= static_cast<int>(detected));
  const char* forced = std::getenv("XGRAD_ISA");
  if (!forced || !*forced) CHECK(active == detected);
  else if (static_cast<int>(detected) >= (std::strcmp(forced, "avx512") == 0 ? 2 : std::strcmp(forced, "avx2") == 0 ? 1 : 0))
    CHECK(std::string(xg::to_string(active)) == forced);
  const std::string k = xg::kernel_description();
  CAPTURE(k);
  CHECK(k.rfind(xg::to_string(active), 0) == 0);
  if (!std::getenv("OPENBLAS_CORETYPE") && active != xg::Isa::Baseline) {
    const bool bf16 = __builtin_cpu_supports("avx512bf16");
    CHECK(k.find(active == xg::Isa::Avx512 ? (bf16 ? "OpenBLAS Cooperlake" : "OpenBLAS SkylakeX") : "OpenBLAS Haswell") !=
          std::string::npos);
  }
  CHECK(xg::cpu_model_name().size() > 0);
}

}  // TEST_SUITE
