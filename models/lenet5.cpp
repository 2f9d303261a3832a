#include "models/lenet5.h"

#include <sstream>
#include <stdexcept>

namespace xg::mnist {

namespace {
ModelOptions checked(const ModelOptions& o) {
  if (o.init && *o.init != InitScheme::PyTorch)
    throw std::invalid_argument("lenet5 is initialised the PyTorch way only (pytorch), not " + to_string(*o.init));
  if (o.pool == nn::PoolKind::Stochastic && o.activation.value_or(ops::Activation::Tanh) == ops::Activation::Tanh)
    throw std::invalid_argument("stochastic pooling needs non-negative activations: lenet5's tanh is not (choose relu or sigmoid)");
  if (o.dropout && !(*o.dropout >= 0.0 && *o.dropout < 1.0))
    throw std::invalid_argument("lenet5: dropout must be in [0, 1), got " + std::to_string(*o.dropout));
  return o;
}
}  // namespace

template <class T>
LeNet5<T>::LeNet5(const ModelOptions& o, Rng& rng)
    : pool_kind_(checked(o).pool.value_or(nn::PoolKind::Avg)),
      pool_p_(o.pool_p.value_or(3.0)),
      act_(o.activation.value_or(ops::Activation::Tanh)),
      dropout_(o.dropout.value_or(0.0)),
      // The activation is fused into each convolution's output pass: the same bits as a separate layer.
      conv1_({.in = 1, .out = 6, .kernel = 5, .padding = 2, .activation = act_}, rng),
      conv2_({.in = 6, .out = 16, .kernel = 5, .activation = act_}, rng),
      pool1_(pool_kind_, {.kernel = 2, .p = pool_p_}),
      pool2_(pool_kind_, {.kernel = 2, .p = pool_p_}),
      fc1_(400, 120, rng),
      fc2_(120, 84, rng),
      fc3_(84, 10, rng),
      rng_(&rng) {
  this->set_type("LeNet5", {{"activation", ops::to_string(act_)}, {"dropout", dropout_}});
  this->register_module("conv1", conv1_);
  this->register_module("pool1", pool1_);
  this->register_module("conv2", conv2_);
  this->register_module("pool2", pool2_);
  this->register_module("fc1", fc1_);
  this->register_module("fc2", fc2_);
  this->register_module("fc3", fc3_);
  pool1_.set_generator(rng);
  pool2_.set_generator(rng);
}

template <class T>
Variable<T> LeNet5<T>::forward(const Variable<T>& images) {
  const Shape s = images.shape();
  if (s.size() != 4 || s[1] != 1 || s[2] != 28 || s[3] != 28)
    throw ShapeError("LeNet5: expected images of shape [N,1,28,28], got " + shape_str(s));
  Variable<T> h = ops::flatten(nn::conv2d_pool(conv2_, pool2_, nn::conv2d_pool(conv1_, pool1_, images)));
  h = ops::activation(fc1_(h), act_);
  h = ops::activation(fc2_(ops::dropout(h, dropout_, this->is_training(), *rng_)), act_);
  return fc3_(ops::dropout(h, dropout_, this->is_training(), *rng_));
}

template <class T>
std::vector<Variable<T>> LeNet5<T>::feature_maps(const Variable<T>& images) {
  std::vector<Variable<T>> maps;
  maps.push_back(conv1_(images));
  maps.push_back(pool1_(maps.back()));
  maps.push_back(conv2_(maps.back()));
  maps.push_back(pool2_(maps.back()));
  return maps;
}

template <class T>
ModelOptions LeNet5<T>::options() const {
  return {pool_kind_, pool_p_, act_, dropout_, InitScheme::PyTorch};
}

template <class T>
std::string LeNet5<T>::previous_release_description() const {
  // The format of the release before the architecture record: its layers' describe() strings in order.
  std::ostringstream exponent;
  exponent << pool_p_;
  const std::string pool = (pool_kind_ == nn::PoolKind::Max ? "MaxPool2d(" : pool_kind_ == nn::PoolKind::L2 ? "L2Pool2d("
                            : pool_kind_ == nn::PoolKind::Avg ? "AvgPool2d(" : pool_kind_ == nn::PoolKind::Lp ? "LpPool2d(p=" + exponent.str() + ", "
                            : "StochasticPool2d(") + std::string("kernel=2x2, stride=2x2, padding=0x0)");
  const std::string act = ops::to_string(act_);
  std::string s = "LeNet5(Conv2d(1, 6, kernel=5x5, stride=1x1, padding=2x2, dilation=1x1, activation=" + act + "), " + pool +
                  ", Conv2d(6, 16, kernel=5x5, stride=1x1, padding=0x0, dilation=1x1, activation=" + act + "), " + pool +
                  ", Linear(400, 120), Linear(120, 84), Linear(84, 10), " + act;
  if (dropout_ > 0) s += ", dropout=" + std::to_string(dropout_).substr(0, 4);
  return s + ")";
}

template <class T>
std::string LeNet5<T>::layout() const {
  const std::string stage = std::string("-") + ops::to_string(act_) + "-" + pool_name(pool_kind_, pool_p_) + (pool_kind_ == nn::PoolKind::Lp ? "/" : "") + "2";
  return "conv6@5x5p2" + stage + " conv16@5x5" + stage + " | fc400-120-84-10" +
         (dropout_ > 0 ? " dropout" + std::to_string(dropout_).substr(0, 4) : "");
}

template class LeNet5<float>;
template class LeNet5<double>;

}  // namespace xg::mnist
