#include "nn/init.h"

#include <cmath>

namespace xg::nn::init {

std::pair<std::size_t, std::size_t> fans(const Shape& s) {
  if (s.size() < 2)
    throw ShapeError("init: fan in and fan out cannot be computed for a tensor of shape " + shape_str(s) +
                     " (fewer than 2 dimensions)");
  std::size_t receptive = 1;
  for (std::size_t i = 2; i < s.size(); ++i) receptive *= s[i];
  return {s[1] * receptive, s[0] * receptive};
}

double calculate_gain(Nonlinearity nl, double param) {
  switch (nl) {
    case Nonlinearity::Linear:
    case Nonlinearity::Sigmoid: return 1.0;
    case Nonlinearity::Tanh: return 5.0 / 3.0;
    case Nonlinearity::Relu: return std::sqrt(2.0);
    case Nonlinearity::LeakyRelu: return std::sqrt(2.0 / (1.0 + param * param));
  }
  return 1.0;
}

template <class T>
void uniform_(Variable<T>& v, double a, double b, Rng& rng) {
  v.bump_version();
  for (auto& e : v.value()) e = static_cast<T>(rng.uniform(a, b));
}
template <class T>
void normal_(Variable<T>& v, double mean, double stddev, Rng& rng) {
  v.bump_version();
  for (auto& e : v.value()) e = static_cast<T>(rng.normal(mean, stddev));
}
template <class T>
void constant_(Variable<T>& v, double value) {
  v.bump_version();
  for (auto& e : v.value()) e = static_cast<T>(value);
}
template <class T>
void zeros_(Variable<T>& v) {
  constant_(v, 0.0);
}
template <class T>
void xavier_uniform_(Variable<T>& v, double gain, Rng& rng) {
  const auto [fi, fo] = fans(v.shape());
  const double a = gain * std::sqrt(6.0 / static_cast<double>(fi + fo));
  uniform_(v, -a, a, rng);
}
template <class T>
void xavier_normal_(Variable<T>& v, double gain, Rng& rng) {
  const auto [fi, fo] = fans(v.shape());
  normal_(v, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fi + fo)), rng);
}
template <class T>
void kaiming_uniform_(Variable<T>& v, double a, FanMode mode, Nonlinearity nl, Rng& rng) {
  const auto [fi, fo] = fans(v.shape());
  const double fan = static_cast<double>(mode == FanMode::FanIn ? fi : fo);
  const double bound = calculate_gain(nl, a) * std::sqrt(3.0 / fan);
  uniform_(v, -bound, bound, rng);
}
template <class T>
void kaiming_normal_(Variable<T>& v, double a, FanMode mode, Nonlinearity nl, Rng& rng) {
  const auto [fi, fo] = fans(v.shape());
  const double fan = static_cast<double>(mode == FanMode::FanIn ? fi : fo);
  normal_(v, 0.0, calculate_gain(nl, a) / std::sqrt(fan), rng);
}
template <class T>
void book_normal_(Variable<T>& v, Rng& rng) {
  normal_(v, 0.0, 1.0 / std::sqrt(static_cast<double>(fans(v.shape()).first)), rng);
}
template <class T>
void pytorch_default_(Variable<T>& weight, Variable<T>* bias, Rng& rng) {
  kaiming_uniform_(weight, std::sqrt(5.0), FanMode::FanIn, Nonlinearity::LeakyRelu, rng);
  if (bias && bias->defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(fans(weight.shape()).first));
    uniform_(*bias, -bound, bound, rng);
  }
}

#define XG_INSTANTIATE(T)                                                                  \
  template void uniform_(Variable<T>&, double, double, Rng&);                              \
  template void normal_(Variable<T>&, double, double, Rng&);                               \
  template void constant_(Variable<T>&, double);                                           \
  template void zeros_(Variable<T>&);                                                      \
  template void xavier_uniform_(Variable<T>&, double, Rng&);                               \
  template void xavier_normal_(Variable<T>&, double, Rng&);                                \
  template void kaiming_uniform_(Variable<T>&, double, FanMode, Nonlinearity, Rng&);       \
  template void kaiming_normal_(Variable<T>&, double, FanMode, Nonlinearity, Rng&);        \
  template void book_normal_(Variable<T>&, Rng&);                                          \
  template void pytorch_default_(Variable<T>&, Variable<T>*, Rng&);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg::nn::init
