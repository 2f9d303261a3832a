// silu (swish): y = x·σ(x);  dy/dx = σ(x)·(1 + x·(1 − σ(x))).
#include <cmath>

#include "ops/pointwise.h"

namespace xg::ops {

template <class T>
Variable<T> silu(const Variable<T>& x) {
  OpCall call("silu");
  return detail::pointwise(call, x, [](T v) { return v / (T(1) + std::exp(-v)); },
                           [](T v) {
                             const T s = T(1) / (T(1) + std::exp(-v));
                             return s * (T(1) + v * (T(1) - s));
                           });
}

#define XG_INSTANTIATE(T) template Variable<T> silu(const Variable<T>&);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
