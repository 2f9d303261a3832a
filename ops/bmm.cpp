// bmm: batched matrix product, y[b] = a[b] · c[b] for a [B,M,K] and c [B,K,N] → y [B,M,N].
// Backward: da[b] = g[b] · c[b]ᵀ, dc[b] = a[b]ᵀ · g[b] (each only when needed). One single-threaded GEMM per batch
// entry, the entries in parallel over fixed chunks (bit-identical at any thread count).
#include "core/linalg.h"
#include "core/parallel.h"
#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

template <class T>
class BmmOp final : public Op<T> {
 public:
  bool keeps_output() const override { return false; }  // backward reads the inputs, not the output
  BmmOp(std::size_t b, std::size_t m, std::size_t k, std::size_t n) : b_(b), m_(m), k_(k), n_(n) {}
  GradList<T> backward(const Tensor<T>& g) override {
    const T* a = this->inputs()[0].value().data();
    const T* c = this->inputs()[1].value().data();
    GradList<T> grads(2);
    if (this->needs_grad(0)) {
      Tensor<T> da = xg::empty<T>({b_, m_, k_});
      parallel_for(0, b_, 1, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i)
          gemm<T>(false, true, m_, k_, n_, T(1), g.data() + i * m_ * n_, n_, c + i * k_ * n_, n_, T(0), da.data() + i * m_ * k_, k_);
      });
      grads[0] = std::move(da);
    }
    if (this->needs_grad(1)) {
      Tensor<T> dc = xg::empty<T>({b_, k_, n_});
      parallel_for(0, b_, 1, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i)
          gemm<T>(true, false, k_, n_, m_, T(1), a + i * m_ * k_, k_, g.data() + i * m_ * n_, n_, T(0), dc.data() + i * k_ * n_, n_);
      });
      grads[1] = std::move(dc);
    }
    return grads;
  }

 private:
  std::size_t b_, m_, k_, n_;
};

}  // namespace

template <class T>
Variable<T> bmm(const Variable<T>& a, const Variable<T>& c) {
  OpCall call("bmm");
  const Shape sa = a.shape(), sc = c.shape();
  if (sa.size() != 3 || sc.size() != 3 || sa[0] != sc[0] || sa[2] != sc[1])
    throw call.error("shapes " + shape_str(sa) + " and " + shape_str(sc) + " cannot be multiplied (expected [B,M,K] and [B,K,N])");
  const std::size_t b = sa[0], m = sa[1], k = sa[2], n = sc[2];
  Tensor<T> y = zeros<T>({b, m, n});
  const T* pa = a.value().data();
  const T* pc = c.value().data();
  if (m && n && k)
    parallel_for(0, b, 1, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t i = lo; i < hi; ++i)
        gemm<T>(false, false, m, n, k, T(1), pa + i * m * k, k, pc + i * k * n, n, T(0), y.data() + i * m * n, n);
    });
  return call.record<BmmOp<T>>(std::move(y), {a, c}, b, m, k, n);
}

#define XG_INSTANTIATE(T) template Variable<T> bmm(const Variable<T>&, const Variable<T>&);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
