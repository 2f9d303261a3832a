#pragma once
/// \file fixed_width.h
/// Short row loops are fastest with the width known at compile time: fixed trip counts become whole vector moves with
/// no remainder loops. with_fixed_width(w, body) calls body with the width as a std::integral_constant when w is one
/// of the widths in the table (ops/width_table.h), and with integral_constant<0> otherwise; a kernel reads its width
/// as `kw ? kw : w` (a constant when kw is not 0). Used by conv2d's im2col/col2im and the 2×2 pool kernels.

#include <cstddef>
#include <type_traits>
#include <utility>

#include "ops/width_table.h"

namespace xg::ops::detail {

template <std::size_t... Ws, class F>
__attribute__((always_inline)) inline void with_fixed_width_of(std::index_sequence<Ws...>, std::size_t w, F&& body) {
  const bool fixed = ((w == Ws ? (body(std::integral_constant<std::size_t, Ws>{}), true) : false) || ...);
  if (!fixed) body(std::integral_constant<std::size_t, 0>{});
}

/// body(integral_constant<w>) for a width of the table, body(integral_constant<0>) for any other.
template <class F>
__attribute__((always_inline)) inline void with_fixed_width(std::size_t w, F&& body) {
  with_fixed_width_of(SpecialisedWidths{}, w, std::forward<F>(body));
}

}  // namespace xg::ops::detail
