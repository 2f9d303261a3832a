#pragma once
/// \file layers.h
/// Layers in the style of PyTorch's C++ frontend: parameter-owning wrappers over ops (Linear, Conv2d) and
/// parameter-free ones (pools, Flatten, activations, Dropout). Each is a `Layer<T>` with `forward(x)`.
/// Constructors initialise with PyTorch's defaults from the default generator (`xg::manual_seed`); re-initialise
/// with `nn/init.h` for other schemes.

#include <functional>
#include <optional>
#include <string>

#include "core/random.h"
#include "nn/module.h"
#include "ops/ops.h"

namespace xg::nn {

using ops::Size2;

/// Linear's settings: `Linear<>({.in = 432, .out = 10, .bias = false})`.
struct LinearOptions {
  std::size_t in = 0, out = 0;
  bool bias = true;
};

/// y = x Wᵀ + b: x [*,in] -> [*,out] (any leading dimensions, as torch::nn::Linear). weight [out,in], bias [out].
template <class T = float>
class Linear : public Layer<T> {
 public:
  explicit Linear(const LinearOptions& options, Rng& rng = default_rng());
  Linear(std::size_t in_features, std::size_t out_features, Rng& rng = default_rng())
      : Linear(LinearOptions{.in = in_features, .out = out_features}, rng) {}
  Variable<T> forward(const Variable<T>& x) override { return ops::linear(x, weight, bias); }
  Variable<T> weight, bias;  ///< bias is undefined when built with .bias = false
};

/// Conv2d's settings: `Conv2d<>({.in = 1, .out = 6, .kernel = 5, .padding = 2})`.
struct Conv2dOptions {
  std::size_t in = 0, out = 0;
  Size2 kernel = 0;
  Size2 stride = 1, padding = 0, dilation = 1;
  bool bias = true;
  /// An activation fused into the convolution's output pass (ops::conv2d's `fused`): the same bits as a separate
  /// activation layer after it, one op and one tensor fewer.
  ops::Activation activation = ops::Activation::None;
};

/// 2-D convolution: x [N,in,H,W] -> [N,out,OH,OW]. weight [out,in,kh,kw], bias [out].
template <class T = float>
class Conv2d : public Layer<T> {
 public:
  explicit Conv2d(const Conv2dOptions& options, Rng& rng = default_rng());
  /// The common case, as libtorch's Conv2d(in, out, kernel): stride 1, no padding, with bias.
  Conv2d(std::size_t in_channels, std::size_t out_channels, Size2 kernel, Rng& rng = default_rng())
      : Conv2d(Conv2dOptions{.in = in_channels, .out = out_channels, .kernel = kernel}, rng) {}
  /// final: nn::conv2d_pool may run this layer fused with the pool after it, which needs this forward to be the one.
  Variable<T> forward(const Variable<T>& x) final;
  const Conv2dOptions& options() const { return options_; }
  Variable<T> weight, bias;

 private:
  Conv2dOptions options_;
};

/// ConvTranspose2d's settings.
struct ConvTranspose2dOptions {
  std::size_t in = 0, out = 0;
  Size2 kernel = 0;
  Size2 stride = 1, padding = 0, output_padding = 0, dilation = 1;
  bool bias = true;
};

/// Transposed 2-D convolution: x [N,in,H,W] -> [N,out,OH,OW]. weight [in,out,kh,kw], bias [out] (PyTorch's layout and
/// default initialisation: uniform ±1/√(out·kh·kw)).
template <class T = float>
class ConvTranspose2d : public Layer<T> {
 public:
  explicit ConvTranspose2d(const ConvTranspose2dOptions& options, Rng& rng = default_rng());
  Variable<T> forward(const Variable<T>& x) override {
    const auto& o = options_;
    return ops::conv_transpose2d(x, weight, bias, o.stride, o.padding, o.output_padding, o.dilation);
  }
  const ConvTranspose2dOptions& options() const { return options_; }
  Variable<T> weight, bias;

