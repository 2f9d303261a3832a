// Forward values and gradients against PyTorch 1.13 golden fixtures (tests/fixtures/golden.json, made by
// scripts/gen_golden.py), each op called through its spec in tests/op_specs.h. float32, atol 1e-5, rtol 1e-4.
#include <fstream>
#include <nlohmann/json.hpp>

#include "helpers.h"
#include "op_specs.h"

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

}  // namespace

TEST_CASE("every op with a PyTorch counterpart matches PyTorch golden values (tests/fixtures/golden.json)") {
  std::ifstream in(std::string(XGRAD_FIXTURES_DIR) + "/golden.json");
  REQUIRE(in.good());
  const auto doc = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& c : doc.at("cases")) {
    const std::string op = c.at("op"), name = c.at("name");
    CAPTURE(name);
    // Inputs by the names the op's spec gives them (tests/op_specs.h, shared with xgrad_torch_diff).
    const xgt::OpSpec<float>& spec = xgt::op_spec<float>(op);
    std::map<std::string, Variable<float>> v;
    for (const auto& [k, t] : c.at("inputs").items()) {
      REQUIRE_MESSAGE(std::find(spec.inputs.begin(), spec.inputs.end(), k) != spec.inputs.end(), op << " has no input " << k);
      v[k] = Variable<float>(decode(t), true);
    }
    std::vector<Variable<float>> in;
    for (const auto& k : spec.inputs) in.push_back(v.count(k) ? v[k] : Variable<float>());
    xgt::OpState<float> state;
    const Variable<float> y = xgt::run_op(spec, in, c.at("params"), state);
    check_close(name + " output", y.value(), decode(c.at("output")));
    y.backward(decode(c.at("grad_output")));
    for (const auto& [k, g] : c.at("grads").items()) check_close(name + " grad " + k, v[k].grad(), decode(g));
    ++checked;
  }
  CHECK(checked == 46);
}
