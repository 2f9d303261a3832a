#pragma once
/// \file summary.h
/// `nn::summary(model, input_shape)`: a table of the model's layers with each one's output shape and parameter
/// count, found by running one forward pass on zeros (batch 1, no graph recorded, eval mode; the mode is restored).
///
///     xgrad summary: LeNet5 on input [1,1,28,28]
///     layer     type                                             output shape   parameters
///     conv1     Conv2d(1, 6, kernel=5x5, …)                      [1,6,28,28]           156
///     …
///     total: 61706 parameters (61706 trainable) in 10 layers; output [1,10]
///
/// A row is every call of a leaf layer (one without children) through `Layer::operator()`, in call order, named by
/// its path in the model ("features.0"); ops called directly in a forward (ops::flatten, ops::dropout) have no row.

#include <string>

#include "core/tensor.h"
#include "nn/module.h"

namespace xg::nn {

/// The summary table as text (see the file comment). `input_shape` excludes the batch dimension ({1,28,28}).
/// Errors of the forward pass (a wrong input shape) propagate with the layer's own message.
template <class T>
std::string summary(Layer<T>& model, const Shape& input_shape);

}  // namespace xg::nn
