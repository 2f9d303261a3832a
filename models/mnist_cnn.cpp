#include "models/mnist_cnn.h"

#include <cmath>
#include <stdexcept>

#include "nn/init.h"

namespace xg::mnist {

MnistCnnConfig MnistCnnConfig::preset(const std::string& name) {
  MnistCnnConfig c;
  if (name == "seed") return c;
  if (name == "seed-l2") {
    c.set_pool(nn::PoolKind::L2);
    return c;
  }
  if (name == "deep") {
    c.stages = {ConvStage{20, 5, nn::PoolKind::Max, 2}, ConvStage{40, 5, nn::PoolKind::Max, 2}};
    c.hidden = {100};
    c.activation = Activation::Relu;
    c.init = InitScheme::PyTorch;  // network3's N(0, 1) biases suit sigmoid units, not ReLU (docs/mnist.md, results)
    return c;
  }
  throw std::invalid_argument("unknown architecture '" + name + "' (valid: seed, seed-l2, deep)");
}

void MnistCnnConfig::set_pool(nn::PoolKind kind, double p) {
  for (auto& s : stages) {
    s.pool = kind;
    s.pool_p = p;
  }
}

std::string MnistCnnConfig::layout() const {
  std::string s;
  std::size_t side = 28, channels = 1;
  for (const auto& st : stages) {
    s += "conv" + std::to_string(st.maps) + "@" + std::to_string(st.kernel) + "x" + std::to_string(st.kernel) + "-" +
         to_string(activation) + "-" + pool_name(st.pool, st.pool_p) + (st.pool == nn::PoolKind::Lp ? "/" : "") +
         std::to_string(st.pool_size) + " ";
    side = (side - st.kernel + 1) / st.pool_size;
    channels = st.maps;
  }
  s += "| fc";
  s += std::to_string(channels * side * side);
  for (auto h : hidden) {
    s += '-';
    s += std::to_string(h);
  }
  s += "-10";
  if (dropout > 0) {
    s += " dropout";
    s += std::to_string(dropout).substr(0, 4);
  }
  return s;
}

template <class T>
MnistCnn<T>::MnistCnn(const MnistCnnConfig& config, Rng& rng) : config_(config), rng_(&rng) {
  this->set_type("MnistCnn", {{"activation", ops::to_string(config.activation)}, {"dropout", config.dropout}});
  if (!(config.dropout >= 0.0 && config.dropout < 1.0))
    throw std::invalid_argument("MnistCnn: dropout must be in [0, 1), got " + std::to_string(config.dropout));
  std::size_t side = 28, channels = 1;
  for (std::size_t i = 0; i < config.stages.size(); ++i) {
    const auto& st = config.stages[i];
    if (st.maps == 0 || st.kernel == 0 || st.pool_size == 0 || st.kernel > side ||
        (side - st.kernel + 1) / st.pool_size == 0)
      throw std::invalid_argument("MnistCnn: stage " + std::to_string(i + 1) + " (" + std::to_string(st.maps) +
                                  " maps, kernel " + std::to_string(st.kernel) + ", pool " +
                                  std::to_string(st.pool_size) + ") does not fit a " + std::to_string(side) + "x" +
                                  std::to_string(side) + " input");
    const auto kernel = static_cast<std::int64_t>(st.kernel), pool_size = static_cast<std::int64_t>(st.pool_size);
    // The activation is fused into the convolution's output pass. The pools are submodules too (no parameters: the
    // names stay conv1.weight, …), so train/eval and set_generator reach stochastic pooling.
    convs_.push_back(&this->register_module(
        "conv" + std::to_string(i + 1),
        std::make_shared<nn::Conv2d<T>>(nn::Conv2dOptions{.in = channels, .out = st.maps, .kernel = kernel, .activation = config.activation}, rng)));
    pools_.push_back(&this->register_module(
        "pool" + std::to_string(i + 1), std::make_shared<nn::Pool2d<T>>(st.pool, nn::Pool2dOptions{.kernel = pool_size, .p = st.pool_p})));
    pools_.back()->set_generator(rng);
    side = (side - st.kernel + 1) / st.pool_size;
    channels = st.maps;
  }
  std::size_t in = channels * side * side;
  for (std::size_t h : config.hidden) {
    if (h == 0) throw std::invalid_argument("MnistCnn: a hidden layer has 0 units");
    fcs_.push_back(&this->register_module("fc" + std::to_string(fcs_.size() + 1), std::make_shared<nn::Linear<T>>(in, h, rng)));
    in = h;
  }
  fcs_.push_back(&this->register_module("fc" + std::to_string(fcs_.size() + 1), std::make_shared<nn::Linear<T>>(in, 10, rng)));

  if (config.init == InitScheme::Network3) {
    // network3.py: conv weights N(0, 1/n_out) with n_out = maps·k²/pool²; FC weights N(0, 1/n_out); biases N(0, 1);
    // the softmax layer starts at zero.
    for (std::size_t i = 0; i < convs_.size(); ++i) {
      const auto& st = config.stages[i];
      const double n_out = static_cast<double>(st.maps * st.kernel * st.kernel) / static_cast<double>(st.pool_size * st.pool_size);
      nn::init::normal_(convs_[i]->weight, 0.0, std::sqrt(1.0 / n_out), rng);
      nn::init::normal_(convs_[i]->bias, 0.0, 1.0, rng);
    }
    for (std::size_t i = 0; i + 1 < fcs_.size(); ++i) {
      nn::init::normal_(fcs_[i]->weight, 0.0, std::sqrt(1.0 / static_cast<double>(fcs_[i]->weight.shape()[0])), rng);
      nn::init::normal_(fcs_[i]->bias, 0.0, 1.0, rng);
    }
    nn::init::zeros_(fcs_.back()->weight);
    nn::init::zeros_(fcs_.back()->bias);
  }
}

template <class T>
Variable<T> MnistCnn<T>::activate(const Variable<T>& x) const {
  return ops::activation(x, config_.activation);
}

template <class T>
Variable<T> MnistCnn<T>::forward(const Variable<T>& images) {
  const Shape s = images.shape();
  if (s.size() != 4 || s[1] != 1 || s[2] != 28 || s[3] != 28)
    throw ShapeError("MnistCnn: expected images of shape [N,1,28,28], got " + shape_str(s));
  Variable<T> h = images;
  // The activation is fused into the convolution, and a max-pool into both (nn::conv2d_pool: the same bits).
  for (std::size_t i = 0; i < convs_.size(); ++i) h = nn::conv2d_pool(*convs_[i], *pools_[i], h);
  h = ops::flatten(h);
  for (std::size_t i = 0; i < fcs_.size(); ++i) {
    if (i > 0) h = ops::dropout(h, config_.dropout, this->is_training(), *rng_);
    h = (*fcs_[i])(h);
    if (i + 1 < fcs_.size()) h = activate(h);
  }
  return h;
}

template <class T>
std::vector<Variable<T>> MnistCnn<T>::feature_maps(const Variable<T>& images) {
  std::vector<Variable<T>> maps;
  Variable<T> h = images;
  for (std::size_t i = 0; i < convs_.size(); ++i) {
    maps.push_back((*convs_[i])(h));
    maps.push_back((*pools_[i])(maps.back()));
    h = maps.back();
  }
  return maps;
}

template <class T>
ModelOptions MnistCnn<T>::options() const {
  return {config_.stages.empty() ? nn::PoolKind::Max : config_.stages[0].pool,
          config_.stages.empty() ? 3.0 : config_.stages[0].pool_p, config_.activation, config_.dropout,
          config_.init};
}

template class MnistCnn<float>;
template class MnistCnn<double>;

}  // namespace xg::mnist
