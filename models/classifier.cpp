#include "models/classifier.h"

#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace xg::mnist {

namespace {
std::string names(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& n : v) s += (s.empty() ? "" : ", ") + n;
  return s;
}
}  // namespace

std::string pool_name(nn::PoolKind kind, double p) {
  switch (kind) {
    case nn::PoolKind::Max: return "max";
    case nn::PoolKind::L2: return "l2";
    case nn::PoolKind::Avg: return "avg";
    case nn::PoolKind::Stochastic: return "stochastic";
    case nn::PoolKind::Lp: break;
  }
  std::ostringstream s;
  s << "lp" << p;
  return s.str();
}
std::string to_string(InitScheme s) { return s == InitScheme::PyTorch ? "pytorch" : "network3"; }

ops::Activation parse_activation(const std::string& s) {
  if (s == "sigmoid") return ops::Activation::Sigmoid;
  if (s == "relu") return ops::Activation::Relu;
  if (s == "tanh") return ops::Activation::Tanh;
  throw std::invalid_argument("unknown activation '" + s + "' (valid: " + names(kActivationNames) + ")");
}
PoolSpec parse_pool(const std::string& s) {
  if (s == "max") return {nn::PoolKind::Max};
  if (s == "l2") return {nn::PoolKind::L2};
  if (s == "avg") return {nn::PoolKind::Avg};
  if (s == "stochastic") return {nn::PoolKind::Stochastic};
  if (s.size() > 2 && s.compare(0, 2, "lp") == 0) {
    const std::string num = s.substr(2);
    char* end = nullptr;
    const double p = std::strtod(num.c_str(), &end);
    // Decimal digits and one point only (no sign, exponent, hex, inf or nan), and p >= 1.
    if (num.find_first_not_of("0123456789.") == std::string::npos && end == num.c_str() + num.size() && p >= 1.0 &&
        p <= 1000.0) {
      if (p == 2.0) return {nn::PoolKind::L2};  // the same op
      return {nn::PoolKind::Lp, p};
    }
    throw std::invalid_argument("pool '" + s + "': Lp pooling is lp followed by an exponent from 1 to 1000 (e.g. lp3, lp1.5)");
  }
  throw std::invalid_argument("unknown pool '" + s + "' (valid: max, l2, avg, lpP with P >= 1 such as lp3, stochastic)");
}
InitScheme parse_init(const std::string& s) {
  if (s == "network3") return InitScheme::Network3;
  if (s == "pytorch") return InitScheme::PyTorch;
  throw std::invalid_argument("unknown init '" + s + "' (valid: " + names(kInitNames) + ")");
}

}  // namespace xg::mnist
