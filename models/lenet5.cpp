#include "models/lenet5.h"

#include <stdexcept>

namespace xg::mnist {

namespace {
ModelOptions checked(const ModelOptions& o) {
  if (o.init && *o.init != InitScheme::PyTorch)
    throw std::invalid_argument("lenet5 is initialised the PyTorch way only (--init pytorch), not --init " + to_string(*o.init));
  if (o.pool == nn::PoolKind::Stochastic && o.activation.value_or(ops::Activation::Tanh) == ops::Activation::Tanh)
    throw std::invalid_argument("--pool stochastic needs non-negative activations: lenet5's tanh is not (add --activation relu or sigmoid)");
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
      conv1_(1, 6, 5, 1, 2, 1, true, rng),
      conv2_(6, 16, 5, 1, 0, 1, true, rng),
      pool1_(pool_kind_, 2, std::nullopt, 0, pool_p_),
      pool2_(pool_kind_, 2, std::nullopt, 0, pool_p_),
      fc1_(400, 120, true, rng),
      fc2_(120, 84, true, rng),
      fc3_(84, 10, true, rng),
      rng_(&rng) {
  pool1_.set_generator(rng);
  pool2_.set_generator(rng);
  conv1_.activation = act_;  // fused into the convolution's output pass: the same bits as a separate layer
  conv2_.activation = act_;
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
std::vector<std::pair<std::string, nn::Module<T>*>> LeNet5<T>::children() {
  return {{"conv1", &conv1_}, {"pool1", &pool1_}, {"conv2", &conv2_}, {"pool2", &pool2_},
          {"fc1", &fc1_},     {"fc2", &fc2_},     {"fc3", &fc3_}};
}

template <class T>
std::string LeNet5<T>::describe() const {
  std::string s = "LeNet5(" + conv1_.describe() + ", " + pool1_.describe() + ", " + conv2_.describe() + ", " +
                  pool2_.describe() + ", " + fc1_.describe() + ", " + fc2_.describe() + ", " + fc3_.describe() + ", " +
                  ops::to_string(act_);
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
