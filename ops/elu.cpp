// elu: y = x for x > 0, α·(eˣ − 1) otherwise;  dy/dx = 1 for x > 0, y + α otherwise. α > 0 (PyTorch's default 1).
#include <cmath>

#include "ops/pointwise.h"

namespace xg::ops {

template <class T>
Variable<T> elu(const Variable<T>& x, T alpha) {
  OpCall call("elu");
  if (!(alpha > T(0) && std::isfinite(alpha))) throw call.error("alpha must be positive and finite, got " + std::to_string(alpha));
  return detail::pointwise(call, x, [alpha](T v) { return v > T(0) ? v : alpha * std::expm1(v); },
                           [alpha](T v, T y) { return v > T(0) ? T(1) : y + alpha; });
}

#define XG_INSTANTIATE(T) template Variable<T> elu(const Variable<T>&, T);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
