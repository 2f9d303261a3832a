#pragma once
/// \file dispatch.h
/// XG_DISPATCH: one kernel body compiled for several instruction sets and chosen at run time by the CPU's features.
/// Include it in a .cpp file only (it defines functions). Used by ops/simd_kernels.cpp and the data readers.
///
///     XG_KERNEL void scale_kernel(const float* x, float* y, std::size_t n) { for (...) y[i] = 2 * x[i]; }
///     XG_DISPATCH(scale, (const float* x, float* y, std::size_t n), (x, y, n))   // defines void scale(...)

#include "core/cpu.h"

// Each kernel body is written once (XG_KERNEL: always inlined) and compiled three times — for AVX-512, AVX2 and the
// x86-64 baseline — by XG_DISPATCH, which calls the copy for xg::active_isa(): the level the CPU's features allow,
// lowered by XGRAD_ISA for tests and comparisons (core/cpu.h). Unlike GCC's target_clones (ifunc resolvers, chosen by
// the loader), this honours XGRAD_ISA and needs no ifunc, so ThreadSanitizer builds run every copy too.
#define XG_KERNEL __attribute__((always_inline)) inline
#if defined(__x86_64__)
#define XG_DISPATCH(name, params, args)                                            \
  __attribute__((target("avx512f"))) static void name##_avx512 params { name##_kernel args; } \
  __attribute__((target("avx2"))) static void name##_avx2 params { name##_kernel args; }      \
  static void name##_baseline params { name##_kernel args; }                           \
  void name params {                                                                   \
    switch (::xg::active_isa()) {                                                      \
      case ::xg::Isa::Avx512: name##_avx512 args; return;                              \
      case ::xg::Isa::Avx2: name##_avx2 args; return;                                  \
      default: name##_baseline args; return;                                           \
    }                                                                                  \
  }
#else
#define XG_DISPATCH(name, params, args) \
  void name params { name##_kernel args; }
#endif
