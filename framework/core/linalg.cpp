#include "core/linalg.h"

#include <cblas.h>

#include <mutex>

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

}  // namespace xg
