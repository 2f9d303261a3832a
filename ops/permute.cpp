// permute and transpose.
//
// Forward:  y = x with its dims reordered: y.shape[i] = x.shape[dims[i]], y[j_0, …] = x[i_0, …] with i_{dims[k]} = j_k.
//           transpose(x, a, b) is permute with dims a and b swapped.
// Backward: dx = permute(g, inverse of dims).
// Shapes:   any rank; dims must be a permutation of 0 … rank−1 (negative dims count from the end). The copy walks the
//           output in order with the input strides, in parallel over fixed chunks of output elements.
#include <numeric>

#include "core/parallel.h"
#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

/// y = x permuted by `dims` (validated).
template <class T>
Tensor<T> permuted(const Tensor<T>& x, const std::vector<std::size_t>& dims) {
  const Shape xs = shape_of(x);
  const std::size_t r = xs.size();
  std::vector<std::size_t> xstride(r, 1);
  for (std::size_t i = r; i-- > 1;) xstride[i - 1] = xstride[i] * xs[i];
  Shape ys(r);
  std::vector<std::size_t> stride(r);  // input stride of each output dim
  for (std::size_t i = 0; i < r; ++i) {
    ys[i] = xs[dims[i]];
    stride[i] = xstride[dims[i]];
  }
  Tensor<T> y = xg::empty<T>(ys);
  const T* px = x.data();
  T* py = y.data();
  parallel_for(0, y.size(), detail::kElementwiseGrain, [&](std::size_t lo, std::size_t hi) {
    std::vector<std::size_t> idx(r, 0);
    std::size_t rest = lo, src = 0;
    for (std::size_t i = r; i-- > 0;) {  // the multi-index of element lo
      idx[i] = ys[i] ? rest % ys[i] : 0;
      rest = ys[i] ? rest / ys[i] : 0;
      src += idx[i] * stride[i];
    }
    for (std::size_t o = lo; o < hi; ++o) {
      py[o] = px[src];
      for (std::size_t i = r; i-- > 0;) {  // the next multi-index, odometer style
        src += stride[i];
        if (++idx[i] < ys[i]) break;
        src -= stride[i] * ys[i];
        idx[i] = 0;
      }
    }
  });
  return y;
}

template <class T>
class PermuteOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads no value: shapes and saved state
  bool keeps_output() const override { return false; }
  explicit PermuteOp(std::vector<std::size_t> dims) : dims_(std::move(dims)) {}
  GradList<T> backward(const Tensor<T>& g) override {
    std::vector<std::size_t> inverse(dims_.size());
    for (std::size_t i = 0; i < dims_.size(); ++i) inverse[dims_[i]] = i;
    return {permuted(g, inverse)};
  }

 private:
  std::vector<std::size_t> dims_;
};

}  // namespace

template <class T>
Variable<T> permute(const Variable<T>& x, const std::vector<std::int64_t>& dims) {
  OpCall call("permute");
  const std::size_t r = x.dim();
  std::vector<std::size_t> d;
  std::vector<bool> seen(r, false);
  std::string list;
  for (auto v : dims) list += (list.empty() ? "" : ", ") + std::to_string(v);
  if (dims.size() != r)
    throw call.error("dims [" + list + "] do not match the rank " + std::to_string(r) + " of shape " + shape_str(x.shape()));
  for (auto v : dims) {
    const std::size_t k = detail::normalize_dim(call.name(), v, r);
    if (seen[k]) throw call.error("dims [" + list + "] repeat dim " + std::to_string(k));
    seen[k] = true;
    d.push_back(k);
  }
  return call.record<PermuteOp<T>>(permuted(x.value(), d), {x}, d);
}

template <class T>
Variable<T> transpose(const Variable<T>& x, std::int64_t dim0, std::int64_t dim1) {
  const std::size_t r = x.dim();
  const std::size_t a = detail::normalize_dim("transpose", dim0, r), b = detail::normalize_dim("transpose", dim1, r);
  std::vector<std::int64_t> dims(r);
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[a], dims[b]);
  return permute(x, dims);
}

#define XG_INSTANTIATE(T)                                                         \
  template Variable<T> permute(const Variable<T>&, const std::vector<std::int64_t>&); \
  template Variable<T> transpose(const Variable<T>&, std::int64_t, std::int64_t);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
