#include "nn/layers.h"

#include <typeinfo>

#include <cmath>
#include <sstream>

#include "nn/init.h"

namespace xg::nn {

template <class T>
Linear<T>::Linear(std::size_t in_features, std::size_t out_features, bool with_bias, Rng& rng) {
  if (in_features == 0 || out_features == 0)
    throw ShapeError("Linear: in_features and out_features must be positive, got " + std::to_string(in_features) +
                     " and " + std::to_string(out_features));
  weight = Variable<T>(zeros<T>({out_features, in_features}), true);
  if (with_bias) bias = Variable<T>(zeros<T>({out_features}), true);
  init::pytorch_default_(weight, &bias, rng);
}
template <class T>
Variable<T> Linear<T>::forward(const Variable<T>& x) {
  return ops::linear(x, weight, bias);
}
template <class T>
std::vector<NamedParameter<T>> Linear<T>::own_parameters() const {
  std::vector<NamedParameter<T>> p{{"weight", weight}};
  if (bias.defined()) p.emplace_back("bias", bias);
  return p;
}
template <class T>
std::string Linear<T>::describe() const {
  return "Linear(" + std::to_string(weight.shape()[1]) + ", " + std::to_string(weight.shape()[0]) +
         (bias.defined() ? "" : ", bias=false") + ")";
}

template <class T>
Conv2d<T>::Conv2d(std::size_t in_channels, std::size_t out_channels, Size2 kernel, Size2 stride_, Size2 padding_,
                  Size2 dilation_, bool with_bias, Rng& rng)
    : stride(stride_), padding(padding_), dilation(dilation_) {
  if (in_channels == 0 || out_channels == 0 || kernel.h <= 0 || kernel.w <= 0)
    throw ShapeError("Conv2d: channels and kernel size must be positive, got in_channels=" +
                     std::to_string(in_channels) + ", out_channels=" + std::to_string(out_channels) + ", kernel=" + ops::to_string(kernel));
  weight = Variable<T>(
      zeros<T>({out_channels, in_channels, static_cast<std::size_t>(kernel.h), static_cast<std::size_t>(kernel.w)}),
      true);
  if (with_bias) bias = Variable<T>(zeros<T>({out_channels}), true);
  init::pytorch_default_(weight, &bias, rng);
}
template <class T>
Variable<T> Conv2d<T>::forward(const Variable<T>& x) {
  return ops::conv2d(x, weight, bias, stride, padding, dilation, activation);
}
template <class T>
std::vector<NamedParameter<T>> Conv2d<T>::own_parameters() const {
  std::vector<NamedParameter<T>> p{{"weight", weight}};
  if (bias.defined()) p.emplace_back("bias", bias);
  return p;
}
template <class T>
std::string Conv2d<T>::describe() const {
  const Shape s = weight.shape();
  return "Conv2d(" + std::to_string(s[1]) + ", " + std::to_string(s[0]) + ", kernel=" + std::to_string(s[2]) + "x" +
         std::to_string(s[3]) + ", stride=" + std::to_string(stride.h) + "x" + std::to_string(stride.w) +
         ", padding=" + std::to_string(padding.h) + "x" + std::to_string(padding.w) +
         ", dilation=" + std::to_string(dilation.h) + "x" + std::to_string(dilation.w) + (bias.defined() ? "" : ", bias=false") +
         (activation == ops::Activation::None ? std::string() : std::string(", activation=") + ops::to_string(activation)) + ")";
}

template <class T>
Variable<T> Pool2d<T>::forward(const Variable<T>& x) {
  switch (kind) {
    case PoolKind::Max: return ops::max_pool2d(x, kernel, stride, padding);
    case PoolKind::L2: return ops::l2_pool2d(x, kernel, stride, padding);
    case PoolKind::Avg: return ops::avg_pool2d(x, kernel, stride, padding);
    case PoolKind::Lp: return ops::lp_pool2d(x, p, kernel, stride, padding);
    case PoolKind::Stochastic: return ops::stochastic_pool2d(x, kernel, stride, padding, this->is_training(), *rng_);
  }
  return x;
}
template <class T>
Variable<T> conv2d_pool(Conv2d<T>& conv, Pool2d<T>& pool, const Variable<T>& x) {
  const Size2 s = pool.stride.value_or(pool.kernel);
  // The layers' own classes only: a subclass may override forward(), which the fused op would skip. Anomaly mode
  // checks every op's output, the convolution's included, so it runs the layers in turn.
  const bool plain = typeid(conv) == typeid(Conv2d<T>) && (typeid(pool) == typeid(Pool2d<T>) || typeid(pool) == typeid(MaxPool2d<T>));
  const bool fusable = plain && pool.kind == PoolKind::Max && s.h == pool.kernel.h && s.w == pool.kernel.w &&
                       pool.padding.h == 0 && pool.padding.w == 0 && !detail::layer_observer<T> && !is_anomaly_enabled();
  if (!fusable) return pool(conv(x));
  return ops::conv2d_max_pool2d(x, conv.weight, conv.bias, pool.kernel, conv.stride, conv.padding, conv.dilation,
                                conv.activation);
}
template <class T>
std::string Pool2d<T>::describe() const {
  std::ostringstream exponent;
  exponent << p;
  const std::string n = kind == PoolKind::Max ? "MaxPool2d(" : kind == PoolKind::L2 ? "L2Pool2d(" : kind == PoolKind::Avg ? "AvgPool2d("
                        : kind == PoolKind::Lp ? "LpPool2d(p=" + exponent.str() + ", " : "StochasticPool2d(";
  const Size2 s = stride.value_or(kernel);
  return n + "kernel=" + std::to_string(kernel.h) + "x" + std::to_string(kernel.w) +
         ", stride=" + std::to_string(s.h) + "x" + std::to_string(s.w) + ", padding=" + std::to_string(padding.h) + "x" +
         std::to_string(padding.w) + ")";
}

template <class T>
Variable<T> Activation<T>::forward(const Variable<T>& x) {
  return ops::activation(x, kind);
}
template <class T>
std::string Activation<T>::describe() const {
  switch (kind) {
    case ActivationKind::None: return "Identity";
    case ActivationKind::Relu: return "ReLU";
    case ActivationKind::Sigmoid: return "Sigmoid";
    case ActivationKind::Tanh: return "Tanh";
  }
  return "?";
}

template <class T>
Dropout<T>::Dropout(double p, Rng& rng) : p_(p), rng_(&rng) {
  if (!(p >= 0.0 && p <= 1.0))
    throw ShapeError("Dropout: probability has to be between 0 and 1, but got " + std::to_string(p));
}

template <class T>
BatchNorm<T>::BatchNorm(std::size_t c, std::size_t lo, std::size_t hi, double eps_, double momentum_, bool affine)
    : running_mean(zeros<T>({c})), running_var(full<T>({c}, T(1))), eps(eps_), momentum(momentum_), rank_lo_(lo), rank_hi_(hi) {
  if (c == 0) throw ShapeError("BatchNorm: num_features must be positive");
  if (!(eps_ > 0) || !(momentum_ >= 0 && momentum_ <= 1))
    throw ShapeError("BatchNorm: eps must be positive and momentum in [0, 1], got eps " + std::to_string(eps_) +
                     " and momentum " + std::to_string(momentum_));
  if (affine) {
    weight = Variable<T>(full<T>({c}, T(1)), true);
    bias = Variable<T>(zeros<T>({c}), true);
  }
}
template <class T>
Variable<T> BatchNorm<T>::forward(const Variable<T>& x) {
  if (x.dim() < rank_lo_ || x.dim() > rank_hi_)
    throw ShapeError(std::string(rank_lo_ == 4 ? "BatchNorm2d: expected input [N,C,H,W]" : "BatchNorm1d: expected input [N,C] or [N,C,L]") +
                     ", got " + shape_str(x.shape()));
  return ops::batch_norm(x, &running_mean, &running_var, weight, bias, this->is_training(), momentum, eps);
}
template <class T>
std::vector<NamedParameter<T>> BatchNorm<T>::own_parameters() const {
  if (!weight.defined()) return {};
  return {{"weight", weight}, {"bias", bias}};
}
template <class T>
std::string BatchNorm<T>::describe() const {
  return std::string(rank_lo_ == 4 ? "BatchNorm2d(" : "BatchNorm1d(") + std::to_string(running_mean.size()) +
         (weight.defined() ? "" : ", affine=false") + ")";
}

template <class T>
LayerNorm<T>::LayerNorm(Shape normalized_shape, double eps, bool affine) : shape_(std::move(normalized_shape)), eps_(eps) {
  if (shape_.empty()) throw ShapeError("LayerNorm: normalized_shape must not be empty");
  if (affine) {
    weight = Variable<T>(full<T>(shape_, T(1)), true);
    bias = Variable<T>(zeros<T>(shape_), true);
  }
}
template <class T>
std::vector<NamedParameter<T>> LayerNorm<T>::own_parameters() const {
  if (!weight.defined()) return {};
  return {{"weight", weight}, {"bias", bias}};
}

template <class T>
ConvTranspose2d<T>::ConvTranspose2d(std::size_t in, std::size_t out, Size2 kernel, Size2 stride_, Size2 padding_,
                                    Size2 output_padding_, Size2 dilation_, bool with_bias, Rng& rng)
    : stride(stride_), padding(padding_), output_padding(output_padding_), dilation(dilation_) {
  if (in == 0 || out == 0 || kernel.h <= 0 || kernel.w <= 0)
    throw ShapeError("ConvTranspose2d: channels and kernel must be positive, got " + std::to_string(in) + " -> " +
                     std::to_string(out) + " with kernel " + std::to_string(kernel.h) + "x" + std::to_string(kernel.w));
  const auto kh = static_cast<std::size_t>(kernel.h), kw = static_cast<std::size_t>(kernel.w);
  const double bound = 1.0 / std::sqrt(static_cast<double>(out * kh * kw));
  Tensor<T> w = xg::empty<T>({in, out, kh, kw});
  for (auto& v : w) v = static_cast<T>(rng.uniform(-bound, bound));
  weight = Variable<T>(std::move(w), true);
  if (with_bias) {
    Tensor<T> b = xg::empty<T>({out});
    for (auto& v : b) v = static_cast<T>(rng.uniform(-bound, bound));
    bias = Variable<T>(std::move(b), true);
  }
}
template <class T>
std::vector<NamedParameter<T>> ConvTranspose2d<T>::own_parameters() const {
  std::vector<NamedParameter<T>> p{{"weight", weight}};
  if (bias.defined()) p.emplace_back("bias", bias);
  return p;
}
template <class T>
std::string ConvTranspose2d<T>::describe() const {
  const Shape s = weight.shape();
  const auto two = [](Size2 v) { return std::to_string(v.h) + "x" + std::to_string(v.w); };
  return "ConvTranspose2d(" + std::to_string(s[0]) + ", " + std::to_string(s[1]) + ", kernel=" + std::to_string(s[2]) + "x" +
         std::to_string(s[3]) + ", stride=" + two(stride) + ", padding=" + two(padding) + ", output_padding=" +
         two(output_padding) + ", dilation=" + two(dilation) + (bias.defined() ? "" : ", bias=false") + ")";
}

template Variable<float> conv2d_pool(Conv2d<float>&, Pool2d<float>&, const Variable<float>&);
template Variable<double> conv2d_pool(Conv2d<double>&, Pool2d<double>&, const Variable<double>&);
template class ConvTranspose2d<float>;
template class ConvTranspose2d<double>;
template class BatchNorm<float>;
template class BatchNorm<double>;
template class LayerNorm<float>;
template class LayerNorm<double>;

#define XG_INSTANTIATE(T)       \
  template class Linear<T>;     \
  template class Conv2d<T>;     \
  template class Pool2d<T>;     \
  template class Activation<T>; \
  template class Dropout<T>;
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg::nn
