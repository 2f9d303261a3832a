// leaky_relu: y = x for x > 0, slope·x otherwise;  dy/dx = 1 for x > 0, slope otherwise (PyTorch's rule at 0).
// Same shape in and out; any finite slope (PyTorch's default 0.01).
#include "ops/pointwise.h"

namespace xg::ops {

template <class T>
Variable<T> leaky_relu(const Variable<T>& x, T slope) {
  OpCall call("leaky_relu");
  if (!std::isfinite(slope)) throw call.error("negative_slope must be finite, got " + std::to_string(slope));
  return detail::pointwise(call, x, [slope](T v) { return v > T(0) ? v : slope * v; },
                           [slope](T v) { return v > T(0) ? T(1) : slope; });
}

#define XG_INSTANTIATE(T) template Variable<T> leaky_relu(const Variable<T>&, T);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
