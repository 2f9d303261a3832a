#pragma once
/// \file classifier.h
/// What every model in the registry (models/registry.h) is: an image classifier, a layer mapping images [N,1,28,28]
/// to logits [N,10] whose convolution stages `mnist visualize` can draw, built from the options the mnist CLI offers.

#include <optional>
#include <string>
#include <vector>

#include "nn/layers.h"

namespace xg::mnist {

/// How parameters are initialised: network3's scheme (the book's code) or PyTorch's layer defaults.
enum class InitScheme { Network3, PyTorch };

/// The model-shaping choices of the mnist CLI (--pool, --activation, --dropout, --init); unset: the model's default.
/// A model refuses a choice it does not support (std::invalid_argument naming the model and the choice).
struct ModelOptions {
  std::optional<nn::PoolKind> pool = std::nullopt;
  std::optional<double> pool_p = std::nullopt;  ///< the exponent of Lp pooling (--pool lp3: Lp with p = 3)
  std::optional<ops::Activation> activation = std::nullopt;
  std::optional<double> dropout = std::nullopt;
  std::optional<InitScheme> init = std::nullopt;
};

template <class T = float>
class ImageClassifier : public nn::Layer<T> {
 public:
  /// The maps after each convolution stage's activation and after its pooling, in order (for visualisation).
  virtual std::vector<Variable<T>> feature_maps(const Variable<T>& images) = 0;
  /// The first convolution (its weights are the learned filters).
  virtual nn::Conv2d<T>& first_conv() = 0;
  /// The options in effect, every one resolved (what a checkpoint's run settings record).
  virtual ModelOptions options() const = 0;
  /// The layers in one short line for the mnist banner (default: describe()).
  virtual std::string layout() const { return this->describe(); }
  /// The architecture string the releases before the architecture record stored in checkpoints for this model, so
  /// that mnist still refuses such a checkpoint of another architecture (a checkpoint of the same tensor shapes with
  /// another pooling, activation or dropout).
  virtual std::string previous_release_description() const = 0;
};

/// A pooling as the CLI names it: "max", "l2", "avg", "lpP" (Lp pooling with exponent P ≥ 1, e.g. "lp3", "lp1.5")
/// or "stochastic".
struct PoolSpec {
  nn::PoolKind kind = nn::PoolKind::Max;
  double p = 3.0;  ///< Lp only
};
/// "max", …, "lp3", "stochastic" (p is used for Lp only).
std::string pool_name(nn::PoolKind kind, double p);
std::string to_string(InitScheme s);
/// Parse CLI names; std::invalid_argument listing the valid names otherwise.
ops::Activation parse_activation(const std::string& s);
PoolSpec parse_pool(const std::string& s);
InitScheme parse_init(const std::string& s);

/// The CLI's choices, one list each (flags, help and errors come from these). kPoolNames are the fixed names; Lp
/// pooling is "lp" followed by its exponent.
inline const std::vector<std::string> kPoolNames{"max", "l2", "avg", "lpP", "stochastic"};
inline const std::vector<std::string> kActivationNames{"sigmoid", "relu", "tanh"};
inline const std::vector<std::string> kInitNames{"network3", "pytorch"};

}  // namespace xg::mnist
