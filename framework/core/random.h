#pragma once
/// \file random.h
/// One seeded random engine (xoshiro256**, seeded through splitmix64). Uniform and normal draws are computed from raw
/// 64-bit outputs with fixed formulas, so a seed gives the same numbers on every platform and standard library
/// (std::normal_distribution is implementation-defined). Draws are serial: never from thread-local engines.

#include <array>
#include <cmath>
#include <cstdint>

namespace xg {

/// One step of splitmix64 from state z: a well-mixed 64-bit value (nearby inputs give unrelated outputs). Seeds Rng's
/// state, and derives seeds from several numbers (e.g. the trainer's dropout seed from seed, epoch and rank).
inline std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class Rng {
 public:
  using State = std::array<std::uint64_t, 4>;

  explicit Rng(std::uint64_t seed = 0) { this->seed(seed); }

  void seed(std::uint64_t seed) {
    for (std::size_t k = 0; k < s_.size(); ++k) s_[k] = splitmix64(seed + k * 0x9e3779b97f4a7c15ULL);
    has_spare_ = false;
  }

  /// The next raw 64-bit draw.
  std::uint64_t next_u64() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Standard normal (Marsaglia's polar method; the spare value is kept and is part of the state).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      u = 2.0 * uniform() - 1.0;
      v = 2.0 * uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double m = std::sqrt(-2.0 * std::log(s) / s);
    spare_ = v * m;
    has_spare_ = true;
    return u * m;
  }
  double normal(double mean, double stddev) { return mean + stddev * normal(); }
  /// Uniform integer in [0, n) without modulo bias (n > 0).
  std::uint64_t below(std::uint64_t n) {
    const std::uint64_t limit = ~std::uint64_t(0) - (~std::uint64_t(0) % n);
    std::uint64_t r;
    do r = next_u64();
    while (r >= limit);
    return r % n;
  }

  /// The full state, for checkpoints. Restoring it continues the exact same sequence.
  State state() const { return s_; }
  bool has_spare() const { return has_spare_; }
  double spare() const { return spare_; }
  void set_state(const State& s, bool has_spare = false, double spare = 0.0) {
    s_ = s;
    has_spare_ = has_spare;
    spare_ = spare;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  State s_{};
  bool has_spare_ = false;
  double spare_ = 0.0;
};

/// The process-wide default generator used by layer constructors (like PyTorch's default generator).
Rng& default_rng();
/// Reseeds the default generator (like `torch::manual_seed`).
void manual_seed(std::uint64_t seed);

}  // namespace xg
