#pragma once
/// \file module.h
/// `Module` (parameters, train/eval, zero_grad), `Layer` (a module with `forward(x)`) and `Sequential`.
///
/// A module lists its own parameters (`own_parameters`) and its child modules (`children`); everything else
/// (named_parameters with dotted names, train/eval, zero_grad) follows from those two. Layers are plain value members
/// of the modules that use them; there is no pimpl holder and no registry.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/variable.h"

namespace xg::nn {

template <class T>
using NamedParameter = std::pair<std::string, Variable<T>>;

template <class T = float>
class Module {
 public:
  Module() = default;
  Module(const Module&) = default;
  Module(Module&&) noexcept = default;
  Module& operator=(const Module&) = default;
  Module& operator=(Module&&) noexcept = default;
  virtual ~Module() = default;

  /// This module's own parameters, without its children's (Linear: weight, bias).
  virtual std::vector<NamedParameter<T>> own_parameters() const { return {}; }
  /// The child modules by name, in order. Composite modules override this (return pointers to members).
  virtual std::vector<std::pair<std::string, Module*>> children() { return {}; }
  /// A one-line description (class and hyper-parameters), used in model summaries and checkpoints.
  virtual std::string describe() const { return "Module"; }

  /// All parameters, depth first, named like PyTorch's state_dict keys ("conv1.weight").
  std::vector<NamedParameter<T>> named_parameters() {
    std::vector<NamedParameter<T>> out = own_parameters();
    for (auto& [name, child] : children())
      for (auto& [pname, p] : child->named_parameters()) out.emplace_back(name + "." + pname, p);
    return out;
  }
  std::vector<Variable<T>> parameters() {
    std::vector<Variable<T>> out;
    for (auto& np : named_parameters()) out.push_back(np.second);
    return out;
  }
  /// Total number of parameter elements.
  std::size_t num_parameters() {
    std::size_t n = 0;
    for (auto& p : parameters()) n += p.numel();
    return n;
  }
  /// Training mode (dropout active) for this module and all children.
  void train(bool on = true) {
    training_ = on;
    for (auto& c : children()) c.second->train(on);
  }
  /// Evaluation mode: train(false).
  void eval() { train(false); }
  bool is_training() const { return training_; }
  /// Drops every parameter's gradient.
  void zero_grad() {
    for (auto& p : parameters()) p.zero_grad();
  }

 private:
  bool training_ = true;
};

/// A module with one input and one output.
template <class T = float>
class Layer : public Module<T> {
 public:
  virtual Variable<T> forward(const Variable<T>& x) = 0;
  Variable<T> operator()(const Variable<T>& x) { return forward(x); }
};

/// Layers applied in order; children are named "0", "1", ... as in PyTorch.
template <class T = float>
class Sequential : public Layer<T> {
 public:
  Sequential() = default;
  Sequential(Sequential&&) noexcept = default;
  Sequential& operator=(Sequential&&) noexcept = default;

  /// Appends a layer constructed in place and returns it.
  template <class L, class... Args>
  L& add(Args&&... args) {
    auto p = std::make_unique<L>(std::forward<Args>(args)...);
    L& ref = *p;
    layers_.push_back(std::move(p));
    return ref;
  }
  /// Appends an existing layer (moved in).
  template <class L>
  Sequential& push_back(L layer) {
    layers_.push_back(std::make_unique<L>(std::move(layer)));
    return *this;
  }
  Variable<T> forward(const Variable<T>& x) override {
    Variable<T> h = x;
    for (auto& l : layers_) h = l->forward(h);
    return h;
  }
  std::vector<std::pair<std::string, Module<T>*>> children() override {
    std::vector<std::pair<std::string, Module<T>*>> out;
    for (std::size_t i = 0; i < layers_.size(); ++i) out.emplace_back(std::to_string(i), layers_[i].get());
    return out;
  }
  std::string describe() const override {
    std::string s = "Sequential(";
    for (std::size_t i = 0; i < layers_.size(); ++i) s += (i ? ", " : "") + layers_[i]->describe();
    return s + ")";
  }
  std::size_t size() const { return layers_.size(); }
  Layer<T>& operator[](std::size_t i) { return *layers_.at(i); }

 private:
  std::vector<std::unique_ptr<Layer<T>>> layers_;
};

}  // namespace xg::nn