 private:
  ConvTranspose2dOptions options_;
};

/// The 2-D pools: x [N,C,H,W] -> [N,C,OH,OW]. Lp uses `p`; Stochastic draws from the module's generator in training
/// (Module::set_generator; default: the default generator) and averages in eval.
enum class PoolKind { Max, L2, Avg, Lp, Stochastic };

/// A pool's settings: `MaxPool2d<>({.kernel = 3, .stride = 2, .padding = 1})`; the stride defaults to the kernel.
struct Pool2dOptions {
  Size2 kernel = 0;
  std::optional<Size2> stride = std::nullopt;
  Size2 padding = 0;
  double p = 3.0;  ///< the exponent of PoolKind::Lp (ignored by the others)
};

template <class T = float>
class Pool2d : public Layer<T> {
 public:
  Pool2d(PoolKind kind, const Pool2dOptions& options);
  /// final: nn::conv2d_pool may run a max-pool fused with the convolution before it.
  Variable<T> forward(const Variable<T>& x) final;
  PoolKind kind() const { return kind_; }
  const Pool2dOptions& options() const { return options_; }

 protected:
  void use_generator(Rng& rng) override { rng_ = &rng; }

 private:
  PoolKind kind_;
  Pool2dOptions options_;
  Rng* rng_ = &default_rng();
};

/// max_pool2d as a layer: `MaxPool2d<>(2)` or `MaxPool2d<>({.kernel = 3, .stride = 2})`.
template <class T = float>
struct MaxPool2d : Pool2d<T> {
  explicit MaxPool2d(const Pool2dOptions& o) : Pool2d<T>(PoolKind::Max, o) {}
  explicit MaxPool2d(Size2 kernel) : MaxPool2d(Pool2dOptions{.kernel = kernel}) {}
};
/// l2_pool2d as a layer.
template <class T = float>
struct L2Pool2d : Pool2d<T> {
  explicit L2Pool2d(const Pool2dOptions& o) : Pool2d<T>(PoolKind::L2, o) {}
  explicit L2Pool2d(Size2 kernel) : L2Pool2d(Pool2dOptions{.kernel = kernel}) {}
};
/// avg_pool2d (count_include_pad) as a layer.
template <class T = float>
struct AvgPool2d : Pool2d<T> {
  explicit AvgPool2d(const Pool2dOptions& o) : Pool2d<T>(PoolKind::Avg, o) {}
  explicit AvgPool2d(Size2 kernel) : AvgPool2d(Pool2dOptions{.kernel = kernel}) {}
};
/// lp_pool2d as a layer: `LpPool2d<>({.kernel = 2, .p = 1.5})`.
template <class T = float>
struct LpPool2d : Pool2d<T> {
  explicit LpPool2d(const Pool2dOptions& o) : Pool2d<T>(PoolKind::Lp, o) {}
};
/// stochastic_pool2d as a layer (training: sampled; eval: probability-weighted average).
template <class T = float>
struct StochasticPool2d : Pool2d<T> {
  explicit StochasticPool2d(const Pool2dOptions& o) : Pool2d<T>(PoolKind::Stochastic, o) {}
  explicit StochasticPool2d(Size2 kernel) : StochasticPool2d(Pool2dOptions{.kernel = kernel}) {}
};

/// `pool(conv(x))`, as one node when it can be: a max-pool whose windows do not overlap (stride unset or equal to the
/// kernel, no padding) after a Conv2d (any stride, padding, dilation, fused activation) runs as
/// ops::conv2d_max_pool2d — the same values and gradients (bit for bit, or within rounding for the weight and input
/// gradients of layers with patches of 64 values or more, whose backward skips the cells the pool did not select:
/// ops/ops.h), without the convolution's output stored or re-read. Both layers' forward() are final, so the fused op
/// computes what they would. Any other pool, calls while nn::summary records (it reports each layer's output) and
/// calls in anomaly mode (it checks the convolution's output too) run the two layers in turn.
template <class T>
Variable<T> conv2d_pool(Conv2d<T>& conv, Pool2d<T>& pool, const Variable<T>& x);

/// Merges dims start_dim..end_dim (default: [N, ...] -> [N, rest]).
template <class T = float>
class Flatten : public Layer<T> {
 public:
  explicit Flatten(std::int64_t start_dim = 1, std::int64_t end_dim = -1) : start_(start_dim), end_(end_dim) {
    this->set_type("Flatten", {{"start_dim", start_dim}, {"end_dim", end_dim}});
  }
  Variable<T> forward(const Variable<T>& x) override { return ops::flatten(x, start_, end_); }

