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

/// y = x Wᵀ + b: x [*,in] -> [*,out] (any leading dimensions, as torch::nn::Linear). weight [out,in], bias [out].
template <class T = float>
class Linear : public Layer<T> {
 public:
  Linear(std::size_t in_features, std::size_t out_features, bool bias = true, Rng& rng = default_rng());
  Variable<T> forward(const Variable<T>& x) override;
  std::vector<NamedParameter<T>> own_parameters() const override;
  std::string describe() const override;
  Variable<T> weight, bias;  ///< bias is undefined when constructed with bias = false
};

/// 2-D convolution: x [N,in,H,W] -> [N,out,OH,OW]. weight [out,in,kh,kw], bias [out].
template <class T = float>
class Conv2d : public Layer<T> {
 public:
  Conv2d(std::size_t in_channels, std::size_t out_channels, Size2 kernel, Size2 stride = 1, Size2 padding = 0,
         Size2 dilation = 1, bool bias = true, Rng& rng = default_rng());
  Variable<T> forward(const Variable<T>& x) override;
  std::vector<NamedParameter<T>> own_parameters() const override;
  std::string describe() const override;
  Variable<T> weight, bias;
  Size2 stride, padding, dilation;
  /// An activation fused into the convolution's output pass (ops::conv2d's `fused`): the same bits as a separate
  /// activation layer after it, one op and one tensor fewer. None by default.
  ops::Activation activation = ops::Activation::None;
};

/// Transposed 2-D convolution: x [N,in,H,W] -> [N,out,OH,OW]. weight [in,out,kh,kw], bias [out] (PyTorch's layout and
/// default initialisation: uniform ±1/√(out·kh·kw)).
template <class T = float>
class ConvTranspose2d : public Layer<T> {
 public:
  ConvTranspose2d(std::size_t in_channels, std::size_t out_channels, Size2 kernel, Size2 stride = 1, Size2 padding = 0,
                  Size2 output_padding = 0, Size2 dilation = 1, bool bias = true, Rng& rng = default_rng());
  Variable<T> forward(const Variable<T>& x) override {
    return ops::conv_transpose2d(x, weight, bias, stride, padding, output_padding, dilation);
  }
  std::vector<NamedParameter<T>> own_parameters() const override;
  std::string describe() const override;
  Variable<T> weight, bias;
  Size2 stride, padding, output_padding, dilation;
};

/// The 2-D pools: x [N,C,H,W] -> [N,C,OH,OW]; stride defaults to the kernel. Lp uses `p`; Stochastic draws from the
/// module's generator in training (Module::set_generator; default: the default generator) and averages in eval.
enum class PoolKind { Max, L2, Avg, Lp, Stochastic };

template <class T = float>
class Pool2d : public Layer<T> {
 public:
  Pool2d(PoolKind kind, Size2 kernel, std::optional<Size2> stride = {}, Size2 padding = 0, double p = 3.0)
      : kind(kind), kernel(kernel), stride(stride), padding(padding), p(p) {}
  Variable<T> forward(const Variable<T>& x) override;
  std::string describe() const override;
  PoolKind kind;
  Size2 kernel;
  std::optional<Size2> stride;
  Size2 padding;
  double p;  ///< the exponent of PoolKind::Lp

 protected:
  void use_generator(Rng& rng) override { rng_ = &rng; }

 private:
  Rng* rng_ = &default_rng();
};

/// max_pool2d as a layer.
template <class T = float>
struct MaxPool2d : Pool2d<T> {
  explicit MaxPool2d(Size2 kernel, std::optional<Size2> stride = {}, Size2 padding = 0)
      : Pool2d<T>(PoolKind::Max, kernel, stride, padding) {}
};
/// l2_pool2d as a layer.
template <class T = float>
struct L2Pool2d : Pool2d<T> {
  explicit L2Pool2d(Size2 kernel, std::optional<Size2> stride = {}, Size2 padding = 0)
      : Pool2d<T>(PoolKind::L2, kernel, stride, padding) {}
};
/// avg_pool2d (count_include_pad) as a layer.
template <class T = float>
struct AvgPool2d : Pool2d<T> {
  explicit AvgPool2d(Size2 kernel, std::optional<Size2> stride = {}, Size2 padding = 0)
      : Pool2d<T>(PoolKind::Avg, kernel, stride, padding) {}
};

