// cat and stack.
//
// Forward:  cat: y = [x_0, x_1, …] joined along dim (every other extent equal); stack: the inputs (all the same
//           shape) joined along a new dim (cat of each reshaped with extent 1 at dim).
// Backward: dx_k = g[…, o_k : o_k + n_k, …], the slice each input filled (only for inputs that need a gradient).
// Shapes:   any rank ≥ 1 (stack: any rank, dim in [−rank−1, rank]). Contiguous block copies: outer · n_k · inner.
#include <cstring>

#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {


template <class T>
class CatOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads no value: shapes and saved state
  bool keeps_output() const override { return false; }
  CatOp(std::size_t dim, std::vector<std::size_t> extents) : dim_(dim), n_(std::move(extents)) {}
  GradList<T> backward(const Tensor<T>& g) override {
    const Shape gs = shape_of(g);
    const detail::DimBlocks b = detail::dim_blocks(gs, dim_);
    const std::size_t total = gs[dim_];
    GradList<T> grads(n_.size());
    std::size_t offset = 0;
    for (std::size_t k = 0; k < n_.size(); ++k) {
      if (this->needs_grad(k)) {
        Tensor<T> dx = xg::empty<T>(this->inputs()[k].shape());
        const std::size_t run = n_[k] * b.inner;
        for (std::size_t o = 0; o < b.outer; ++o)
          if (run) std::memcpy(dx.data() + o * run, g.data() + (o * total + offset) * b.inner, run * sizeof(T));
        grads[k] = std::move(dx);
      }
      offset += n_[k];
    }
    return grads;
  }

 private:
  std::size_t dim_;
  std::vector<std::size_t> n_;
};

}  // namespace

template <class T>
Variable<T> cat(const std::vector<Variable<T>>& xs, std::int64_t dim) {
  OpCall call("cat");
  if (xs.empty()) throw call.error("expected a non-empty list of tensors");
  const Shape first = xs[0].shape();
  const std::size_t d = detail::normalize_dim(call.name(), dim, first.size());
  std::vector<std::size_t> extents;
  Shape ys = first;
  ys[d] = 0;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    const Shape s = xs[k].shape();
    bool ok = s.size() == first.size();
    for (std::size_t i = 0; ok && i < s.size(); ++i) ok = i == d || s[i] == first[i];
    if (!ok)
      throw call.error("tensor " + std::to_string(k) + " has shape " + shape_str(s) + ", which does not match " +
                       shape_str(first) + " except in dim " + std::to_string(dim));
    extents.push_back(s[d]);
    ys[d] = detail::checked_add(call.name(), "the sum of the extents", ys[d], s[d]);  // 2 × 2^63 had wrapped to 0
  }
  const detail::DimBlocks b = detail::dim_blocks(ys, d);
  Tensor<T> y = xg::empty<T>(ys);
  std::size_t offset = 0;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    const std::size_t run = extents[k] * b.inner;
    for (std::size_t o = 0; o < b.outer; ++o)
      if (run) std::memcpy(y.data() + (o * ys[d] + offset) * b.inner, xs[k].value().data() + o * run, run * sizeof(T));
    offset += extents[k];
  }
  return call.record<CatOp<T>>(std::move(y), xs, d, extents);
}

template <class T>
Variable<T> stack(const std::vector<Variable<T>>& xs, std::int64_t dim) {
  // Not a node of its own (a reshape of each tensor, then cat): its errors name it.
  const auto error = [](const std::string& what) { return ShapeError("stack: " + what); };
  if (xs.empty()) throw error("expected a non-empty list of tensors");
  const Shape s = xs[0].shape();
  const auto r = static_cast<std::int64_t>(s.size());
  if (dim < -r - 1 || dim > r)
    throw error("dim " + std::to_string(dim) + " is out of range for tensors of rank " + std::to_string(r));
  const std::size_t d = static_cast<std::size_t>(dim < 0 ? dim + r + 1 : dim);
  std::vector<Variable<T>> parts;
  Shape with = s;
  with.insert(with.begin() + static_cast<std::ptrdiff_t>(d), 1);
  std::vector<std::int64_t> shape(with.begin(), with.end());
  for (std::size_t k = 0; k < xs.size(); ++k) {
    if (xs[k].shape() != s)
      throw error("tensor " + std::to_string(k) + " has shape " + shape_str(xs[k].shape()) +
                       ", expected every tensor to have shape " + shape_str(s));
    parts.push_back(reshape(xs[k], shape));
  }
  return cat(parts, static_cast<std::int64_t>(d));
}

#define XG_INSTANTIATE(T)                                                     \
  template Variable<T> cat(const std::vector<Variable<T>>&, std::int64_t); \
  template Variable<T> stack(const std::vector<Variable<T>>&, std::int64_t);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
