#pragma once
/// \file width_table.h
/// The table of row widths that the 2-D kernels (conv2d's im2col/col2im, the 2×2 pools) are compiled for as constants
/// (ops/fixed_width.h dispatches on it; every other width runs the same code with the width read at run time).
///
/// Why these: the networks in models/ take 28×28 digits through 5×5 convolutions and 2×2 pools, so their maps are
/// 24 wide (first convolution's output, first pool's input) and 8 wide (second convolution's output, second pool's
/// input). Measured (docs/performance.md): with the width a constant (and the argmax store hoisted) the 2×2
/// max-pool forward on 64×20×24×24 went from 0.59 to 0.125 ms. Each width added here is one more instantiation of each kernel (code size), so add a
/// width when a model of yours spends its time on maps of that width, and measure.

#include <cstddef>
#include <utility>

namespace xg::ops::detail {

using SpecialisedWidths = std::index_sequence<24, 8>;

}  // namespace xg::ops::detail
