#pragma once
/// \file simd_vectors.h
/// Internal to ops/: the GCC/Clang vector-extension types the dispatched float32 kernels use (compiled per instruction
/// set like the kernels themselves) and their unaligned loads and stores. Include it in kernel .cpp files only.

#include <cstdint>
#include <cstring>

#include "core/dispatch.h"

namespace xg::ops::simd {

// The helpers taking and returning vectors are always inlined into each instruction set's copy: no call crosses an ABI
// boundary, so GCC's note that AVX vectors pass differently without AVX (-Wpsabi) does not apply.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpsabi"
#elif defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"  // for the whole file: GCC reports it at the end of the translation unit
#endif
typedef float v4sf __attribute__((vector_size(16)));
typedef float v8sf __attribute__((vector_size(32)));
typedef float v16sf __attribute__((vector_size(64)));
typedef std::int32_t v8si __attribute__((vector_size(32)));
// Unaligned vector loads and stores go through memcpy (one move each): an alignment attribute on a vector typedef does
// not survive as a template argument, and the aligned moves it then compiles to fault on unaligned rows.
template <class V>
XG_KERNEL V load_unaligned(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V>
XG_KERNEL void store_unaligned(float* p, const V& v) {
  std::memcpy(p, &v, sizeof v);
}

}  // namespace xg::ops::simd
