#pragma once
/// \file mnist_cnn.h
/// The MNIST convolutional network of Nielsen's chapter 6, as one configurable model class.
///
/// Default (`seed`): 28×28 input → conv 5×5, 3 feature maps (3×24×24) → sigmoid → max-pool 2×2 (3×12×12) →
/// fully connected 432 → 10; the softmax lives in the loss (`ops::cross_entropy`, log-softmax + log-likelihood).
/// Presets `seed-l2` (L2 pooling) and `deep` (conv 20@5×5 → pool → conv 40@5×5 → pool → FC 640→100 → FC 100→10, ReLU)
/// select configurations of the same class. docs/mnist.md maps it to the book line by line.

#include <string>
#include <vector>

#include "core/random.h"
#include "models/classifier.h"
#include "nn/layers.h"

namespace xg::mnist {

/// The activation of every conv and hidden layer (the op-level enum; `None` is not offered by the CLI).
using Activation = ops::Activation;

/// One conv → activation → pool stage.
struct ConvStage {
  std::size_t maps = 3;         ///< feature maps (output channels)
  std::size_t kernel = 5;       ///< square kernel size
  nn::PoolKind pool = nn::PoolKind::Max;
  std::size_t pool_size = 2;    ///< square pool window, stride = window
  double pool_p = 3.0;          ///< the exponent of Lp pooling
};

struct MnistCnnConfig {
  std::vector<ConvStage> stages{ConvStage{}};
  std::vector<std::size_t> hidden;           ///< sizes of hidden fully connected layers (none in `seed`)
  Activation activation = Activation::Sigmoid;
  double dropout = 0.0;                      ///< dropout on the inputs of each fully connected layer after the first
  InitScheme init = InitScheme::Network3;

  /// "seed", "seed-l2" or "deep"; throws std::invalid_argument naming the valid presets otherwise.
  static MnistCnnConfig preset(const std::string& name);
  /// The layers in one short line for the mnist banner, e.g. "conv3@5x5-sigmoid-max2 | fc432-10".
  std::string layout() const;
  /// Sets the pool kind of every stage (and the exponent, for Lp).
  void set_pool(nn::PoolKind kind, double p = 3.0);
};

template <class T = float>
class MnistCnn : public ImageClassifier<T> {
 public:
  /// Builds the network; initialisation and dropout masks draw from `rng`, which must outlive the model.
  MnistCnn(const MnistCnnConfig& config, Rng& rng);
  /// images [N,1,28,28] → logits [N,10].
  Variable<T> forward(const Variable<T>& images) override;
  /// The maps after each stage's activation (before pooling) and after its pooling, for visualisation.
  std::vector<Variable<T>> feature_maps(const Variable<T>& images) override;
  ModelOptions options() const override;

  std::string layout() const override { return config_.layout(); }
  std::string previous_release_description() const override { return "MnistCnn(" + config_.layout() + ")"; }
  const MnistCnnConfig& config() const { return config_; }
  /// The first conv layer (its weights are the learned filters).
  nn::Conv2d<T>& first_conv() override { return *convs_.front(); }

 protected:
  /// Dropout masks draw from `rng` from now on (Module::set_generator; it must outlive the model).
  void use_generator(Rng& rng) override { rng_ = &rng; }

 private:
  Variable<T> activate(const Variable<T>& x) const;
  MnistCnnConfig config_;
  // The layers, owned through their registration ("conv1", "pool1", …, "fc1", …).
  std::vector<nn::Conv2d<T>*> convs_;
  std::vector<nn::Pool2d<T>*> pools_;
  std::vector<nn::Linear<T>*> fcs_;
  Rng* rng_;
};

}  // namespace xg::mnist