/// lp_pool2d as a layer.
template <class T = float>
struct LpPool2d : Pool2d<T> {
  LpPool2d(double p, Size2 kernel, std::optional<Size2> stride = {}, Size2 padding = 0)
      : Pool2d<T>(PoolKind::Lp, kernel, stride, padding, p) {}
};
/// stochastic_pool2d as a layer (training: sampled; eval: probability-weighted average).
template <class T = float>
struct StochasticPool2d : Pool2d<T> {
  explicit StochasticPool2d(Size2 kernel, std::optional<Size2> stride = {}, Size2 padding = 0)
      : Pool2d<T>(PoolKind::Stochastic, kernel, stride, padding) {}
};

/// `pool(conv(x))`, as one node when it can be: a max-pool whose windows do not overlap (stride unset or equal to the
/// kernel, no padding) after a Conv2d (any stride, padding, dilation, fused activation) runs as
/// ops::conv2d_max_pool2d — the same values and gradients (bit for bit, or within rounding for the weight and input
/// gradients of layers with patches of 64 values or more, whose backward skips the cells the pool did not select:
/// ops/ops.h), without the convolution's output stored or re-read (measured in docs/performance.md). Any other pool, a subclass of
/// either layer (its forward() would be skipped), calls while nn::summary records (it reports each layer's output)
/// and calls in anomaly mode (it checks the convolution's output too) run the two layers in turn.
template <class T>
Variable<T> conv2d_pool(Conv2d<T>& conv, Pool2d<T>& pool, const Variable<T>& x);

/// Merges dims start_dim..end_dim (default: [N, ...] -> [N, rest]).
template <class T = float>
class Flatten : public Layer<T> {
 public:
  explicit Flatten(std::int64_t start_dim = 1, std::int64_t end_dim = -1) : start_(start_dim), end_(end_dim) {}
  Variable<T> forward(const Variable<T>& x) override { return ops::flatten(x, start_, end_); }
  std::string describe() const override { return "Flatten"; }

 private:
  std::int64_t start_, end_;
};

/// Elementwise activations as layers; the kind is the ops-level enum (ops::Activation, also what nn::Conv2d fuses).
using ActivationKind = ops::Activation;

template <class T = float>
class Activation : public Layer<T> {
 public:
  explicit Activation(ActivationKind kind) : kind(kind) {}
  Variable<T> forward(const Variable<T>& x) override;
  std::string describe() const override;
  ActivationKind kind;
};
template <class T = float>
struct ReLU : Activation<T> {
  ReLU() : Activation<T>(ActivationKind::Relu) {}
};
template <class T = float>
struct Sigmoid : Activation<T> {
  Sigmoid() : Activation<T>(ActivationKind::Sigmoid) {}
};
template <class T = float>
struct Tanh : Activation<T> {
  Tanh() : Activation<T>(ActivationKind::Tanh) {}
};

/// Any function of one Variable as a layer, with a name for summaries and checkpoints' architecture strings: how a
/// user's own activation op (one file, docs/adding-an-op.md) goes into a Sequential without touching the library.
///     net.add<nn::Lambda<>>("hardtanh", [](const Variable<float>& x) { return ops::clamp(x, -1.0f, 1.0f); });
template <class T = float>
class Lambda : public Layer<T> {
 public:
  Lambda(std::string name, std::function<Variable<T>(const Variable<T>&)> f) : name_(std::move(name)), f_(std::move(f)) {}
  Variable<T> forward(const Variable<T>& x) override { return f_(x); }
  std::string describe() const override { return name_; }

 private:
  std::string name_;
  std::function<Variable<T>(const Variable<T>&)> f_;
};

