// Matrix products through BLAS (core/linalg.h), with transpose flags instead of explicit transposes.
//
// matmul: C = A B,  A [M,K], B [K,N] -> [M,N]           dA = G Bᵀ,  dB = Aᵀ G
// linear: Y = X Wᵀ + b, X [N,in], W [out,in], b [out]   dX = G W,   dW = Gᵀ X,  db = Σ_n G[n,:]
// Each partial is computed only when its input needs it. Large products are split into fixed row blocks (parallel_gemm),
// each one single-threaded BLAS call: the same bits whatever xgrad's thread count.
#include "core/linalg.h"
#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

template <class T>
class MatmulOp final : public Op<T> {
 public:
  bool keeps_output() const override { return false; }  // backward reads the inputs, not the output
  GradList<T> backward(const Tensor<T>& g) override {
    const Tensor<T>& a = this->inputs()[0].value();
    const Tensor<T>& b = this->inputs()[1].value();
    const std::size_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
    GradList<T> grads(2);
    if (this->needs_grad(0)) {
      Tensor<T> da = Tensor<T>::from_shape({m, k});
      parallel_gemm<T>(false, true, m, k, n, T(1), g.data(), n, b.data(), n, T(0), da.data(), k);
      grads[0] = std::move(da);
    }
    if (this->needs_grad(1)) {
      Tensor<T> db = Tensor<T>::from_shape({k, n});
      parallel_gemm<T>(true, false, k, n, m, T(1), a.data(), k, g.data(), n, T(0), db.data(), n);
      grads[1] = std::move(db);
    }
    return grads;
  }
};

template <class T>
class LinearOp final : public Op<T> {
 public:
  bool keeps_output() const override { return false; }  // backward reads the inputs, not the output
  GradList<T> backward(const Tensor<T>& g) override {
    const Tensor<T>& x = this->inputs()[0].value();
    const Tensor<T>& w = this->inputs()[1].value();
    const std::size_t n = x.shape()[0], in = x.shape()[1], out = w.shape()[0];
    GradList<T> grads(3);
    if (this->needs_grad(0)) {
      Tensor<T> dx = Tensor<T>::from_shape({n, in});
      parallel_gemm<T>(false, false, n, in, out, T(1), g.data(), out, w.data(), in, T(0), dx.data(), in);
      grads[0] = std::move(dx);
    }
    if (this->needs_grad(1)) {
      Tensor<T> dw = Tensor<T>::from_shape({out, in});
      parallel_gemm<T>(true, false, out, in, n, T(1), g.data(), out, x.data(), in, T(0), dw.data(), in);
      grads[1] = std::move(dw);
    }
    if (this->needs_grad(2)) {
      Tensor<T> db = zeros<T>({out});
      const T* pg = g.data();
      for (std::size_t r = 0; r < n; ++r)
        for (std::size_t j = 0; j < out; ++j) db.data()[j] += pg[r * out + j];
      grads[2] = std::move(db);
    }
    return grads;
  }
};

}  // namespace

template <class T>
Variable<T> matmul(const Variable<T>& a, const Variable<T>& b) {
  OpCall call("matmul");
  if (a.dim() != 2 || b.dim() != 2 || a.shape()[1] != b.shape()[0])
    throw call.error("shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()) +
                     " cannot be multiplied (expected [M,K] and [K,N])");
  const std::size_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
  Tensor<T> c = Tensor<T>::from_shape({m, n});
  if (k == 0)
    std::fill(c.begin(), c.end(), T(0));
  else
    parallel_gemm<T>(false, false, m, n, k, T(1), a.value().data(), k, b.value().data(), n, T(0), c.data(), n);
  return call.record<MatmulOp<T>>(std::move(c), {a, b});
}

template <class T>
Variable<T> linear(const Variable<T>& x, const Variable<T>& w, const Variable<T>& b) {
  OpCall call("linear");
  if (x.dim() != 2 || w.dim() != 2 || x.shape()[1] != w.shape()[1])
    throw call.error("input " + shape_str(x.shape()) + " and weight " + shape_str(w.shape()) +
                     " do not match (expected input [N,in] and weight [out,in])");
  const std::size_t n = x.shape()[0], in = x.shape()[1], out = w.shape()[0];
  if (b.defined() && (b.dim() != 1 || b.shape()[0] != out))
    throw call.error("bias " + shape_str(b.shape()) + " does not match weight " + shape_str(w.shape()) +
                     " (expected [" + std::to_string(out) + "])");
  Tensor<T> y = Tensor<T>::from_shape({n, out});
  T* py = y.data();
  if (b.defined()) {
    const T* pb = b.value().data();
    for (std::size_t r = 0; r < n; ++r) std::copy(pb, pb + out, py + r * out);
  } else {
    std::fill(py, py + n * out, T(0));
  }
  if (in > 0) parallel_gemm<T>(false, true, n, out, in, T(1), x.value().data(), in, w.value().data(), in, T(1), py, out);
  return call.record<LinearOp<T>>(std::move(y), {x, w, b});
}

#define XG_INSTANTIATE(T)                                                     \
  template Variable<T> matmul(const Variable<T>&, const Variable<T>&);        \
  template Variable<T> linear(const Variable<T>&, const Variable<T>&, const Variable<T>&);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
