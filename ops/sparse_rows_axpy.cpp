// simd::sparse_rows_axpy (see simd_kernels.h): out = Σ_j d[j] · src row idx[j], one fused multiply-add per term on
// the AVX-512 copy.
//
// Its own file because it is the one kernel compiled with floating-point contraction (ops/CMakeLists.txt): its only
// arithmetic is acc + d·x, so GCC fuses it into an FMA at every position — vector blocks, single vectors and the
// scalar remainder alike — on the copies whose target has FMA (AVX-512), and nowhere on the others (the AVX2 copy is
// compiled without FMA, the baseline has none). A result therefore still depends only on its inputs and the kernel
// path, never on where it sits; the FMA is worth about 3% of the deep network's training step.
#include "ops/simd_kernels.h"

#include <cstddef>
#include <cstdint>

#include "core/cpu.h"
#include "ops/simd_vectors.h"

namespace xg::ops::simd {

// Register-blocked with explicit vectors (GCC/Clang vector extensions) as wide as each copy's registers — 16 lanes
// for AVX-512, 8 for AVX2, 4 for the baseline (a 16-lane type on AVX2 was lowered through the stack: 3× slower than
// the dense GEMMs it replaces): kVecs vectors of outputs stay in registers while every row adds into them, so each
// row costs one load per multiply-add; then one vector at a time, then the last outputs one by one. (Written as plain
// loops, GCC interchanged them and kept the outputs in memory.) Each output adds the rows in order j = 0, 1, ...
// whatever the blocking, so the blocking does not change the bits.
template <class V, std::size_t kVecs>
XG_KERNEL void sparse_rows_axpy_block(const float* d, const std::int32_t* idx, std::size_t count, const float* src,
                                      std::size_t len, float* out, bool accumulate, std::size_t k0) {
  constexpr std::size_t kLanes = sizeof(V) / sizeof(float);
  V acc[kVecs];
  for (std::size_t v = 0; v < kVecs; ++v) acc[v] = accumulate ? load_unaligned<V>(out + k0 + kLanes * v) : V{};
  for (std::size_t j = 0; j < count; ++j) {
    const V dj = V{} + d[j];
    const float* row = src + static_cast<std::size_t>(idx[j]) * len + k0;
    for (std::size_t v = 0; v < kVecs; ++v) acc[v] += dj * load_unaligned<V>(row + kLanes * v);
  }
  for (std::size_t v = 0; v < kVecs; ++v) store_unaligned(out + k0 + kLanes * v, acc[v]);
}
template <class V, std::size_t kVecs>
XG_KERNEL void sparse_rows_axpy_with(const float* d, const std::int32_t* idx, std::size_t count, const float* src,
                                     std::size_t len, float* out, bool accumulate) {
  constexpr std::size_t kLanes = sizeof(V) / sizeof(float), kBlock = kLanes * kVecs;
  std::size_t k0 = 0;
  for (; k0 + kBlock <= len; k0 += kBlock) sparse_rows_axpy_block<V, kVecs>(d, idx, count, src, len, out, accumulate, k0);
  for (; k0 + kLanes <= len; k0 += kLanes) sparse_rows_axpy_block<V, 1>(d, idx, count, src, len, out, accumulate, k0);
  for (; k0 < len; ++k0) {
    float acc = accumulate ? out[k0] : 0.0f;
    for (std::size_t j = 0; j < count; ++j) acc += d[j] * src[static_cast<std::size_t>(idx[j]) * len + k0];
    out[k0] = acc;
  }
}
// Dispatched by hand (XG_DISPATCH compiles one body; this one differs in its vector type per level).
#if defined(__x86_64__)
__attribute__((target("avx512f"))) static void sparse_rows_axpy_avx512(const float* d, const std::int32_t* idx,
                                                                       std::size_t count, const float* src,
                                                                       std::size_t len, float* out, bool accumulate) {
  sparse_rows_axpy_with<v16sf, 4>(d, idx, count, src, len, out, accumulate);
}
__attribute__((target("avx2"))) static void sparse_rows_axpy_avx2(const float* d, const std::int32_t* idx,
                                                                   std::size_t count, const float* src, std::size_t len,
                                                                   float* out, bool accumulate) {
  sparse_rows_axpy_with<v8sf, 8>(d, idx, count, src, len, out, accumulate);
}
#endif
static void sparse_rows_axpy_baseline(const float* d, const std::int32_t* idx, std::size_t count, const float* src,
                                      std::size_t len, float* out, bool accumulate) {
  sparse_rows_axpy_with<v4sf, 8>(d, idx, count, src, len, out, accumulate);
}
void sparse_rows_axpy(const float* d, const std::int32_t* idx, std::size_t count, const float* src, std::size_t len,
                      float* out, bool accumulate) {
#if defined(__x86_64__)
  switch (::xg::active_isa()) {
    case ::xg::Isa::Avx512: sparse_rows_axpy_avx512(d, idx, count, src, len, out, accumulate); return;
    case ::xg::Isa::Avx2: sparse_rows_axpy_avx2(d, idx, count, src, len, out, accumulate); return;
    default: break;
  }
#endif
  sparse_rows_axpy_baseline(d, idx, count, src, len, out, accumulate);
}

}  // namespace xg::ops::simd
