#pragma once
/// \file lenet5.h
/// LeNet-5 (LeCun et al. 1998) as PyTorch tutorials write it for 28×28 MNIST:
/// conv 5×5, 6 maps, padding 2 (6×28×28) → tanh → avg-pool 2 (6×14×14) → conv 5×5, 16 maps (16×10×10) → tanh →
/// avg-pool 2 (16×5×5) → FC 400→120 → tanh → FC 120→84 → tanh → FC 84→10. 61,706 parameters, PyTorch's default
/// initialisation. `--pool` and `--activation` swap the pooling and the activation; `--dropout p` drops the inputs of
/// the second and third fully connected layers.

#include "core/random.h"
#include "models/classifier.h"

namespace xg::mnist {

template <class T = float>
class LeNet5 : public ImageClassifier<T> {
 public:
  /// Throws std::invalid_argument for init network3 (LeNet-5 is trained from PyTorch's initialisation) or a dropout
  /// outside [0, 1). Initialisation and dropout masks draw from `rng` (it must outlive the model).
  explicit LeNet5(const ModelOptions& options, Rng& rng);
  Variable<T> forward(const Variable<T>& images) override;
  std::vector<Variable<T>> feature_maps(const Variable<T>& images) override;
  nn::Conv2d<T>& first_conv() override { return conv1_; }
  ModelOptions options() const override;
  /// "conv6@5x5p2-tanh-avg2 conv16@5x5-tanh-avg2 | fc400-120-84-10" for the mnist banner.
  std::string layout() const override;
  std::string previous_release_description() const override;

 protected:
  void use_generator(Rng& rng) override { rng_ = &rng; }

 private:
  nn::PoolKind pool_kind_;
  double pool_p_;
  ops::Activation act_;
  double dropout_;
  nn::Conv2d<T> conv1_, conv2_;
  nn::Pool2d<T> pool1_, pool2_;
  nn::Linear<T> fc1_, fc2_, fc3_;
  Rng* rng_;
};

}  // namespace xg::mnist
