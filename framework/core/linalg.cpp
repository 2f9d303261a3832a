#include "core/linalg.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "core/cpu.h"
#include "core/parallel.h"

namespace xg {

namespace {

// CBLAS as OpenBLAS exports it (the enum values are fixed by the CBLAS standard): row-major 101, no transpose 111,
// transpose 112. OpenBLAS is loaded at run time, not linked: see load_blas().
using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
using Dgemm = void (*)(int, int, int, int, int, int, double, const double*, int, const double*, int, double, double*, int);
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

struct Blas {
  Sgemm sgemm = nullptr;
  Dgemm dgemm = nullptr;
  std::string description;
};

/// OpenBLAS's name for the kernels of an ISA level (Debian's OpenBLAS is a DYNAMIC_ARCH build holding all of them):
/// its AVX-512 core, or Cooperlake (the same single-precision kernels plus bfloat16 ones) when the CPU has AVX512-BF16,
/// as OpenBLAS itself picks on the CPUs it knows (e.g. AMD Zen 4).
const char* openblas_core(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
    case Isa::Avx2: return "Haswell";
    default: return "Prescott";
  }
}

/// Loads OpenBLAS with the kernels of the CPU's ISA level.
///
/// Why: OpenBLAS picks its kernels from a table of CPU models when it is loaded. Debian 12's 0.3.21 does not know
/// current Intel server CPUs (OpenMathLib/OpenBLAS#4267, fixed in 0.3.25) and silently falls back to its SSE3
/// "Prescott" kernels: 17.6 instead of 127 GFLOP/s for a 1024³ sgemm on an AVX-512 Xeon (docs/performance.md). Its
/// OPENBLAS_CORETYPE variable selects a core, but it is read once, by the library's constructor. So xgrad does not
/// link OpenBLAS: on first use it sets OPENBLAS_CORETYPE from the CPU's features (core/cpu.h), dlopens the library
/// and restores the environment. Never overridden: a user's own OPENBLAS_CORETYPE (or OPENBLAS_L2_SIZE, which
/// OpenBLAS reads itself); a CPU below AVX2 (OpenBLAS's table knows those; only XGRAD_ISA=baseline forces Prescott);
/// and an OpenBLAS that something else in the process loaded first (its core is reported as it is).
Blas load_blas() {
  static const char* const kNames[] = {"libopenblas.so.0", "libblas.so.3"};
  Blas b;
  void* h = nullptr;
  for (const char* n : kNames)
    if ((h = ::dlopen(n, RTLD_NOW | RTLD_NOLOAD))) break;
  std::string how;
  if (h) {
    how = "loaded before xgrad, kernels not chosen by it";
  } else {
    const char* user = std::getenv("OPENBLAS_CORETYPE");
    const bool forced_lower = active_isa() != detected_isa();
    const bool choose = !(user && *user) && (active_isa() != Isa::Baseline || forced_lower);
    if (choose) ::setenv("OPENBLAS_CORETYPE", openblas_core(active_isa()), 1);
    for (const char* n : kNames)
      if ((h = ::dlopen(n, RTLD_NOW | RTLD_LOCAL))) break;
    if (choose) ::unsetenv("OPENBLAS_CORETYPE");
    how = user && *user   ? "OPENBLAS_CORETYPE from the environment"
          : forced_lower ? std::string("lowered by XGRAD_ISA=") + to_string(active_isa())
          : choose       ? std::string("chosen from CPU features: ") + to_string(active_isa())
                         : "OpenBLAS's own choice (CPU below AVX2)";
  }
  if (!h)
    throw std::runtime_error(std::string("xgrad: cannot load OpenBLAS (libopenblas.so.0): ") + ::dlerror() +
                             "; install it with: apt-get install libopenblas0-pthread");
  b.sgemm = reinterpret_cast<Sgemm>(::dlsym(h, "cblas_sgemm"));
  b.dgemm = reinterpret_cast<Dgemm>(::dlsym(h, "cblas_dgemm"));
  if (!b.sgemm || !b.dgemm)
    throw std::runtime_error("xgrad: the BLAS library found has no CBLAS interface (cblas_sgemm); install OpenBLAS");
  // One thread: parallelism is xgrad's own, over fixed blocks (bit-identical results at any thread count).
  if (auto set_threads = reinterpret_cast<void (*)(int)>(::dlsym(h, "openblas_set_num_threads"))) set_threads(1);
  const auto corename = reinterpret_cast<char* (*)()>(::dlsym(h, "openblas_get_corename"));
  b.description = corename ? std::string("OpenBLAS ") + corename() + ", " + how : "a BLAS other than OpenBLAS";
  return b;
}

const Blas& blas() {
  static const Blas b = load_blas();
  return b;
}

int tr(bool t) { return t ? kTrans : kNoTrans; }
int bi(std::size_t v) { return static_cast<int>(v); }

}  // namespace

