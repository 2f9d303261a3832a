// Module registration (register_parameter / register_buffer / register_module), what derives from it (names,
// train/eval, zero_grad, set_generator, the architecture record, checkpoints), and the layers' own records.
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "helpers.h"
#include "nn/layers.h"
#include "nn/serialize.h"

using namespace xg;
using namespace xg::nn;
namespace fs = std::filesystem;

namespace {
std::string temp(const std::string& name) {
  return (fs::temp_directory_path() / ("xgrad_mod_" + name + "_" + std::to_string(::getpid()))).string();
}

/// Every kind of registration: member and owned parameters and buffers, a member and a shared submodule.
struct Parts : Layer<double> {
  Variable<double> scale{full<double>({3}, 2.0), true};
  Tensor<double> count = zeros<double>({1});
  Linear<double> fc{3, 2};
  Parts() {
    set_type("Parts", {{"note", "x"}});
    register_parameter("scale", scale);
    register_parameter("shift", Variable<double>(zeros<double>({3}), true));
    register_buffer("count", count);
    register_buffer("seen", zeros<double>({2}));
    register_module("fc", fc);
    register_module("tail", std::make_shared<Dropout<double>>(0.5));
  }
  Parts(const Parts&) = default;
  Parts(Parts&&) = default;
  Variable<double> forward(const Variable<double>& x) override {
    count.data()[0] += 1;
    return fc(x * scale);
  }
};

/// A module assembled at run time from a description, as a graph read from a file is: parameters registered by name.
struct Assembled : Layer<double> {
  explicit Assembled(const std::vector<std::pair<std::string, Shape>>& weights) {
    set_type("Assembled", {{"weights", weights.size()}});
    for (const auto& [name, shape] : weights) names_.push_back(name), register_parameter(name, Variable<double>(full<double>(shape, 0.5), true));
  }
  Variable<double> forward(const Variable<double>& x) override {
    Variable<double> h = x;
    for (auto& [name, p] : named_parameters()) h = h * p;
    return h;
  }

 private:
  std::vector<std::string> names_;
};
}  // namespace

TEST_SUITE("modules") {

TEST_CASE("registered parameters, buffers and submodules give the dotted names, in registration order") {
  Parts m;
  std::vector<std::string> names;
  for (const auto& [n, p] : m.named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"scale", "shift", "fc.weight", "fc.bias"});
  CHECK(m.named_parameters(false).size() == 2);
  std::vector<std::string> buffers;
  for (const auto& [n, b] : m.named_buffers()) buffers.push_back(n);
  CHECK(buffers == std::vector<std::string>{"count", "seen"});
  const auto kids = m.named_children();
  REQUIRE(kids.size() == 2);
  CHECK(kids[0].first == "fc");
  CHECK(kids[0].second == &m.fc);
  CHECK(kids[1].second->type_name() == "Dropout");
  CHECK(m.num_parameters() == 3 + 3 + 6 + 2);
  // The registered parameter is the member itself, not a copy of its value.
  CHECK(m.named_parameters()[0].second.id() == m.scale.id());
  // A layer built without bias registers an undefined one, which is left out.
  CHECK(Linear<double>({.in = 3, .out = 2, .bias = false}).named_parameters().size() == 1);
}

TEST_CASE("train, eval, zero_grad and set_generator reach every registered submodule") {
  Parts m;
  m.eval();
  CHECK_FALSE(m.is_training());
  for (const auto& [n, c] : m.named_children()) CHECK_FALSE(c->is_training());
  m.train();
  for (const auto& [n, c] : m.named_children()) CHECK(c->is_training());
  ops::sum(m(Variable<double>(full<double>({4, 3}, 1.0)))).backward();
  CHECK(m.fc.weight.grad().size() == 6);
  m.zero_grad();
  for (auto& p : m.parameters()) CHECK_FALSE(p.has_grad());
  // set_generator reaches the shared Dropout: two generators with the same state draw the same mask.
  Rng a(5), b(5);
  auto& drop = static_cast<Dropout<double>&>(*m.named_children()[1].second);
  const Variable<double> x(full<double>({64}, 1.0));
  m.set_generator(a);
  const auto first = drop(x);
  m.set_generator(b);
  CHECK(xgt::bit_equal(first.value(), drop(x).value()));
}

