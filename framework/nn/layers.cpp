#include "nn/layers.h"

#include <cmath>

#include "nn/init.h"

namespace xg::nn {

template <class T>
Linear<T>::Linear(const LinearOptions& o, Rng& rng) {
  if (o.in == 0 || o.out == 0)
    throw ShapeError("Linear: in_features and out_features must be positive, got " + std::to_string(o.in) + " and " +
                     std::to_string(o.out));
  this->set_type("Linear", {{"in", o.in}, {"out", o.out}, {"bias", o.bias}});
  weight = Variable<T>(zeros<T>({o.out, o.in}), true);
  this->register_parameter("weight", weight);
  if (o.bias) bias = Variable<T>(zeros<T>({o.out}), true);
  this->register_parameter("bias", bias);
  init::pytorch_default_(weight, &bias, rng);
}

template <class T>
Conv2d<T>::Conv2d(const Conv2dOptions& o, Rng& rng) : options_(o) {
  if (o.in == 0 || o.out == 0 || o.kernel.h <= 0 || o.kernel.w <= 0)
    throw ShapeError("Conv2d: channels and kernel size must be positive, got in_channels=" + std::to_string(o.in) +
                     ", out_channels=" + std::to_string(o.out) + ", kernel=" + ops::to_string(o.kernel));
  this->set_type("Conv2d", {{"in", o.in}, {"out", o.out}, {"kernel", o.kernel}, {"stride", o.stride},
                            {"padding", o.padding}, {"dilation", o.dilation}, {"bias", o.bias},
                            {"activation", ops::to_string(o.activation)}});
  weight = Variable<T>(zeros<T>({o.out, o.in, static_cast<std::size_t>(o.kernel.h), static_cast<std::size_t>(o.kernel.w)}), true);
  this->register_parameter("weight", weight);
  if (o.bias) bias = Variable<T>(zeros<T>({o.out}), true);
  this->register_parameter("bias", bias);
  init::pytorch_default_(weight, &bias, rng);
}
template <class T>
Variable<T> Conv2d<T>::forward(const Variable<T>& x) {
  const auto& o = options_;
  return ops::conv2d(x, weight, bias, o.stride, o.padding, o.dilation, o.activation);
}

template <class T>
ConvTranspose2d<T>::ConvTranspose2d(const ConvTranspose2dOptions& o, Rng& rng) : options_(o) {
  if (o.in == 0 || o.out == 0 || o.kernel.h <= 0 || o.kernel.w <= 0)
    throw ShapeError("ConvTranspose2d: channels and kernel must be positive, got " + std::to_string(o.in) + " -> " +
                     std::to_string(o.out) + " with kernel " + ops::to_string(o.kernel));
  this->set_type("ConvTranspose2d", {{"in", o.in}, {"out", o.out}, {"kernel", o.kernel}, {"stride", o.stride},
                                     {"padding", o.padding}, {"output_padding", o.output_padding},
                                     {"dilation", o.dilation}, {"bias", o.bias}});
  const auto kh = static_cast<std::size_t>(o.kernel.h), kw = static_cast<std::size_t>(o.kernel.w);
  const double bound = 1.0 / std::sqrt(static_cast<double>(o.out * kh * kw));
  Tensor<T> w = xg::empty<T>({o.in, o.out, kh, kw});
  for (auto& v : w) v = static_cast<T>(rng.uniform(-bound, bound));
  weight = Variable<T>(std::move(w), true);
  this->register_parameter("weight", weight);
  if (o.bias) {
    Tensor<T> b = xg::empty<T>({o.out});
    for (auto& v : b) v = static_cast<T>(rng.uniform(-bound, bound));
    bias = Variable<T>(std::move(b), true);
  }
  this->register_parameter("bias", bias);
}

namespace {
const char* pool_type(PoolKind kind) {
  switch (kind) {
    case PoolKind::Max: return "MaxPool2d";
    case PoolKind::L2: return "L2Pool2d";
    case PoolKind::Avg: return "AvgPool2d";
    case PoolKind::Lp: return "LpPool2d";
    case PoolKind::Stochastic: return "StochasticPool2d";
  }
  return "Pool2d";
}
}  // namespace

template <class T>
Pool2d<T>::Pool2d(PoolKind kind, const Pool2dOptions& o) : kind_(kind), options_(o) {
  Settings s{{"kernel", o.kernel}, {"stride", o.stride.value_or(o.kernel)}, {"padding", o.padding}};
  if (kind == PoolKind::Lp) s.emplace_back("p", o.p);
  this->set_type(pool_type(kind), std::move(s));
}
template <class T>
Variable<T> Pool2d<T>::forward(const Variable<T>& x) {
  const auto& o = options_;
  switch (kind_) {
    case PoolKind::Max: return ops::max_pool2d(x, o.kernel, o.stride, o.padding);
    case PoolKind::L2: return ops::l2_pool2d(x, o.kernel, o.stride, o.padding);
    case PoolKind::Avg: return ops::avg_pool2d(x, o.kernel, o.stride, o.padding);
    case PoolKind::Lp: return ops::lp_pool2d(x, o.p, o.kernel, o.stride, o.padding);
    case PoolKind::Stochastic: return ops::stochastic_pool2d(x, o.kernel, o.stride, o.padding, this->is_training(), *rng_);
  }
  return x;
}

template <class T>
Variable<T> conv2d_pool(Conv2d<T>& conv, Pool2d<T>& pool, const Variable<T>& x) {
  const Pool2dOptions& p = pool.options();
  const Size2 s = p.stride.value_or(p.kernel);
  // Anomaly mode checks every op's output, the convolution's included, so it runs the layers in turn; so does a
  // summary, which reports each layer's output.
  const bool fusable = pool.kind() == PoolKind::Max && s.h == p.kernel.h && s.w == p.kernel.w && p.padding.h == 0 &&
                       p.padding.w == 0 && !detail::layer_observer<T> && !is_anomaly_enabled();
  if (!fusable) return pool(conv(x));
  const Conv2dOptions& c = conv.options();
  return ops::conv2d_max_pool2d(x, conv.weight, conv.bias, p.kernel, c.stride, c.padding, c.dilation, c.activation);
}

template <class T>
BatchNorm<T>::BatchNorm(const BatchNormOptions& o, std::size_t lo, std::size_t hi) : options_(o), rank_lo_(lo), rank_hi_(hi) {
  const char* name = lo == 4 ? "BatchNorm2d" : "BatchNorm1d";
  if (o.features == 0) throw ShapeError(std::string(name) + ": num_features must be positive");
  if (!(o.eps > 0) || !(o.momentum >= 0 && o.momentum <= 1))
    throw ShapeError(std::string(name) + ": eps must be positive and momentum in [0, 1], got eps " + std::to_string(o.eps) +
                     " and momentum " + std::to_string(o.momentum));
  this->set_type(name, {{"features", o.features}, {"eps", o.eps}, {"momentum", o.momentum}, {"affine", o.affine}});
  if (o.affine) {
    weight = Variable<T>(full<T>({o.features}, T(1)), true);
    bias = Variable<T>(zeros<T>({o.features}), true);
  }
  this->register_parameter("weight", weight);
  this->register_parameter("bias", bias);
  running_mean = zeros<T>({o.features});
  running_var = full<T>({o.features}, T(1));
  this->register_buffer("running_mean", running_mean);
  this->register_buffer("running_var", running_var);
}
template <class T>
Variable<T> BatchNorm<T>::forward(const Variable<T>& x) {
  if (x.dim() < rank_lo_ || x.dim() > rank_hi_)
    throw ShapeError(std::string(rank_lo_ == 4 ? "BatchNorm2d: expected input [N,C,H,W]" : "BatchNorm1d: expected input [N,C] or [N,C,L]") +
                     ", got " + shape_str(x.shape()));
  return ops::batch_norm(x, &running_mean, &running_var, weight, bias, this->is_training(), options_.momentum, options_.eps);
}

template <class T>
LayerNorm<T>::LayerNorm(const LayerNormOptions& o) : options_(o) {
  if (o.normalized_shape.empty()) throw ShapeError("LayerNorm: normalized_shape must not be empty");
  this->set_type("LayerNorm", {{"normalized_shape", o.normalized_shape}, {"eps", o.eps}, {"elementwise_affine", o.elementwise_affine}});
  if (o.elementwise_affine) {
    weight = Variable<T>(full<T>(o.normalized_shape, T(1)), true);
    bias = Variable<T>(zeros<T>(o.normalized_shape), true);
  }
  this->register_parameter("weight", weight);
  this->register_parameter("bias", bias);
}

template <class T>
GroupNorm<T>::GroupNorm(const GroupNormOptions& o) : options_(o) {
  if (o.groups == 0 || o.channels == 0 || o.channels % o.groups != 0 || !(o.eps > 0))
    throw ShapeError("GroupNorm: channels must divide into groups and eps be positive, got " + std::to_string(o.channels) +
                     " channels, " + std::to_string(o.groups) + " groups, eps " + std::to_string(o.eps));
  this->set_type("GroupNorm", {{"groups", o.groups}, {"channels", o.channels}, {"eps", o.eps}, {"affine", o.affine}});
  if (o.affine) {
    weight = Variable<T>(full<T>({o.channels}, T(1)), true);
    bias = Variable<T>(zeros<T>({o.channels}), true);
  }
  this->register_parameter("weight", weight);
  this->register_parameter("bias", bias);
}

template <class T>
Dropout2d<T>::Dropout2d(double p) : p_(p) {
  if (!(p >= 0.0 && p <= 1.0)) throw ShapeError("Dropout2d: probability has to be between 0 and 1, but got " + std::to_string(p));
  this->set_type("Dropout2d", {{"p", p}});
}

template <class T>
Dropout<T>::Dropout(double p, Rng& rng) : p_(p), rng_(&rng) {
  if (!(p >= 0.0 && p <= 1.0)) throw ShapeError("Dropout: probability has to be between 0 and 1, but got " + std::to_string(p));
  this->set_type("Dropout", {{"p", p}});
}

template Variable<float> conv2d_pool(Conv2d<float>&, Pool2d<float>&, const Variable<float>&);
template Variable<double> conv2d_pool(Conv2d<double>&, Pool2d<double>&, const Variable<double>&);

#define XG_INSTANTIATE(T)            \
  template class Linear<T>;          \
  template class Conv2d<T>;          \
  template class ConvTranspose2d<T>; \
  template class Pool2d<T>;          \
  template class BatchNorm<T>;       \
  template class LayerNorm<T>;       \
  template class GroupNorm<T>;       \
  template class Dropout2d<T>;       \
  template class Dropout<T>;
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg::nn
