// Forward values and gradients against PyTorch 1.13 golden fixtures (tests/fixtures/golden.json, made by
// scripts/gen_golden.py). float32, atol 1e-5, rtol 1e-4.
#include <fstream>
#include <nlohmann/json.hpp>

#include "helpers.h"

using namespace xg;

namespace {

Tensor<float> decode(const nlohmann::json& j) {
  Shape s = j.at("shape").get<Shape>();
  Tensor<float> t = Tensor<float>::from_shape(s);
  const auto& d = j.at("data");
  REQUIRE(d.size() == t.size());
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = d[i].get<float>();
  return t;
}

void check_close(const std::string& what, const Tensor<float>& got, const Tensor<float>& want) {
  CAPTURE(what);
  REQUIRE(got.shape() == want.shape());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double a = got.data()[i], b = want.data()[i];
    if (!(std::abs(a - b) <= 1e-5 + 1e-4 * std::abs(b))) {
      FAIL_CHECK(what << " element " << i << ": xgrad " << a << " vs PyTorch " << b);
      return;
    }
  }
}

ops::Size2 size2(const nlohmann::json& j) { return {j.at(0).get<std::int64_t>(), j.at(1).get<std::int64_t>()}; }

}  // namespace

TEST_CASE("every op with a PyTorch counterpart matches PyTorch golden values (tests/fixtures/golden.json)") {
  std::ifstream in(std::string(XGRAD_FIXTURES_DIR) + "/golden.json");
  REQUIRE(in.good());
  const auto doc = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& c : doc.at("cases")) {
    const std::string op = c.at("op"), name = c.at("name");
    CAPTURE(name);
    std::map<std::string, Variable<float>> v;
    for (const auto& [k, t] : c.at("inputs").items()) v[k] = Variable<float>(decode(t), true);
    const auto& p = c.at("params");
    Variable<float> y;
    if (op == "conv2d") y = ops::conv2d(v["x"], v["w"], v["b"], size2(p["stride"]), size2(p["padding"]), size2(p["dilation"]));
    else if (op == "max_pool2d") y = ops::max_pool2d(v["x"], size2(p["kernel"]), size2(p["stride"]), size2(p["padding"]));
    else if (op == "l2_pool2d") y = ops::l2_pool2d(v["x"], size2(p["kernel"]), size2(p["stride"]), size2(p["padding"]));
    else if (op == "lp_pool2d")
      y = ops::lp_pool2d(v["x"], p.at("p").get<double>(), size2(p["kernel"]), size2(p["stride"]), size2(p["padding"]));
    else if (op == "sqrt") y = ops::sqrt(v["x"]);
    else if (op == "pow") y = ops::pow(v["x"], p.at("p").get<float>());
    else if (op == "abs") y = ops::abs(v["x"]);
    else if (op == "clamp") y = ops::clamp(v["x"], p.at("lo").get<float>(), p.at("hi").get<float>());
    else if (op == "maximum") y = ops::maximum(v["a"], v["b"]);
    else if (op == "minimum") y = ops::minimum(v["a"], v["b"]);
    else if (op == "rsub_rdiv") y = (1 - v["x"]) * (2 / v["x"]);
    else if (op == "leaky_relu") y = ops::leaky_relu(v["x"], p.at("slope").get<float>());
    else if (op == "elu") y = ops::elu(v["x"], p.at("alpha").get<float>());
    else if (op == "gelu")
      y = ops::gelu(v["x"], p.at("approximate") == "tanh" ? ops::GeluApproximation::Tanh : ops::GeluApproximation::None);
    else if (op == "softplus") y = ops::softplus(v["x"], p.at("beta").get<float>(), p.at("threshold").get<float>());
    else if (op == "silu") y = ops::silu(v["x"]);
    else if (op == "permute") y = ops::permute(v["x"], p.at("dims").get<std::vector<std::int64_t>>());
    else if (op == "cat") y = ops::cat(std::vector{v["a"], v["b"]}, p.at("dim").get<std::int64_t>());
    else if (op == "bmm") y = ops::bmm(v["a"], v["b"]);
    else if (op == "batch_norm")
      y = ops::batch_norm(v["x"], static_cast<Tensor<float>*>(nullptr), static_cast<Tensor<float>*>(nullptr), v["w"], v["b"], true);
    else if (op == "layer_norm") y = ops::layer_norm(v["x"], p.at("shape").get<Shape>(), v["w"], v["b"]);
    else if (op == "adaptive_avg_pool2d") y = ops::adaptive_avg_pool2d(v["x"], size2(p["size"]));
    else if (op == "conv_transpose2d")
      y = ops::conv_transpose2d(v["x"], v["w"], v["b"], size2(p["stride"]), size2(p["padding"]), size2(p["output_padding"]),
                                size2(p["dilation"]));
    else if (op == "stack") y = ops::stack(std::vector{v["a"], v["b"]}, p.at("dim").get<std::int64_t>());
    else if (op == "narrow")
      y = ops::narrow(v["x"], p.at("dim").get<std::int64_t>(), p.at("start").get<std::size_t>(), p.at("length").get<std::size_t>());
    else if (op == "index_select")
      y = ops::index_select(v["x"], p.at("dim").get<std::int64_t>(), p.at("index").get<std::vector<std::int64_t>>());
    else if (op == "chunk") {
      const auto c3 = ops::chunk(v["x"], p.at("chunks").get<std::size_t>(), p.at("dim").get<std::int64_t>());
      y = ops::cat(std::vector{c3[2], c3[0], c3[1] * 2.0f}, p.at("dim").get<std::int64_t>());
    } else if (op == "max_dim") y = ops::max(v["x"], p.at("dim").get<std::int64_t>(), p.at("keepdim").get<bool>()).values;
    else if (op == "min_dim") y = ops::min(v["x"], p.at("dim").get<std::int64_t>(), p.at("keepdim").get<bool>()).values;
    else if (op == "where") {
      const auto flags = p.at("cond").get<std::vector<bool>>();
      Tensor<bool> cond = Tensor<bool>::from_shape(v["a"].shape());
      std::copy(flags.begin(), flags.end(), cond.begin());
      y = ops::where(cond, v["a"], v["b"]);
    } else if (op == "avg_pool2d") y = ops::avg_pool2d(v["x"], size2(p["kernel"]), size2(p["stride"]), size2(p["padding"]));
    else if (op == "matmul") y = ops::matmul(v["a"], v["b"]);
    else if (op == "linear") y = ops::linear(v["x"], v["w"], v["b"]);
    else if (op == "cross_entropy") y = ops::cross_entropy(v["x"], c.at("labels").get<ops::Labels>());
    else FAIL("unknown op in fixture: " << op);
    check_close(name + " output", y.value(), decode(c.at("output")));
    y.backward(decode(c.at("grad_output")));
    for (const auto& [k, g] : c.at("grads").items()) check_close(name + " grad " + k, v[k].grad(), decode(g));
    ++checked;
  }
  CHECK(checked == 45);
}