TEST_CASE("registration refuses empty, dotted and repeated names, and a local variable that is not a member") {
  struct Bad : Layer<double> {
    Variable<double> w{zeros<double>({1}), true};
    Variable<double> forward(const Variable<double>& x) override { return x; }
    void add(const std::string& name) { register_parameter(name, w); }
    void add_local() {
      Variable<double> local(zeros<double>({1}), true);
      register_parameter("local", local);
    }
  };
  Bad b;
  CHECK_THROWS_WITH_AS(b.add(""), doctest::Contains("a registered name must be non-empty and contain no '.'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(b.add("a.b"), doctest::Contains("got 'a.b'"), std::invalid_argument);
  b.add("w");
  CHECK_THROWS_WITH_AS(b.add("w"), doctest::Contains("'w' is registered twice"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(b.add_local(), doctest::Contains("'local' is not a member of this module"), std::invalid_argument);
  CHECK(b.named_parameters().size() == 1);
}

TEST_CASE("a copied or moved module's registrations refer to the copy's own members") {
  Parts a;
  Parts b = a;
  b.count.data()[0] = 7.0;
  CHECK(a.named_buffers()[0].second == &a.count);
  CHECK(b.named_buffers()[0].second == &b.count);
  CHECK(a.named_buffers()[0].second->data()[0] == 0.0);
  CHECK(b.named_children()[0].second == &b.fc);
  Parts c = std::move(b);
  CHECK(c.named_buffers()[0].second == &c.count);
  CHECK(c.named_buffers()[0].second->data()[0] == 7.0);
  CHECK(c.named_children()[0].second == &c.fc);
}

TEST_CASE("a module assembled at run time registers its parameters by name and saves, loads and trains like any other") {
  Assembled a({{"alpha", {3}}, {"beta", {3}}});
  CHECK(a.named_parameters()[1].first == "beta");
  for (auto& p : a.parameters()) p.value().data()[1] = 3.0;
  const auto path = temp("assembled");
  xg::save(path, a);
  Assembled b({{"alpha", {3}}, {"beta", {3}}});
  xg::load(path, b);
  CHECK(b.named_parameters()[0].second.value().data()[1] == 3.0);
  ops::sum(b(Variable<double>(full<double>({3}, 1.0)))).backward();
  CHECK(b.parameters()[0].grad().data()[1] == doctest::Approx(3.0 * 1.0));
  Assembled other({{"alpha", {3}}});
  CHECK_THROWS_WITH_AS(xg::load(path, other), doctest::Contains("weights: the checkpoint has 2, this model 1"), CheckpointError);
  fs::remove(path);
}

TEST_CASE("the architecture record holds each module's type, settings and submodules, and names every difference") {
  Sequential<float> a, b;
  a.add<Conv2d<float>>(Conv2dOptions{.in = 1, .out = 3, .kernel = 5, .stride = 1});
  a.add<MaxPool2d<float>>(2);
  b.add<Conv2d<float>>(Conv2dOptions{.in = 1, .out = 3, .kernel = 5, .stride = 2, .padding = 1});
  b.add<AvgPool2d<float>>(2);
  CHECK(a.describe() == "Sequential(0=Conv2d(in=1, out=3, kernel=(5, 5), stride=(1, 1), padding=(0, 0), dilation=(1, 1), "
                        "bias=true, activation=none), 1=MaxPool2d(kernel=(2, 2), stride=(2, 2), padding=(0, 0)))");
  const std::string diff = architecture_difference(a.architecture(), b);
  CHECK(diff == "0.padding: the checkpoint has (0, 0), this model (1, 1); 0.stride: the checkpoint has (1, 1), this model (2, 2); "
                "1: the checkpoint has a MaxPool2d, this model a AvgPool2d");
  CHECK(architecture_difference(a.architecture(), a).empty());
  // No record (an earlier release's display string, or none): checked by the tensors alone.
  CHECK(architecture_difference("Sequential(Conv2d(1, 3, kernel=5x5))", b).empty());
  CHECK(architecture_difference("", b).empty());
  CHECK_THROWS_AS(architecture_difference("{not json", b), CheckpointError);
  // Crafted submodule lists are compared name by name and length first, never read past the model's list.
  auto crafted = nlohmann::json::parse(a.architecture());
  crafted["children"] = nlohmann::json::array({nlohmann::json::array({"0, 1", crafted["children"][0][1]})});
  CHECK(architecture_difference(crafted.dump(), b) == "the checkpoint has the submodules [0, 1], this model [0, 1]");
  crafted["children"] = nlohmann::json::array({nlohmann::json::array({"", crafted["children"][0][1]}),
                                               nlohmann::json::array({"0", crafted["children"][0][1]}),
                                               nlohmann::json::array({"1", crafted["children"][0][1]})});
  CHECK(architecture_difference(crafted.dump(), b).find("the checkpoint has the submodules [, 0, 1]") == 0);
  crafted["children"] = nlohmann::json::array({nlohmann::json::array({"0"}), nlohmann::json::array({"1"})});
  CHECK_THROWS_WITH_AS(architecture_difference(crafted.dump(), b), doctest::Contains("malformed"), CheckpointError);
  CHECK_THROWS_WITH_AS(architecture_difference(R"({"type": 3})", b), doctest::Contains("the architecture record is malformed"), CheckpointError);
}

TEST_CASE("activation layers and Lambda go into a Sequential and describe themselves with their settings") {
  Sequential<double> net;
  net.add<LeakyReLU<double>>(0.2);
  net.add<ELU<double>>();
  net.add<GELU<double>>(ops::GeluApproximation::Tanh);
  net.add<Softplus<double>>();
  net.add<SiLU<double>>();
  net.add<Lambda<double>>("Hardtanh", [](const Variable<double>& x) { return ops::clamp(x, -1.0, 1.0); });
  const auto y = net(Variable<double>(Tensor<double>{-2.0, 0.5}));
  CHECK(y.shape() == Shape{2});
  CHECK(net.describe() == "Sequential(0=LeakyReLU(negative_slope=0.2), 1=ELU(alpha=1), 2=GELU(approximate=tanh), "
                          "3=Softplus(beta=1, threshold=20), 4=SiLU, 5=Hardtanh)");
}

}  // TEST_SUITE
