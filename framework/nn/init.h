#pragma once
/// \file init.h
/// Seeded initialisers, named as `torch::nn::init` (the trailing underscore: they overwrite the Variable's value).
/// Each takes the generator to draw from (default: the process-wide generator seeded by `xg::manual_seed`).

#include <string>
#include <utility>

#include "core/random.h"
#include "core/variable.h"

namespace xg::nn::init {

enum class FanMode { FanIn, FanOut };
enum class Nonlinearity { Linear, Sigmoid, Tanh, Relu, LeakyRelu };

/// (fan_in, fan_out) of a weight: [out,in] -> (in, out); [out,in,kh,kw] -> (in·kh·kw, out·kh·kw).
std::pair<std::size_t, std::size_t> fans(const Shape& s);
/// The recommended gain for a nonlinearity (PyTorch's calculate_gain).
double calculate_gain(Nonlinearity nl, double param = 0.01);

template <class T> void uniform_(Variable<T>& v, double a, double b, Rng& rng = default_rng());
template <class T> void normal_(Variable<T>& v, double mean, double stddev, Rng& rng = default_rng());
template <class T> void constant_(Variable<T>& v, double value);
template <class T> void zeros_(Variable<T>& v);
/// U(-a, a), a = gain·sqrt(6/(fan_in+fan_out)).
template <class T> void xavier_uniform_(Variable<T>& v, double gain = 1.0, Rng& rng = default_rng());
/// N(0, gain²·2/(fan_in+fan_out)).
template <class T> void xavier_normal_(Variable<T>& v, double gain = 1.0, Rng& rng = default_rng());
/// U(-b, b), b = gain·sqrt(3/fan), gain = calculate_gain(nl, a).
template <class T>
void kaiming_uniform_(Variable<T>& v, double a = 0.0, FanMode mode = FanMode::FanIn,
                      Nonlinearity nl = Nonlinearity::LeakyRelu, Rng& rng = default_rng());
/// N(0, gain²/fan).
template <class T>
void kaiming_normal_(Variable<T>& v, double a = 0.0, FanMode mode = FanMode::FanIn,
                     Nonlinearity nl = Nonlinearity::LeakyRelu, Rng& rng = default_rng());
/// The book's initialisation (Nielsen, ch. 3): N(0, 1/fan_in), i.e. standard deviation 1/sqrt(fan_in).
template <class T> void book_normal_(Variable<T>& v, Rng& rng = default_rng());
/// PyTorch's default for Linear/Conv2d: weight kaiming_uniform_(a = sqrt(5)) = U(±1/sqrt(fan_in)); the bias
/// U(±1/sqrt(fan_in)) with the weight's fan_in.
template <class T> void pytorch_default_(Variable<T>& weight, Variable<T>* bias, Rng& rng = default_rng());

}  // namespace xg::nn::init
