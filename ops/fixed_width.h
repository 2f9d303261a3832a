#pragma once
/// \file fixed_width.h
/// Short row loops (the 24- and 8-wide maps of the MNIST networks) are fastest with the width known at compile time:
/// fixed trip counts become whole vector moves with no remainder loops. with_mnist_width(w, body) calls body with the
/// width as a std::integral_constant for those widths, and with integral_constant<0> otherwise; a kernel reads its
/// width as `kw ? kw : w` (a constant when kw is not 0). Used by conv2d's im2col/col2im and the 2×2 pool kernels.

#include <cstddef>
#include <type_traits>

namespace xg::ops::detail {

template <class F>
__attribute__((always_inline)) inline void with_mnist_width(std::size_t w, F&& body) {
  switch (w) {
    case 24: body(std::integral_constant<std::size_t, 24>{}); return;
    case 8: body(std::integral_constant<std::size_t, 8>{}); return;
    default: body(std::integral_constant<std::size_t, 0>{}); return;
  }
}

}  // namespace xg::ops::detail