/// ops::leaky_relu as a layer.
template <class T = float>
struct LeakyReLU : Lambda<T> {
  explicit LeakyReLU(T slope = T(0.01))
      : Lambda<T>("LeakyReLU(" + std::to_string(slope) + ")", [slope](const Variable<T>& x) { return ops::leaky_relu(x, slope); }) {}
};
/// ops::elu as a layer.
template <class T = float>
struct ELU : Lambda<T> {
  explicit ELU(T alpha = T(1))
      : Lambda<T>("ELU(" + std::to_string(alpha) + ")", [alpha](const Variable<T>& x) { return ops::elu(x, alpha); }) {}
};
/// ops::gelu as a layer.
template <class T = float>
struct GELU : Lambda<T> {
  explicit GELU(ops::GeluApproximation a = ops::GeluApproximation::None)
      : Lambda<T>(a == ops::GeluApproximation::Tanh ? "GELU(tanh)" : "GELU", [a](const Variable<T>& x) { return ops::gelu(x, a); }) {}
};
/// ops::softplus as a layer.
template <class T = float>
struct Softplus : Lambda<T> {
  explicit Softplus(T beta = T(1), T threshold = T(20))
      : Lambda<T>("Softplus(" + std::to_string(beta) + ", " + std::to_string(threshold) + ")",
                  [beta, threshold](const Variable<T>& x) { return ops::softplus(x, beta, threshold); }) {}
};
/// ops::silu as a layer.
template <class T = float>
struct SiLU : Lambda<T> {
  SiLU() : Lambda<T>("SiLU", [](const Variable<T>& x) { return ops::silu(x); }) {}
};

/// Batch normalisation (ops::batch_norm) with learnable weight and bias ([C]; affine) and the running mean and
/// variance as **buffers** (saved and loaded with the model, not trained). BatchNorm1d takes [N,C] or [N,C,L],
/// BatchNorm2d [N,C,H,W]; both use the batch's statistics in training and the running ones in eval.
template <class T = float>
class BatchNorm : public Layer<T> {
 public:
  BatchNorm(std::size_t num_features, std::size_t input_rank_lo, std::size_t input_rank_hi, double eps = 1e-5,
            double momentum = 0.1, bool affine = true);
  Variable<T> forward(const Variable<T>& x) override;
  std::vector<NamedParameter<T>> own_parameters() const override;
  std::vector<NamedBuffer<T>> own_buffers() override { return {{"running_mean", &running_mean}, {"running_var", &running_var}}; }
  std::string describe() const override;
  Variable<T> weight, bias;
  Tensor<T> running_mean, running_var;
  double eps, momentum;

 private:
  std::size_t rank_lo_, rank_hi_;
};
template <class T = float>
struct BatchNorm1d : BatchNorm<T> {
  explicit BatchNorm1d(std::size_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true)
      : BatchNorm<T>(num_features, 2, 3, eps, momentum, affine) {}
};
template <class T = float>
struct BatchNorm2d : BatchNorm<T> {
  explicit BatchNorm2d(std::size_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true)
      : BatchNorm<T>(num_features, 4, 4, eps, momentum, affine) {}
};

/// Layer normalisation over the trailing `normalized_shape` (weight ones, bias zeros, learnable).
template <class T = float>
class LayerNorm : public Layer<T> {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true);
  Variable<T> forward(const Variable<T>& x) override { return ops::layer_norm(x, shape_, weight, bias, eps_); }
  std::vector<NamedParameter<T>> own_parameters() const override;
  std::string describe() const override { return "LayerNorm(" + shape_str(shape_) + ")"; }
  Variable<T> weight, bias;

 private:
  Shape shape_;
  double eps_;
};

/// ops::adaptive_avg_pool2d as a layer.
template <class T = float>
struct AdaptiveAvgPool2d : Lambda<T> {
  explicit AdaptiveAvgPool2d(Size2 output_size)
      : Lambda<T>("AdaptiveAvgPool2d(" + std::to_string(output_size.h) + "x" + std::to_string(output_size.w) + ")",
                  [output_size](const Variable<T>& x) { return ops::adaptive_avg_pool2d(x, output_size); }) {}
};

/// Channel dropout (ops::dropout2d), active in training mode only; draws from the module's generator.
template <class T = float>
class Dropout2d : public Layer<T> {
 public:
  explicit Dropout2d(double p = 0.5) : p_(p) {
    if (!(p >= 0.0 && p <= 1.0)) throw ShapeError("Dropout2d: probability has to be between 0 and 1, but got " + std::to_string(p));
  }
  Variable<T> forward(const Variable<T>& x) override { return ops::dropout2d(x, p_, this->is_training(), *rng_); }
  std::string describe() const override { return "Dropout2d(p=" + std::to_string(p_) + ")"; }

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
  std::string describe() const override { return "Dropout(p=" + std::to_string(p_) + ")"; }

 protected:
  void use_generator(Rng& rng) override { rng_ = &rng; }

 private:
  double p_;
  Rng* rng_;
};

}  // namespace xg::nn
