#pragma once
/// \file tensor.h
/// The tensor type and shape helpers. This is the single place that includes xtensor.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/errors.h"

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

namespace xg {

/// A dense, row-major, owning n-d array. Images are NCHW.
template <class T = float>
using Tensor = xt::xarray<T>;

/// A tensor shape: one extent per axis.
using Shape = std::vector<std::size_t>;
/// Class indices, one per row: a batch's targets (data::Dataset), the classification losses' labels (ops::Labels).
using Labels = std::vector<std::int64_t>;

/// `[2,3,4]` for error messages.
template <class S>
std::string shape_str(const S& s) {
  std::string out = "[";
  bool first = true;
  for (auto d : s) {
    if (!first) out += ",";
    out += std::to_string(d);
    first = false;
  }
  return out + "]";
}

/// Number of elements of a shape (1 for a scalar shape `{}`). Throws ShapeError when the product overflows.
inline std::size_t numel(const Shape& s) {
  std::size_t n = 1;
  for (auto d : s)
    if (__builtin_mul_overflow(n, d, &n)) {
      std::string m("numel: the shape ");  // appended: GCC 12 warns falsely (-Wrestrict) on an operator+ chain here
      m.append(shape_str(s)).append(" has more elements than fit in size_t");
      throw ShapeError(m);
    }
  return n;
}

/// The shape of a tensor as an `xg::Shape`.
template <class T>
Shape shape_of(const Tensor<T>& t) {
  return Shape(t.shape().begin(), t.shape().end());
}

namespace detail {
/// Throws ShapeError when a tensor of shape `s` and scalar type T has more elements, or bytes, than fit.
template <class T, class S>
void check_tensor_size(const S& s) {
  std::size_t n = 1;
  bool over = false;
  for (auto d : s) over = over || __builtin_mul_overflow(n, static_cast<std::size_t>(d), &n);
  if (over || n > static_cast<std::size_t>(PTRDIFF_MAX) / sizeof(T)) {
    std::string m("the shape ");  // appended: GCC 12 warns falsely (-Wrestrict) on an operator+ chain here
    m.append(shape_str(s)).append(" has more elements than fit in memory");
    throw ShapeError(m);
  }
}
}  // namespace detail

/// An uninitialised tensor of the given shape. A shape whose element count, or size in bytes, does not fit is a
/// ShapeError, never a wrapped small allocation (zeros<float>({2^62}) had asked the allocator for 2^64 bytes). Every
/// tensor xgrad makes goes through here.
template <class T>
Tensor<T> empty(const Shape& s) {
  detail::check_tensor_size<T>(s);
  return Tensor<T>::from_shape(s);
}
/// The same for any shape container (a tensor's own `shape()`), without converting it.
template <class T, class S>
Tensor<T> empty(const S& s) {
  detail::check_tensor_size<T>(s);
  return Tensor<T>::from_shape(s);
}

/// A tensor of the given shape filled with `v`.
template <class T>
Tensor<T> full(const Shape& s, T v) {
  Tensor<T> t = empty<T>(s);
  std::fill(t.begin(), t.end(), v);
  return t;
}

/// A zero tensor of the given shape.
template <class T>
Tensor<T> zeros(const Shape& s) {
  return full<T>(s, T(0));
}

}  // namespace xg
