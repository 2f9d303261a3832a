#pragma once
/// \file optim.h
/// Optimizers with PyTorch's update rules: `Sgd` (momentum, dampening, Nesterov, L2 weight decay) and `Adam`
/// (with L2 weight decay, or decoupled AdamW decay). Parameters without a gradient are skipped, as in PyTorch.

#include <map>
#include <string>
#include <vector>

#include "core/variable.h"

namespace xg::nn {

/// The state an optimizer needs to resume exactly: named tensors and named scalars.
template <class T>
struct OptimizerState {
  std::vector<std::pair<std::string, Tensor<T>>> tensors;
  std::map<std::string, double> scalars;
};

template <class T = float>
class Optimizer {
 public:
  explicit Optimizer(std::vector<Variable<T>> params);
  virtual ~Optimizer() = default;
  /// Applies one update to every parameter that has a gradient.
  virtual void step() = 0;
  /// Drops every parameter's gradient.
  void zero_grad();
  double lr() const { return lr_; }
  void set_lr(double lr);
  const std::vector<Variable<T>>& params() const { return params_; }
  /// "sgd", "adam" or "adamw" (stored in checkpoints; a checkpoint of another optimizer is refused).
  virtual std::string name() const = 0;
  virtual OptimizerState<T> state() const = 0;
  /// Restores a state from `state()`; throws CheckpointError naming any missing or mis-shaped entry.
  virtual void load_state(const OptimizerState<T>& s) = 0;

 protected:
  std::vector<Variable<T>> params_;
  double lr_ = 0.0;
};

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;  ///< L2 penalty added to the gradient: g + wd·p
  bool nesterov = false;
};

/// p ← p − lr·d, with g = ∇ + wd·p; buf ← momentum·buf + (1 − dampening)·g (buf = g on the first step);
/// d = g + momentum·buf (Nesterov) or buf (momentum) or g.
template <class T = float>
class Sgd : public Optimizer<T> {
 public:
  Sgd(std::vector<Variable<T>> params, SgdOptions options);
  void step() override;
  std::string name() const override { return "sgd"; }
  OptimizerState<T> state() const override;
  void load_state(const OptimizerState<T>& s) override;
  const SgdOptions& options() const { return o_; }

 private:
  SgdOptions o_;
  std::vector<Tensor<T>> buf_;
  std::vector<bool> has_buf_;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = false;  ///< true: AdamW (p ← p − lr·wd·p before the Adam step)
};

/// m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²; p ← p − (lr / (1−β1ᵗ)) · m / (sqrt(v)/sqrt(1−β2ᵗ) + eps).
template <class T = float>
class Adam : public Optimizer<T> {
 public:
  Adam(std::vector<Variable<T>> params, AdamOptions options);
  void step() override;
  std::string name() const override { return o_.decoupled_weight_decay ? "adamw" : "adam"; }
  OptimizerState<T> state() const override;
  void load_state(const OptimizerState<T>& s) override;
  const AdamOptions& options() const { return o_; }

 private:
  AdamOptions o_;
  std::vector<Tensor<T>> m_, v_;
  std::vector<std::size_t> steps_;
};

/// Scales every gradient by max_norm / (total + 1e-6) when the total L2 norm over all of them exceeds `max_norm`
/// (PyTorch's clip_grad_norm_); returns the total norm before clipping (summed in double, in parameter order, so the
/// same gradients give the same bits at any thread count). Parameters without a gradient are skipped. A non-finite
/// total is returned as it is and nothing is scaled. Throws std::invalid_argument for max_norm ≤ 0 or not finite.
template <class T>
double clip_grad_norm_(const std::vector<Variable<T>>& params, double max_norm);

}  // namespace xg::nn
