#include "core/linalg.h"

#include <cblas.h>

#include <mutex>

#include "core/parallel.h"

namespace xg {

void init_blas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

namespace {
CBLAS_TRANSPOSE tr(bool t) { return t ? CblasTrans : CblasNoTrans; }
blasint bi(std::size_t v) { return static_cast<blasint>(v); }
}  // namespace

template <>
void gemm<float>(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
                 std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
  if (m == 0 || n == 0) return;
  init_blas();
  cblas_sgemm(CblasRowMajor, tr(trans_a), tr(trans_b), bi(m), bi(n), bi(k), alpha, a, bi(lda), b, bi(ldb), beta, c,
              bi(ldc));
}

template <>
void gemm<double>(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, double alpha,
                  const double* a, std::size_t lda, const double* b, std::size_t ldb, double beta, double* c,
                  std::size_t ldc) {
  if (m == 0 || n == 0) return;
  init_blas();
  cblas_dgemm(CblasRowMajor, tr(trans_a), tr(trans_b), bi(m), bi(n), bi(k), alpha, a, bi(lda), b, bi(ldb), beta, c,
              bi(ldc));
}

template <class T>
void parallel_gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                   std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  if (m <= kGemmRowBlock || m * n * k < kParallelGemmFlops) {
    gemm<T>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  parallel_for(0, m, kGemmRowBlock, [&](std::size_t lo, std::size_t hi) {
    // Rows lo..hi of op(A): row offset in A as stored, or column offset when A is transposed.
    const T* a_block = trans_a ? a + lo : a + lo * lda;
    gemm<T>(trans_a, trans_b, hi - lo, n, k, alpha, a_block, lda, b, ldb, beta, c + lo * ldc, ldc);
  });
}

template void parallel_gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t,
                                   const float*, std::size_t, float, float*, std::size_t);
template void parallel_gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*,
                                    std::size_t, const double*, std::size_t, double, double*, std::size_t);

}  // namespace xg
