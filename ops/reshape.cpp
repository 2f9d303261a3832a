// Shape changes: the same elements in the same (row-major) order.
//
// reshape: y = x viewed with a new shape (one extent may be -1)   dx = g reshaped back to x's shape
// flatten: reshape merging dims start..end                        dx likewise
#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

template <class T>
class ReshapeOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads no value: shapes and saved state
  bool keeps_output() const override { return false; }
  GradList<T> backward(const Tensor<T>& g) override {
    Tensor<T> dx = g;
    dx.reshape(this->inputs()[0].shape());
    return {std::move(dx)};
  }
};

template <class T>
Variable<T> reshape_to(OpCall& call, const Variable<T>& x, const Shape& s) {
  Tensor<T> y = x.value();
  y.reshape(s);
  return call.record<ReshapeOp<T>>(std::move(y), {x});
}

}  // namespace

template <class T>
Variable<T> reshape(const Variable<T>& x, const std::vector<std::int64_t>& shape) {
  OpCall call("reshape");
  const std::size_t n = x.numel();
  std::size_t known = 1;
  int infer = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) throw call.error("only one dimension can be -1, got " + shape_str(shape));
      infer = static_cast<int>(i);
    } else if (shape[i] < 0) {
      throw call.error("invalid extent " + std::to_string(shape[i]) + " in " + shape_str(shape));
    } else {
      known = detail::checked_mul(call.name(), "the product of the extents", known, static_cast<std::size_t>(shape[i]));
    }
  }
  Shape s(shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) s[i] = shape[i] < 0 ? 0 : static_cast<std::size_t>(shape[i]);
  if (infer >= 0) {
    if (known == 0 || n % known != 0)
      throw call.error("shape " + shape_str(shape) + " is invalid for input of shape " +
                       shape_str(x.shape()) + " (" + std::to_string(n) + " elements)");
    s[static_cast<std::size_t>(infer)] = n / known;
  } else if (known != n) {
    throw call.error("shape " + shape_str(shape) + " is invalid for input of shape " + shape_str(x.shape()) +
                     " (" + std::to_string(n) + " elements)");
  }
  return reshape_to(call, x, s);
}

template <class T>
Variable<T> flatten(const Variable<T>& x, std::int64_t start_dim, std::int64_t end_dim) {
  OpCall call("flatten");
  const Shape in = x.shape();
  if (in.empty()) return reshape_to(call, x, Shape{1});
  const std::size_t a = detail::normalize_dim(call.name(), start_dim, in.size());
  const std::size_t b = detail::normalize_dim(call.name(), end_dim, in.size());
  if (a > b)
    throw call.error("start_dim " + std::to_string(start_dim) + " comes after end_dim " +
                     std::to_string(end_dim) + " for shape " + shape_str(in));
  Shape s(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(a));
  std::size_t merged = 1;
  for (std::size_t i = a; i <= b; ++i) merged *= in[i];
  s.push_back(merged);
  s.insert(s.end(), in.begin() + static_cast<std::ptrdiff_t>(b) + 1, in.end());
  return reshape_to(call, x, s);
}

#define XG_INSTANTIATE(T)                                                            \
  template Variable<T> reshape(const Variable<T>&, const std::vector<std::int64_t>&); \
  template Variable<T> flatten(const Variable<T>&, std::int64_t, std::int64_t);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