 private:
  std::int64_t start_, end_;
};

/// Any function of one Variable as a layer, with a type name and settings for summaries and the architecture record:
/// how a user's own activation op (one file, docs/adding-an-op.md) goes into a Sequential without touching the library.
///     net.add<nn::Lambda<>>("Hardtanh", [](const Variable<float>& x) { return ops::clamp(x, -1.0f, 1.0f); });
template <class T = float>
class Lambda : public Layer<T> {
 public:
  Lambda(std::string type, std::function<Variable<T>(const Variable<T>&)> f, Settings settings = {}) : f_(std::move(f)) {
    this->set_type(std::move(type), std::move(settings));
  }
  Variable<T> forward(const Variable<T>& x) override { return f_(x); }

 private:
  std::function<Variable<T>(const Variable<T>&)> f_;
};

/// ops::relu as a layer.
template <class T = float>
struct ReLU : Lambda<T> {
  ReLU() : Lambda<T>("ReLU", [](const Variable<T>& x) { return ops::relu(x); }) {}
};
/// ops::sigmoid as a layer.
template <class T = float>
struct Sigmoid : Lambda<T> {
  Sigmoid() : Lambda<T>("Sigmoid", [](const Variable<T>& x) { return ops::sigmoid(x); }) {}
};
/// ops::tanh as a layer.
template <class T = float>
struct Tanh : Lambda<T> {
  Tanh() : Lambda<T>("Tanh", [](const Variable<T>& x) { return ops::tanh(x); }) {}
};
/// ops::leaky_relu as a layer.
template <class T = float>
struct LeakyReLU : Lambda<T> {
  explicit LeakyReLU(T slope = T(0.01))
      : Lambda<T>("LeakyReLU", [slope](const Variable<T>& x) { return ops::leaky_relu(x, slope); }, {{"negative_slope", slope}}) {}
};
/// ops::elu as a layer.
template <class T = float>
struct ELU : Lambda<T> {
  explicit ELU(T alpha = T(1)) : Lambda<T>("ELU", [alpha](const Variable<T>& x) { return ops::elu(x, alpha); }, {{"alpha", alpha}}) {}
};
/// ops::gelu as a layer.
template <class T = float>
struct GELU : Lambda<T> {
  explicit GELU(ops::GeluApproximation a = ops::GeluApproximation::None)
      : Lambda<T>("GELU", [a](const Variable<T>& x) { return ops::gelu(x, a); },
                  {{"approximate", a == ops::GeluApproximation::Tanh ? "tanh" : "none"}}) {}
};
/// ops::softplus as a layer.
template <class T = float>
struct Softplus : Lambda<T> {
  explicit Softplus(T beta = T(1), T threshold = T(20))
      : Lambda<T>("Softplus", [beta, threshold](const Variable<T>& x) { return ops::softplus(x, beta, threshold); },
                  {{"beta", beta}, {"threshold", threshold}}) {}
};
/// ops::silu as a layer.
template <class T = float>
struct SiLU : Lambda<T> {
  SiLU() : Lambda<T>("SiLU", [](const Variable<T>& x) { return ops::silu(x); }) {}
};

/// BatchNorm's settings: `BatchNorm2d<>({.features = 16, .momentum = 0.01})`.
struct BatchNormOptions {
  std::size_t features = 0;
  double eps = 1e-5, momentum = 0.1;
  bool affine = true;
};

/// Batch normalisation (ops::batch_norm) with learnable weight and bias ([C]; affine) and the running mean and
/// variance as **buffers** (saved and loaded with the model, not trained). BatchNorm1d takes [N,C] or [N,C,L],
/// BatchNorm2d [N,C,H,W]; both use the batch's statistics in training and the running ones in eval.
template <class T = float>
class BatchNorm : public Layer<T> {
 public:
  Variable<T> forward(const Variable<T>& x) override;
  const BatchNormOptions& options() const { return options_; }
  Variable<T> weight, bias;
  Tensor<T> running_mean, running_var;