void init_blas() { blas(); }

std::string kernel_description() { return std::string(to_string(active_isa())) + " (" + blas().description + ")"; }

template <>
void gemm<float>(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
                 std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
  if (m == 0 || n == 0) return;
  blas().sgemm(kRowMajor, tr(trans_a), tr(trans_b), bi(m), bi(n), bi(k), alpha, a, bi(lda), b, bi(ldb), beta, c, bi(ldc));
}

template <>
void gemm<double>(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, double alpha,
                  const double* a, std::size_t lda, const double* b, std::size_t ldb, double beta, double* c,
                  std::size_t ldc) {
  if (m == 0 || n == 0) return;
  blas().dgemm(kRowMajor, tr(trans_a), tr(trans_b), bi(m), bi(n), bi(k), alpha, a, bi(lda), b, bi(ldb), beta, c, bi(ldc));
}

template <class T>
void parallel_gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                   std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  if (m * n * k < kParallelGemmFlops) {
    gemm<T>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  init_blas();  // loaded by this thread, before the tasks
  // Fewer row blocks than tasks of kParallelGemmFlops each (up to kGemmMaxColumnSplit of them; a batch of 64 through a
  // fully connected layer is one row block): the columns of C are split too, into equal blocks of at least
  // kGemmMinColumns, so that more than one core gets work.
  const std::size_t row_blocks = (m + kGemmRowBlock - 1) / kGemmRowBlock;
  const std::size_t tasks = std::min(kGemmMaxColumnSplit, (m * n * k + kParallelGemmFlops - 1) / kParallelGemmFlops);
  const std::size_t col_blocks =
      std::clamp<std::size_t>((tasks + row_blocks - 1) / row_blocks, 1, std::max<std::size_t>(1, n / kGemmMinColumns));
  const std::size_t col_width = (n + col_blocks - 1) / col_blocks;
  parallel_for(0, row_blocks * col_blocks, 1, [&](std::size_t t0, std::size_t t1) {
    for (std::size_t t = t0; t < t1; ++t) {
      const std::size_t lo = (t / col_blocks) * kGemmRowBlock, hi = std::min(m, lo + kGemmRowBlock);
      const std::size_t c0 = (t % col_blocks) * col_width, c1 = std::min(n, c0 + col_width);
      if (c0 >= c1) continue;
      // Rows lo..hi of op(A): row offset in A as stored, or column offset when A is transposed; likewise columns
      // c0..c1 of op(B).
      const T* a_block = trans_a ? a + lo : a + lo * lda;
      const T* b_block = trans_b ? b + c0 * ldb : b + c0;
      gemm<T>(trans_a, trans_b, hi - lo, c1 - c0, k, alpha, a_block, lda, b_block, ldb, beta, c + lo * ldc + c0, ldc);
    }
  });
}

template void parallel_gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t,
                                   const float*, std::size_t, float, float*, std::size_t);
template void parallel_gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*,
                                    std::size_t, const double*, std::size_t, double, double*, std::size_t);

}  // namespace xg
