#include "core/random.h"

namespace xg {

Rng& default_rng() {
  static Rng rng(0);
  return rng;
}

void manual_seed(std::uint64_t seed) { default_rng().seed(seed); }

}  // namespace xg
