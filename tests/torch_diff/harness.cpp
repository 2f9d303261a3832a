// xgrad_torch_diff: the C++ side of scripts/torch_diff.py, differential testing against PyTorch. Reads a JSON list of
// cases ({"op", "params", "inputs": [{"shape", "data", "grad"} | {"alias": k} | null]}), runs each op on xgrad in
// float64 (or float32), back-propagates a fixed upstream gradient (sin(0.37·i + 1) + 0.25 at flat index i, the same
// on the PyTorch side) and writes, per case, the output, the inputs' gradients (and batch_norm's running statistics)
// or the error xgrad raised. Non-finite numbers travel as the strings "nan", "inf", "-inf". Each op is called through
// its spec in tests/op_specs.h, the table the golden tests use too.
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
#include "op_specs.h"
#include "ops/ops.h"

using json = nlohmann::json;
using namespace xg;

namespace {

using xgt::spec_detail::number;

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
    xgt::OpState<T> state{running ? &running_mean : nullptr, running ? &running_var : nullptr};
    Variable<T> y = xgt::run_op(xgt::op_spec<T>(c.at("op").get<std::string>()), in, p, state);
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
