// xgrad_torch_diff: the C++ side of scripts/torch_diff.py, differential testing against PyTorch. Reads a JSON list of
// cases ({"op", "params", "inputs": [{"shape", "data", "grad"} | {"alias": k} | null]}), runs each op on xgrad in
// float64 (or float32), back-propagates a fixed upstream gradient (sin(0.37·i + 1) + 0.25 at flat index i, the same
// on the PyTorch side) and writes, per case, the output, the inputs' gradients (and batch_norm's running statistics)
// or the error xgrad raised. Non-finite numbers travel as the strings "nan", "inf", "-inf".
//
//   xgrad_torch_diff CASES.json RESULTS.json [THREADS] [f64|f32]
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "core/files.h"
#include "core/parallel.h"
#include "ops/ops.h"

using json = nlohmann::json;
using namespace xg;

namespace {

double number(const json& j) {
  if (!j.is_string()) return j.get<double>();
  const std::string s = j.get<std::string>();
  if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  return s == "inf" ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
}

template <class T>
Tensor<T> tensor_of(const json& j) {
  Tensor<T> t = Tensor<T>::from_shape(j.at("shape").get<Shape>());
  const json& data = j.at("data");
  if (data.size() != t.size()) throw std::runtime_error("case data does not match its shape");
  std::size_t i = 0;
  for (auto& v : t) v = static_cast<T>(number(data[i++]));
  return t;
}

template <class T>
json values_of(const Tensor<T>& t) {
  json a = json::array();
  for (const T v : t) {
    if (std::isnan(v)) a.push_back("nan");
    else if (std::isinf(v)) a.push_back(v > 0 ? "inf" : "-inf");
    else a.push_back(static_cast<double>(v));
  }
  return a;
}

ops::Size2 size2(const json& j) {
  return j.is_array() ? ops::Size2(j[0].get<std::int64_t>(), j[1].get<std::int64_t>()) : ops::Size2(j.get<std::int64_t>());
}
std::optional<ops::Size2> optional_size2(const json& p, const char* key) {
  if (!p.contains(key) || p[key].is_null()) return std::nullopt;
  return size2(p[key]);
}
ops::Reduction reduction(const json& p) {
  const std::string r = p.value("reduction", "mean");
  return r == "sum" ? ops::Reduction::Sum : r == "none" ? ops::Reduction::None : ops::Reduction::Mean;
}
ops::Activation activation(const json& p) {
  const std::string a = p.value("fused", "none");
  return a == "relu" ? ops::Activation::Relu
         : a == "sigmoid" ? ops::Activation::Sigmoid
         : a == "tanh" ? ops::Activation::Tanh
                       : ops::Activation::None;
}

template <class T>
Variable<T> run_op(const std::string& op, const json& p, const std::vector<Variable<T>>& in, Tensor<T>* running_mean,
                   Tensor<T>* running_var) {
  const auto at = [&](std::size_t k) { return k < in.size() ? in[k] : Variable<T>(); };
  const auto scalar = [&](const char* key, double fallback) { return static_cast<T>(p.contains(key) ? number(p[key]) : fallback); };
  if (op == "conv2d")
    return ops::conv2d(at(0), at(1), at(2), size2(p["stride"]), size2(p["padding"]), size2(p["dilation"]), activation(p));
  if (op == "conv2d_max_pool2d")
    return ops::conv2d_max_pool2d(at(0), at(1), at(2), size2(p["pool"]), size2(p["stride"]), size2(p["padding"]),
                                  size2(p["dilation"]), activation(p));
  if (op == "conv_transpose2d")
    return ops::conv_transpose2d(at(0), at(1), at(2), size2(p["stride"]), size2(p["padding"]), size2(p["output_padding"]),
                                 size2(p["dilation"]));
  if (op == "max_pool2d") return ops::max_pool2d(at(0), size2(p["kernel"]), optional_size2(p, "stride"), size2(p["padding"]));
  if (op == "avg_pool2d")
    return ops::avg_pool2d(at(0), size2(p["kernel"]), optional_size2(p, "stride"), size2(p["padding"]),
                           p.value("count_include_pad", true));
  if (op == "l2_pool2d") return ops::l2_pool2d(at(0), size2(p["kernel"]), optional_size2(p, "stride"), size2(p["padding"]));
  if (op == "lp_pool2d")
    return ops::lp_pool2d(at(0), p["p"].get<double>(), size2(p["kernel"]), optional_size2(p, "stride"), size2(p["padding"]));
  if (op == "adaptive_avg_pool2d") return ops::adaptive_avg_pool2d(at(0), size2(p["output_size"]));
  if (op == "linear") return ops::linear(at(0), at(1), at(2));
  if (op == "matmul") return ops::matmul(at(0), at(1));
  if (op == "bmm") return ops::bmm(at(0), at(1));
  if (op == "softmax") return ops::softmax(at(0), p.value("dim", std::int64_t(-1)));
  if (op == "log_softmax") return ops::log_softmax(at(0), p.value("dim", std::int64_t(-1)));
  if (op == "cross_entropy") return ops::cross_entropy(at(0), p["labels"].get<ops::Labels>(), reduction(p));
  if (op == "nll_loss") return ops::nll_loss(at(0), p["labels"].get<ops::Labels>(), reduction(p));
  if (op == "mse_loss") return ops::mse_loss(at(0), at(1), reduction(p));
  if (op == "batch_norm")
    return ops::batch_norm(at(0), running_mean, running_var, at(1), at(2), p["training"].get<bool>(), p.value("momentum", 0.1),
                           p.value("eps", 1e-5));
  if (op == "layer_norm") return ops::layer_norm(at(0), p["normalized_shape"].get<Shape>(), at(1), at(2), p.value("eps", 1e-5));
  if (op == "gelu")
    return ops::gelu(at(0), p.value("approximate", "none") == "tanh" ? ops::GeluApproximation::Tanh : ops::GeluApproximation::None);
  if (op == "elu") return ops::elu(at(0), scalar("alpha", 1.0));
  if (op == "softplus") return ops::softplus(at(0), scalar("beta", 1.0), scalar("threshold", 20.0));
  if (op == "silu") return ops::silu(at(0));
  if (op == "leaky_relu") return ops::leaky_relu(at(0), scalar("slope", 0.01));
  if (op == "relu") return ops::relu(at(0));
  if (op == "sigmoid") return ops::sigmoid(at(0));
  if (op == "tanh") return ops::tanh(at(0));
  throw std::runtime_error("xgrad_torch_diff: no op named '" + op + "' in the harness");
}

template <class T>
json run_case(const json& c) {
  json result;
  std::vector<Variable<T>> in;
  for (const json& j : c.at("inputs")) {
    if (j.is_null()) in.emplace_back();
    else if (j.contains("alias")) in.push_back(in.at(j["alias"].get<std::size_t>()));
    else in.emplace_back(tensor_of<T>(j), j.value("grad", true));
  }
  const json p = c.value("params", json::object());
  Tensor<T> running_mean, running_var;
  const bool running = p.contains("running_mean");
  if (running) {
    running_mean = tensor_of<T>(p["running_mean"]);
    running_var = tensor_of<T>(p["running_var"]);
  }
  try {
    Variable<T> y = run_op<T>(c.at("op").get<std::string>(), p, in, running ? &running_mean : nullptr,
                              running ? &running_var : nullptr);
    Tensor<T> g = y.value();
    std::size_t i = 0;
    for (auto& v : g) v = static_cast<T>(std::sin(0.37 * static_cast<double>(i++) + 1.0) + 0.25);
    result["shape"] = y.shape();
    result["output"] = values_of(y.value());
    bool any = false;
    for (const auto& v : in) any = any || (v.defined() && v.requires_grad());
    if (any) y.backward(g);
    json grads = json::array();
    for (const auto& v : in)
      grads.push_back(v.defined() && v.requires_grad() && v.has_grad() ? values_of(v.grad()) : json(nullptr));
    result["grads"] = grads;
    if (running) {
      result["running_mean"] = values_of(running_mean);
      result["running_var"] = values_of(running_var);
    }
  } catch (const std::exception& e) {
    result["error"] = e.what();
  }
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: xgrad_torch_diff CASES.json RESULTS.json [THREADS] [f64|f32]\n");
    return 2;
  }
  try {
    xg::set_num_threads(argc > 3 ? std::stoul(argv[3]) : 1);
    const bool f32 = argc > 4 && std::string(argv[4]) == "f32";
    std::ifstream in(argv[1]);
    const json cases = json::parse(in);
    json out = json::array();
    for (const json& c : cases) out.push_back(f32 ? run_case<float>(c) : run_case<double>(c));
    const std::string text = out.dump();
    xg::files::write_atomic(argv[2], text.data(), text.size(), "results");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
