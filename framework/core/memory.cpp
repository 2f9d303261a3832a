#include "core/memory.h"

#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace xg {

bool tune_malloc_for_training() {
  const char* env = std::getenv("XGRAD_MALLOC_TUNING");
  if (env && std::strcmp(env, "0") == 0) return false;
#if defined(__GLIBC__)
  return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 256 << 20) == 1;
#else
  return false;
#endif
}

}  // namespace xg
