// max, min and argmax along a dim.
//
// Forward:  values[…, …] = max (min) over x[…, k, …]; indices = the first k reaching it (NaN wins, as in PyTorch).
// Backward: dx[…, indices, …] = g (the whole gradient to the chosen element, like max_pool2d).
// argmax:   the indices alone, as a Tensor<std::int64_t>; no gradient.
// Shapes:   x of any rank ≥ 1, dim may be negative; keepdim keeps the reduced dim with extent 1.
#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

template <class T>
class MaxDimOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads no value: shapes and saved state
  bool keeps_output() const override { return false; }
  MaxDimOp(std::size_t outer, std::size_t n, std::size_t inner, std::vector<std::int64_t> idx)
      : outer_(outer), n_(n), inner_(inner), idx_(std::move(idx)) {}
  GradList<T> backward(const Tensor<T>& g) override {
    Tensor<T> dx = zeros<T>(this->inputs()[0].shape());
    for (std::size_t o = 0; o < outer_; ++o)
      for (std::size_t i = 0; i < inner_; ++i) {
        const std::size_t r = o * inner_ + i;
        dx.data()[(o * n_ + static_cast<std::size_t>(idx_[r])) * inner_ + i] = g.data()[r];
      }
    return {std::move(dx)};
  }
  void release() override { idx_ = {}; }

 private:
  std::size_t outer_, n_, inner_;
  std::vector<std::int64_t> idx_;
};

/// The reduction of x along dim: values, indices and the output shape.
template <class T>
DimResult<T> reduce_dim(const char* op, const Variable<T>& x, std::int64_t dim, bool keepdim, bool is_max) {
  OpCall call(op);
  const Shape xs = x.shape();
  const std::size_t d = detail::normalize_dim(op, dim, xs.size());
  if (xs[d] == 0) throw call.error("dim " + std::to_string(dim) + " of shape " + shape_str(xs) + " is empty");
  const detail::DimBlocks blk = detail::dim_blocks(xs, d);
  const std::size_t outer = blk.outer, inner = blk.inner;
  const std::size_t n = xs[d];
  Shape ys = xs;
  if (keepdim) ys[d] = 1;
  else ys.erase(ys.begin() + static_cast<std::ptrdiff_t>(d));
  Tensor<T> v = xg::empty<T>(ys);
  Tensor<std::int64_t> idx = xg::empty<std::int64_t>(ys);
  std::vector<std::int64_t> saved(outer * inner);
  const T* px = x.value().data();
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t i = 0; i < inner; ++i) {
      std::size_t best = 0;
      T bv = px[o * n * inner + i];
      for (std::size_t k = 1; k < n && bv == bv; ++k) {
        const T c = px[(o * n + k) * inner + i];
        if ((is_max ? c > bv : c < bv) || c != c) {
          bv = c;
          best = k;
        }
      }
      v.data()[o * inner + i] = bv;
      idx.data()[o * inner + i] = static_cast<std::int64_t>(best);
      saved[o * inner + i] = static_cast<std::int64_t>(best);
    }
  DimResult<T> r{call.record<MaxDimOp<T>>(std::move(v), {x}, outer, n, inner, std::move(saved)), std::move(idx)};
  return r;
}

}  // namespace

template <class T>
DimResult<T> max(const Variable<T>& x, std::int64_t dim, bool keepdim) {
  return reduce_dim("max", x, dim, keepdim, true);
}
template <class T>
DimResult<T> min(const Variable<T>& x, std::int64_t dim, bool keepdim) {
  return reduce_dim("min", x, dim, keepdim, false);
}
template <class T>
Tensor<std::int64_t> argmax(const Variable<T>& x, std::int64_t dim, bool keepdim) {
  NoGradGuard no_grad;
  return reduce_dim("argmax", x, dim, keepdim, true).indices;
}

#define XG_INSTANTIATE(T)                                                          \
  template DimResult<T> max(const Variable<T>&, std::int64_t, bool);              \
  template DimResult<T> min(const Variable<T>&, std::int64_t, bool);              \
  template Tensor<std::int64_t> argmax(const Variable<T>&, std::int64_t, bool);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
