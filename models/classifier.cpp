#include "models/classifier.h"

#include <stdexcept>

namespace xg::mnist {

namespace {
std::string names(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& n : v) s += (s.empty() ? "" : ", ") + n;
  return s;
}
}  // namespace

std::string to_string(nn::PoolKind p) { return p == nn::PoolKind::Max ? "max" : p == nn::PoolKind::L2 ? "l2" : "avg"; }
std::string to_string(InitScheme s) { return s == InitScheme::PyTorch ? "pytorch" : "network3"; }

ops::Activation parse_activation(const std::string& s) {
  if (s == "sigmoid") return ops::Activation::Sigmoid;
  if (s == "relu") return ops::Activation::Relu;
  if (s == "tanh") return ops::Activation::Tanh;
  throw std::invalid_argument("unknown activation '" + s + "' (valid: " + names(kActivationNames) + ")");
}
nn::PoolKind parse_pool(const std::string& s) {
  if (s == "max") return nn::PoolKind::Max;
  if (s == "l2") return nn::PoolKind::L2;
  if (s == "avg") return nn::PoolKind::Avg;
  throw std::invalid_argument("unknown pool '" + s + "' (valid: " + names(kPoolNames) + ")");
}
InitScheme parse_init(const std::string& s) {
  if (s == "network3") return InitScheme::Network3;
  if (s == "pytorch") return InitScheme::PyTorch;
  throw std::invalid_argument("unknown init '" + s + "' (valid: " + names(kInitNames) + ")");
}

}  // namespace xg::mnist
