// narrow and index_select.
//
// narrow:       y = x[…, start : start + length, …] along dim;   dx = g in that slice, 0 elsewhere.
// index_select: y[…, j, …] = x[…, index[j], …] along dim;        dx[…, index[j], …] += g[…, j, …] (repeats add up).
// Shapes:       any rank ≥ 1, dim may be negative; ShapeError for a slice or an index outside the dim.
#include <cstring>

#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

template <class T>
class IndexSelectOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads no value: shapes and saved state
  bool keeps_output() const override { return false; }
  IndexSelectOp(std::size_t outer, std::size_t n, std::size_t inner, std::vector<std::size_t> index)
      : outer_(outer), n_(n), inner_(inner), index_(std::move(index)) {}
  GradList<T> backward(const Tensor<T>& g) override {
    Tensor<T> dx = zeros<T>(this->inputs()[0].shape());
    const std::size_t m = index_.size();
    for (std::size_t o = 0; o < outer_; ++o)
      for (std::size_t j = 0; j < m; ++j) {
        const T* src = g.data() + (o * m + j) * inner_;
        T* dst = dx.data() + (o * n_ + index_[j]) * inner_;
        for (std::size_t i = 0; i < inner_; ++i) dst[i] += src[i];
      }
    return {std::move(dx)};
  }

 private:
  std::size_t outer_, n_, inner_;
  std::vector<std::size_t> index_;
};

/// x along dim at the rows `index` (validated by the callers).
template <class T>
Variable<T> gather_rows(OpCall& call, const Variable<T>& x, std::size_t d, std::vector<std::size_t> index) {
  const Shape xs = x.shape();
  const detail::DimBlocks blk = detail::dim_blocks(xs, d);
  const std::size_t outer = blk.outer, inner = blk.inner;
  Shape ys = xs;
  ys[d] = index.size();
  Tensor<T> y = xg::empty<T>(ys);
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t j = 0; j < index.size(); ++j)
      if (inner)
        std::memcpy(y.data() + (o * index.size() + j) * inner, x.value().data() + (o * xs[d] + index[j]) * inner,
                    inner * sizeof(T));
  return call.record<IndexSelectOp<T>>(std::move(y), {x}, outer, xs[d], inner, std::move(index));
}

}  // namespace

template <class T>
Variable<T> narrow(const Variable<T>& x, std::int64_t dim, std::size_t start, std::size_t length) {
  OpCall call("narrow");
  const std::size_t d = detail::normalize_dim(call.name(), dim, x.dim());
  const std::size_t n = x.shape()[d];
  if (start > n || length > n - start)
    throw call.error("start " + std::to_string(start) + " + length " + std::to_string(length) +
                     " exceeds the extent " + std::to_string(n) + " of dim " + std::to_string(dim) + " of shape " +
                     shape_str(x.shape()));
  if (length > std::vector<std::size_t>().max_size())  // only a tensor with no elements has such an extent
    throw call.error("length " + std::to_string(length) + " is more rows than an index can hold");
  std::vector<std::size_t> index(length);
  for (std::size_t j = 0; j < length; ++j) index[j] = start + j;
  return gather_rows(call, x, d, std::move(index));
}

template <class T>
Variable<T> index_select(const Variable<T>& x, std::int64_t dim, const std::vector<std::int64_t>& index) {
  OpCall call("index_select");
  const std::size_t d = detail::normalize_dim(call.name(), dim, x.dim());
  const auto n = static_cast<std::int64_t>(x.shape()[d]);
  std::vector<std::size_t> rows;
  for (std::size_t j = 0; j < index.size(); ++j) {
    if (index[j] < 0 || index[j] >= n)
      throw call.error("index " + std::to_string(index[j]) + " at position " + std::to_string(j) +
                       " is out of range for dim " + std::to_string(dim) + " with extent " + std::to_string(n));
    rows.push_back(static_cast<std::size_t>(index[j]));
  }
  return gather_rows(call, x, d, std::move(rows));
}

#define XG_INSTANTIATE(T)                                                                        \
  template Variable<T> narrow(const Variable<T>&, std::int64_t, std::size_t, std::size_t);        \
  template Variable<T> index_select(const Variable<T>&, std::int64_t, const std::vector<std::int64_t>&);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
