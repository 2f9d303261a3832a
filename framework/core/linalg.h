#pragma once
/// \file linalg.h
/// GEMM over OpenBLAS (`cblas_sgemm` / `cblas_dgemm`). The only door to BLAS. OpenBLAS is loaded at run time with the
/// kernels of the CPU's instruction-set level (core/cpu.h), not with its own table of CPU models: see linalg.cpp and
/// docs/performance.md.

#include <cstddef>
#include <string>

namespace xg {

/// C[M,N] = alpha * op(A) * op(B) + beta * C, row-major, where op(X) is X or Xᵀ.
/// `lda`, `ldb`, `ldc` are the row strides of A, B and C as stored. OpenBLAS runs on one thread (parallelism is
/// xgrad's own, over fixed blocks), which also keeps results bit-identical at any thread count.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);

/// gemm for large products: when m·n·k ≥ `kParallelGemmFlops`, C is split into fixed blocks computed in parallel
/// through `parallel_for` — rows in blocks of `kGemmRowBlock` and, when that gives fewer blocks than m·n·k /
/// `kParallelGemmFlops` (at most `kGemmMaxColumnSplit`), columns into equal blocks of at least `kGemmMinColumns` —
/// otherwise one call. Each block is a
/// single-threaded BLAS call, and the blocking depends only on the shapes, so results are bit-identical at any thread
/// count.
template <class T>
void parallel_gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                   std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);

inline constexpr std::size_t kGemmRowBlock = 64;
inline constexpr std::size_t kParallelGemmFlops = std::size_t(1) << 21;
inline constexpr std::size_t kGemmMaxColumnSplit = 4;
inline constexpr std::size_t kGemmMinColumns = 32;

/// Loads OpenBLAS (kernels chosen from the CPU's features unless the user set OPENBLAS_CORETYPE or something else
/// loaded it first) and pins it to one thread. Called automatically before the first gemm; idempotent. Throws
/// std::runtime_error naming the package when no OpenBLAS is installed.
void init_blas();

/// What runs, for headers and benchmarks: e.g. "avx512 (OpenBLAS SkylakeX, chosen from CPU features: avx512)".
std::string kernel_description();

}  // namespace xg