 protected:
  BatchNorm(const BatchNormOptions& options, std::size_t input_rank_lo, std::size_t input_rank_hi);

 private:
  BatchNormOptions options_;
  std::size_t rank_lo_, rank_hi_;
};
template <class T = float>
struct BatchNorm1d : BatchNorm<T> {
  explicit BatchNorm1d(const BatchNormOptions& o) : BatchNorm<T>(o, 2, 3) {}
  explicit BatchNorm1d(std::size_t features) : BatchNorm1d(BatchNormOptions{.features = features}) {}
};
template <class T = float>
struct BatchNorm2d : BatchNorm<T> {
  explicit BatchNorm2d(const BatchNormOptions& o) : BatchNorm<T>(o, 4, 4) {}
  explicit BatchNorm2d(std::size_t features) : BatchNorm2d(BatchNormOptions{.features = features}) {}
};

/// LayerNorm's settings.
struct LayerNormOptions {
  Shape normalized_shape;
  double eps = 1e-5;
  bool elementwise_affine = true;
};

/// Layer normalisation over the trailing `normalized_shape` (weight ones, bias zeros, learnable).
template <class T = float>
class LayerNorm : public Layer<T> {
 public:
  explicit LayerNorm(const LayerNormOptions& options);
  explicit LayerNorm(Shape normalized_shape) : LayerNorm(LayerNormOptions{.normalized_shape = std::move(normalized_shape)}) {}
  Variable<T> forward(const Variable<T>& x) override {
    return ops::layer_norm(x, options_.normalized_shape, weight, bias, options_.eps);
  }
  const LayerNormOptions& options() const { return options_; }
  Variable<T> weight, bias;

 private:
  LayerNormOptions options_;
};

/// GroupNorm's settings: `GroupNorm<>({.groups = 4, .channels = 32})`.
struct GroupNormOptions {
  std::size_t groups = 0, channels = 0;
  double eps = 1e-5;
  bool affine = true;
};

/// Group normalisation (ops::group_norm) with learnable per-channel weight (ones) and bias (zeros), [C] each.
template <class T = float>
class GroupNorm : public Layer<T> {
 public:
  explicit GroupNorm(const GroupNormOptions& options);
  Variable<T> forward(const Variable<T>& x) override { return ops::group_norm(x, options_.groups, weight, bias, options_.eps); }
  const GroupNormOptions& options() const { return options_; }
  Variable<T> weight, bias;

 private:
  GroupNormOptions options_;
};

/// ops::adaptive_avg_pool2d as a layer.
template <class T = float>
struct AdaptiveAvgPool2d : Lambda<T> {
  explicit AdaptiveAvgPool2d(Size2 output_size)
      : Lambda<T>("AdaptiveAvgPool2d", [output_size](const Variable<T>& x) { return ops::adaptive_avg_pool2d(x, output_size); },
                  {{"output_size", output_size}}) {}
};

/// Channel dropout (ops::dropout2d), active in training mode only; draws from the module's generator.
template <class T = float>
class Dropout2d : public Layer<T> {
 public:
  explicit Dropout2d(double p = 0.5);
  Variable<T> forward(const Variable<T>& x) override { return ops::dropout2d(x, p_, this->is_training(), *rng_); }

 protected:
  void use_generator(Rng& rng) override { rng_ = &rng; }

 private:
  double p_;
  Rng* rng_ = &default_rng();
};

/// Inverted dropout, active in training mode only. Draws from `rng` (default: the default generator).
template <class T = float>
class Dropout : public Layer<T> {
 public:
  explicit Dropout(double p = 0.5, Rng& rng = default_rng());
  Variable<T> forward(const Variable<T>& x) override { return ops::dropout(x, p_, this->is_training(), *rng_); }

 protected:
  void use_generator(Rng& rng) override { rng_ = &rng; }

 private:
  double p_;
  Rng* rng_;
};

}  // namespace xg::nn
