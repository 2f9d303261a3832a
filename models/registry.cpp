#include "models/registry.h"

#include <sstream>
#include <stdexcept>

#include "models/lenet5.h"
#include "models/mnist_cnn.h"

namespace xg::mnist {

namespace {
/// A factory for an MnistCnn preset with the CLI's overrides applied.
auto mnist_cnn(const std::string& preset) {
  return [preset](const ModelOptions& o, Rng& rng) -> std::unique_ptr<ImageClassifier<float>> {
    MnistCnnConfig c = MnistCnnConfig::preset(preset);
    if (o.pool) c.set_pool(*o.pool, o.pool_p.value_or(3.0));
    if (o.activation) c.activation = *o.activation;
    if (o.dropout && *o.dropout > 0 && c.hidden.empty())
    {
      std::ostringstream p;
      p << *o.dropout;
      throw std::invalid_argument("dropout " + p.str() + " has nothing to act on: the " + preset +
                                  " network has no hidden fully connected layer (dropout applies before each one; "
                                  "the deep network has one)");
    }
    if (o.dropout) c.dropout = *o.dropout;
    if (c.stages.front().pool == nn::PoolKind::Stochastic && c.activation == ops::Activation::Tanh)
      throw std::invalid_argument("stochastic pooling needs non-negative activations: tanh is not (use sigmoid or relu)");
    if (o.init) c.init = *o.init;
    return std::make_unique<MnistCnn<float>>(c, rng);
  };
}
}  // namespace

const std::vector<ModelEntry>& model_registry() {
  static const std::vector<ModelEntry> registry{
      {"seed", "the chapter's network: conv 3@5x5, sigmoid, max-pool 2, FC 432->10", false, mnist_cnn("seed")},
      {"seed-l2", "the seed network with L2 pooling", false, mnist_cnn("seed-l2")},
      {"deep", "conv 20@5x5, pool, conv 40@5x5, pool, FC 640->100->10, ReLU", true, mnist_cnn("deep")},
      {"lenet5", "LeNet-5: conv 6@5x5 pad 2, avg-pool, conv 16@5x5, avg-pool, FC 400->120->84->10, tanh", true,
       [](const ModelOptions& o, Rng& rng) -> std::unique_ptr<ImageClassifier<float>> {
         return std::make_unique<LeNet5<float>>(o, rng);
       }},
  };
  return registry;
}

const ModelEntry& find_model(const std::string& name) {
  for (const auto& e : model_registry())
    if (e.name == name) return e;
  throw std::invalid_argument("unknown architecture '" + name + "' (valid: " + model_list() + ")");
}

std::vector<std::string> model_names() {
  std::vector<std::string> out;
  for (const auto& e : model_registry()) out.push_back(e.name);
  return out;
}

std::string model_list() {
  std::string s;
  for (const auto& e : model_registry()) s += (s.empty() ? "" : ", ") + e.name;
  return s;
}

}  // namespace xg::mnist
