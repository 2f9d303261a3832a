// Reductions.
//
// Forward:  sum(x) = Σ_i x_i (shape []) · sum(x, d)[o,i] = Σ_k x[o,k,i] · mean = sum / count
// Backward: dx = g broadcast back over the reduced elements (· 1/count for mean)
// Shapes:   x [..] -> [] (all) or x with axis d removed (or kept as 1 with keepdim)
// Sums run serially in index order (fixed-order reduction: the same bits at any thread count).
#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

template <class T>
class ReduceOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads no value: shapes and saved state
  bool keeps_output() const override { return false; }
  ReduceOp(bool all, std::size_t dim, T scale, bool mean) : all_(all), dim_(dim), scale_(scale), mean_(mean) {}
  GradList<T> backward(const Tensor<T>& g) override {
    const Shape s = this->inputs()[0].shape();
    Tensor<T> dx = empty<T>(s);
    T* pd = dx.data();
    const T* pg = g.data();
    if (all_) {
      const T v = pg[0] * scale_;
      std::fill(pd, pd + dx.size(), v);
      return {std::move(dx)};
    }
    const detail::AxisSplit a = detail::split_axis(s, dim_);
    for (std::size_t o = 0; o < a.outer; ++o)
      for (std::size_t k = 0; k < a.n; ++k)
        for (std::size_t i = 0; i < a.inner; ++i) pd[(o * a.n + k) * a.inner + i] = pg[o * a.inner + i] * scale_;
    return {std::move(dx)};
  }

 private:
  bool all_;
  std::size_t dim_;
  T scale_;
  bool mean_;
};

template <class T>
Variable<T> reduce_all(const Variable<T>& x, bool mean) {
  OpCall call(mean ? "mean" : "sum");
  if (mean && x.numel() == 0) throw call.error("the input is empty (shape " + shape_str(x.shape()) + ")");
  const Tensor<T>& v = x.value();
  const T* p = v.data();
  T acc = detail::sum_contiguous(p, v.size());
  const T scale = mean ? T(1) / static_cast<T>(v.size()) : T(1);
  if (mean) acc *= scale;
  Tensor<T> out = full<T>({}, acc);
  return call.record<ReduceOp<T>>(std::move(out), {x}, true, std::size_t(0), scale, mean);
}

template <class T>
Variable<T> reduce_dim(const Variable<T>& x, std::int64_t dim, bool keepdim, bool mean) {
  OpCall call(mean ? "mean" : "sum");
  const Shape s = x.shape();
  const std::size_t d = detail::normalize_dim(call.name(), dim, s.size());
  const detail::AxisSplit a = detail::split_axis(s, d);
  // A mean over an empty dim is undefined (the rule for empty reductions: docs/architecture.md); a sum is 0.
  if (mean && a.n == 0)
    throw call.error("dim " + std::to_string(dim) + " of the input of shape " + shape_str(s) +
                     " is empty, so its mean is undefined (sum gives 0)");
  Shape os = s;
  if (keepdim)
    os[d] = 1;
  else
    os.erase(os.begin() + static_cast<std::ptrdiff_t>(d));
  Tensor<T> out = zeros<T>(os);
  const T* px = x.value().data();
  T* po = out.data();
  const T scale = mean ? T(1) / static_cast<T>(a.n) : T(1);
  for (std::size_t o = 0; o < a.outer; ++o)
    for (std::size_t k = 0; k < a.n; ++k)
      for (std::size_t i = 0; i < a.inner; ++i) po[o * a.inner + i] += px[(o * a.n + k) * a.inner + i];
  if (mean)
    for (auto& v : out) v *= scale;
  return call.record<ReduceOp<T>>(std::move(out), {x}, false, d, scale, mean);
}

}  // namespace

template <class T> Variable<T> sum(const Variable<T>& x) { return reduce_all(x, false); }
template <class T> Variable<T> mean(const Variable<T>& x) { return reduce_all(x, true); }
template <class T> Variable<T> sum(const Variable<T>& x, std::int64_t dim, bool keepdim) {
  return reduce_dim(x, dim, keepdim, false);
}
template <class T> Variable<T> mean(const Variable<T>& x, std::int64_t dim, bool keepdim) {
  return reduce_dim(x, dim, keepdim, true);
}

#define XG_INSTANTIATE(T)                                              \
  template Variable<T> sum(const Variable<T>&);                       \
  template Variable<T> mean(const Variable<T>&);                      \
  template Variable<T> sum(const Variable<T>&, std::int64_t, bool);   \
  template Variable<T> mean(const Variable<T>&, std::int64_t, bool);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
