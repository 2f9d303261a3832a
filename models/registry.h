#pragma once
/// \file registry.h
/// The model registry: one table, name → factory and description. `mnist --arch` takes its choices, its help text
/// and its error messages from here, and so do `mnist visualize`, `graph` and `--summary`. Adding a model is one file
/// in models/ (an ImageClassifier) and one line in registry.cpp.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "models/classifier.h"

namespace xg::mnist {

struct ModelEntry {
  std::string name;         ///< the --arch value
  std::string description;  ///< one line for --help and docs
  bool has_hidden_layers;   ///< whether --dropout has anything to act on
  /// Builds the model; initialisation draws from `rng`, which must outlive the model. Throws std::invalid_argument for
  /// an option the model does not support.
  std::function<std::unique_ptr<ImageClassifier<float>>(const ModelOptions&, Rng&)> make;
};

/// Every registered model, in the order --help lists them.
const std::vector<ModelEntry>& model_registry();
/// The entry named `name`; std::invalid_argument listing the names otherwise.
const ModelEntry& find_model(const std::string& name);
/// The registered names, in order.
std::vector<std::string> model_names();
/// "seed, seed-l2, deep, lenet5" (for help and error messages).
std::string model_list();

}  // namespace xg::mnist
