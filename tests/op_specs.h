#pragma once
// The ops as the PyTorch comparisons call them: one table, read by the golden tests (tests/ops/test_golden.cpp, cases
// made by scripts/gen_golden.py) and by xgrad_torch_diff (tests/torch_diff/harness.cpp, cases made by
// scripts/torch_diff.py), in the spirit of PyTorch's OpInfo and tinygrad's helper_test_op. A spec names the op as
// the case files do, its inputs in call order (the golden cases name them; torch_diff passes them by position; a
// missing or null input is an undefined Variable) and how to call it with the case's JSON parameters — whose keys
// are the same in both generators. Adding an op to the comparisons is one line here and its cases in the scripts.
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/ops.h"

namespace xgt {

/// What an op may update besides its output (batch_norm's running statistics; null: none).
template <class T>
struct OpState {
  xg::Tensor<T>* running_mean = nullptr;
  xg::Tensor<T>* running_var = nullptr;
};

template <class T>
struct OpSpec {
  using Inputs = std::vector<xg::Variable<T>>;
  std::string name;
  std::vector<std::string> inputs;
  std::function<xg::Variable<T>(const Inputs&, const nlohmann::json&, OpState<T>&)> run;
};

namespace spec_detail {
using nlohmann::json;
inline xg::ops::Size2 size2(const json& j) {
  return j.is_array() ? xg::ops::Size2(j.at(0).get<std::int64_t>(), j.at(1).get<std::int64_t>())
                      : xg::ops::Size2(j.get<std::int64_t>());
}
inline std::optional<xg::ops::Size2> optional_size2(const json& p, const char* key) {
  if (!p.contains(key) || p[key].is_null()) return std::nullopt;
  return size2(p[key]);
}
inline xg::ops::Reduction reduction(const json& p) {
  const std::string r = p.value("reduction", "mean");
  return r == "sum" ? xg::ops::Reduction::Sum : r == "none" ? xg::ops::Reduction::None : xg::ops::Reduction::Mean;
}
inline xg::ops::Activation fused(const json& p) {
  const std::string a = p.value("fused", "none");
  return a == "relu" ? xg::ops::Activation::Relu
         : a == "sigmoid" ? xg::ops::Activation::Sigmoid
         : a == "tanh" ? xg::ops::Activation::Tanh
                       : xg::ops::Activation::None;
}
/// A number that may travel as "nan", "inf" or "-inf".
inline double number(const json& j) {
  if (!j.is_string()) return j.get<double>();
  const std::string s = j.get<std::string>();
  if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  return s == "inf" ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
}
template <class T>
T scalar(const json& p, const char* key, double fallback) {
  return static_cast<T>(p.contains(key) ? number(p[key]) : fallback);
}
}  // namespace spec_detail

/// Every op the comparisons know.
template <class T>
const std::vector<OpSpec<T>>& op_specs() {
  using namespace xg;
  using spec_detail::fused, spec_detail::optional_size2, spec_detail::reduction, spec_detail::size2;
  using json = nlohmann::json;
  using In = typename OpSpec<T>::Inputs;
  const auto sc = [](const json& p, const char* k, double f) { return spec_detail::scalar<T>(p, k, f); };
  static const std::vector<OpSpec<T>> specs{
      {"conv2d", {"x", "w", "b"},
       [](const In& v, const json& p, OpState<T>&) {
         return ops::conv2d(v[0], v[1], v[2], size2(p.value("stride", json(1))), size2(p.value("padding", json(0))),
                            size2(p.value("dilation", json(1))), fused(p));
       }},
      {"conv2d_max_pool2d", {"x", "w", "b"},
       [](const In& v, const json& p, OpState<T>&) {
         return ops::conv2d_max_pool2d(v[0], v[1], v[2], size2(p["pool"]), size2(p.value("stride", json(1))),
                                       size2(p.value("padding", json(0))), size2(p.value("dilation", json(1))), fused(p));
       }},
      {"conv_transpose2d", {"x", "w", "b"},
       [](const In& v, const json& p, OpState<T>&) {
         return ops::conv_transpose2d(v[0], v[1], v[2], size2(p.value("stride", json(1))), size2(p.value("padding", json(0))),
                                      size2(p.value("output_padding", json(0))), size2(p.value("dilation", json(1))));
       }},
      {"max_pool2d", {"x"},
       [](const In& v, const json& p, OpState<T>&) {
         return ops::max_pool2d(v[0], size2(p["kernel"]), optional_size2(p, "stride"), size2(p.value("padding", json(0))));
       }},
      {"avg_pool2d", {"x"},
       [](const In& v, const json& p, OpState<T>&) {
         return ops::avg_pool2d(v[0], size2(p["kernel"]), optional_size2(p, "stride"), size2(p.value("padding", json(0))),
                                p.value("count_include_pad", true));
       }},
      {"l2_pool2d", {"x"},
       [](const In& v, const json& p, OpState<T>&) {
         return ops::l2_pool2d(v[0], size2(p["kernel"]), optional_size2(p, "stride"), size2(p.value("padding", json(0))));
       }},
      {"lp_pool2d", {"x"},
       [](const In& v, const json& p, OpState<T>&) {
         return ops::lp_pool2d(v[0], p["p"].get<double>(), size2(p["kernel"]), optional_size2(p, "stride"),
                               size2(p.value("padding", json(0))));
       }},
      {"adaptive_avg_pool2d", {"x"},
       [](const In& v, const json& p, OpState<T>&) { return ops::adaptive_avg_pool2d(v[0], size2(p["output_size"])); }},
      {"linear", {"x", "w", "b"}, [](const In& v, const json&, OpState<T>&) { return ops::linear(v[0], v[1], v[2]); }},
      {"matmul", {"a", "b"}, [](const In& v, const json&, OpState<T>&) { return ops::matmul(v[0], v[1]); }},
      {"bmm", {"a", "b"}, [](const In& v, const json&, OpState<T>&) { return ops::bmm(v[0], v[1]); }},
      {"softmax", {"x"},
       [](const In& v, const json& p, OpState<T>&) { return ops::softmax(v[0], p.value("dim", std::int64_t(-1))); }},
      {"log_softmax", {"x"},
       [](const In& v, const json& p, OpState<T>&) { return ops::log_softmax(v[0], p.value("dim", std::int64_t(-1))); }},
      {"cross_entropy", {"x"},
       [](const In& v, const json& p, OpState<T>&) { return ops::cross_entropy(v[0], p["labels"].get<Labels>(), reduction(p)); }},
      {"nll_loss", {"x"},
       [](const In& v, const json& p, OpState<T>&) { return ops::nll_loss(v[0], p["labels"].get<Labels>(), reduction(p)); }},
      {"mse_loss", {"x", "y"}, [](const In& v, const json& p, OpState<T>&) { return ops::mse_loss(v[0], v[1], reduction(p)); }},
      {"batch_norm", {"x", "w", "b"},
       [](const In& v, const json& p, OpState<T>& s) {
         return ops::batch_norm(v[0], s.running_mean, s.running_var, v[1], v[2], p["training"].get<bool>(),
                                p.value("momentum", 0.1), p.value("eps", 1e-5));
       }},
      {"layer_norm", {"x", "w", "b"},
       [](const In& v, const json& p, OpState<T>&) {
         return ops::layer_norm(v[0], p["normalized_shape"].get<Shape>(), v[1], v[2], p.value("eps", 1e-5));
       }},
      {"group_norm", {"x", "w", "b"},
       [](const In& v, const json& p, OpState<T>&) {
         return ops::group_norm(v[0], p.at("groups").get<std::size_t>(), v[1], v[2], p.value("eps", 1e-5));
       }},
      {"gelu", {"x"},
       [](const In& v, const json& p, OpState<T>&) {
         return ops::gelu(v[0], p.value("approximate", "none") == "tanh" ? ops::GeluApproximation::Tanh : ops::GeluApproximation::None);
       }},
      {"elu", {"x"}, [sc](const In& v, const json& p, OpState<T>&) { return ops::elu(v[0], sc(p, "alpha", 1.0)); }},
      {"softplus", {"x"},
       [sc](const In& v, const json& p, OpState<T>&) { return ops::softplus(v[0], sc(p, "beta", 1.0), sc(p, "threshold", 20.0)); }},
      {"silu", {"x"}, [](const In& v, const json&, OpState<T>&) { return ops::silu(v[0]); }},
      {"leaky_relu", {"x"}, [sc](const In& v, const json& p, OpState<T>&) { return ops::leaky_relu(v[0], sc(p, "slope", 0.01)); }},
      {"relu", {"x"}, [](const In& v, const json&, OpState<T>&) { return ops::relu(v[0]); }},
      {"sigmoid", {"x"}, [](const In& v, const json&, OpState<T>&) { return ops::sigmoid(v[0]); }},
      {"tanh", {"x"}, [](const In& v, const json&, OpState<T>&) { return ops::tanh(v[0]); }},
      {"sqrt", {"x"}, [](const In& v, const json&, OpState<T>&) { return ops::sqrt(v[0]); }},
      {"pow", {"x"}, [sc](const In& v, const json& p, OpState<T>&) { return ops::pow(v[0], sc(p, "p", 1.0)); }},
      {"abs", {"x"}, [](const In& v, const json&, OpState<T>&) { return ops::abs(v[0]); }},
      {"clamp", {"x"},
       [sc](const In& v, const json& p, OpState<T>&) { return ops::clamp(v[0], sc(p, "lo", 0.0), sc(p, "hi", 0.0)); }},
      {"maximum", {"a", "b"}, [](const In& v, const json&, OpState<T>&) { return ops::maximum(v[0], v[1]); }},
      {"minimum", {"a", "b"}, [](const In& v, const json&, OpState<T>&) { return ops::minimum(v[0], v[1]); }},
      // A composite: rsub and rdiv in one case.
      {"rsub_rdiv", {"x"}, [](const In& v, const json&, OpState<T>&) { return (T(1) - v[0]) * (T(2) / v[0]); }},
      {"permute", {"x"},
       [](const In& v, const json& p, OpState<T>&) { return ops::permute(v[0], p.at("dims").get<std::vector<std::int64_t>>()); }},
      {"cat", {"a", "b"},
       [](const In& v, const json& p, OpState<T>&) { return ops::cat(std::vector{v[0], v[1]}, p.at("dim").get<std::int64_t>()); }},
      {"stack", {"a", "b"},
       [](const In& v, const json& p, OpState<T>&) { return ops::stack(std::vector{v[0], v[1]}, p.at("dim").get<std::int64_t>()); }},
      {"narrow", {"x"},
       [](const In& v, const json& p, OpState<T>&) {
         return ops::narrow(v[0], p.at("dim").get<std::int64_t>(), p.at("start").get<std::size_t>(), p.at("length").get<std::size_t>());
       }},
      {"index_select", {"x"},
       [](const In& v, const json& p, OpState<T>&) {
         return ops::index_select(v[0], p.at("dim").get<std::int64_t>(), p.at("index").get<std::vector<std::int64_t>>());
       }},
      // chunk's pieces, reordered and one scaled, so that every output's gradient is checked.
      {"chunk", {"x"},
       [](const In& v, const json& p, OpState<T>&) {
         const auto dim = p.at("dim").get<std::int64_t>();
         const auto c = ops::chunk(v[0], p.at("chunks").get<std::size_t>(), dim);
         return ops::cat(std::vector{c[2], c[0], c[1] * T(2)}, dim);
       }},
      {"max_dim", {"x"},
       [](const In& v, const json& p, OpState<T>&) {
         return ops::max(v[0], p.at("dim").get<std::int64_t>(), p.at("keepdim").get<bool>()).values;
       }},
      {"min_dim", {"x"},
       [](const In& v, const json& p, OpState<T>&) {
         return ops::min(v[0], p.at("dim").get<std::int64_t>(), p.at("keepdim").get<bool>()).values;
       }},
      {"where", {"a", "b"},
       [](const In& v, const json& p, OpState<T>&) {
         const auto flags = p.at("cond").get<std::vector<bool>>();
         Tensor<bool> cond = Tensor<bool>::from_shape(v[0].shape());
         if (flags.size() != cond.size()) throw std::runtime_error("where: cond does not match the inputs' shape");
         std::copy(flags.begin(), flags.end(), cond.begin());
         return ops::where(cond, v[0], v[1]);
       }},
  };
  return specs;
}

/// The spec named `name`; std::runtime_error naming it when there is none.
template <class T>
const OpSpec<T>& op_spec(const std::string& name) {
  for (const auto& s : op_specs<T>())
    if (s.name == name) return s;
  throw std::runtime_error("no op named '" + name + "' in tests/op_specs.h");
}

/// Calls the op with its inputs by position (missing ones undefined).
template <class T>
xg::Variable<T> run_op(const OpSpec<T>& spec, std::vector<xg::Variable<T>> inputs, const nlohmann::json& params,
                       OpState<T>& state) {
  if (inputs.size() > spec.inputs.size())
    throw std::runtime_error(spec.name + ": " + std::to_string(inputs.size()) + " inputs, the op takes " +
                             std::to_string(spec.inputs.size()));
  inputs.resize(spec.inputs.size());
  return spec.run(inputs, params, state);
}

}  // namespace xgt
