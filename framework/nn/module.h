#pragma once
/// \file module.h
/// `Module` (parameters, train/eval, zero_grad), `Layer` (a module with `forward(x)`) and `Sequential`.
///
/// A module lists its own parameters (`own_parameters`), its own buffers (`own_buffers`: state that is saved and
/// loaded with the model but not trained, such as a batch norm's running statistics) and its child modules
/// (`children`); everything else (named_parameters and named_buffers with dotted names, train/eval, zero_grad,
/// set_generator) follows from those. Layers are plain value members of the modules that use them; there is no pimpl
/// holder and no registry.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "core/variable.h"

namespace xg::nn {

template <class T>
using NamedParameter = std::pair<std::string, Variable<T>>;
/// A buffer: a tensor owned by the module, saved in checkpoints, not a parameter (no gradient, not optimized).
template <class T>
using NamedBuffer = std::pair<std::string, Tensor<T>*>;

template <class T>
class Layer;
namespace detail {
/// Called after every Layer::operator() while set (nn::summary uses it; one per thread).
template <class T>
struct LayerObserver {
  virtual ~LayerObserver() = default;
  virtual void called(const Layer<T>& layer, const Variable<T>& input, const Variable<T>& output) = 0;
};
template <class T>
inline thread_local LayerObserver<T>* layer_observer = nullptr;
}  // namespace detail

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
  /// This module's own buffers, without its children's (a BatchNorm: running_mean, running_var).
  virtual std::vector<NamedBuffer<T>> own_buffers() { return {}; }
  /// The child modules by name, in order. Composite modules override this (return pointers to members).
  virtual std::vector<std::pair<std::string, Module*>> children() { return {}; }
  /// The generator this module's stochastic layers (dropout) draw from from now on; `rng` must outlive the module.
  /// Modules that draw override use_generator; the Trainer calls this with a generator it re-seeds every epoch from
  /// (seed, epoch, rank), which makes dropout masks reproducible, resumable and different on every rank.
  void set_generator(Rng& rng) {
    use_generator(rng);
    for (auto& c : children()) c.second->set_generator(rng);
  }
  /// A one-line description (class and hyper-parameters), used in model summaries and as the architecture identity
  /// checkpoints store. The default names the children with their descriptions — "Module(conv=Conv2d(1, 3, …),
  /// fc=Linear(432, 10))" — so a custom model that lists its layers in children() is told apart from one with other
  /// strides or sizes; a module without children is "Module".
  virtual std::string describe() const {
    auto kids = const_cast<Module*>(this)->children();  // children() only hands out pointers to members
    if (kids.empty()) return "Module";
    std::string s = "Module(";
    for (std::size_t i = 0; i < kids.size(); ++i) s += (i ? ", " : "") + kids[i].first + "=" + kids[i].second->describe();
    return s + ")";
  }

  /// All parameters, depth first, named like PyTorch's state_dict keys ("conv1.weight").
  std::vector<NamedParameter<T>> named_parameters() {
    std::vector<NamedParameter<T>> out = own_parameters();
    for (auto& [name, child] : children())
      for (auto& [pname, p] : child->named_parameters()) out.emplace_back(name + "." + pname, p);
    return out;
  }
  /// All buffers, depth first, with dotted names ("bn1.running_mean").
  std::vector<NamedBuffer<T>> named_buffers() {
    std::vector<NamedBuffer<T>> out = own_buffers();
    for (auto& [name, child] : children())
      for (auto& [bname, b] : child->named_buffers()) out.emplace_back(name + "." + bname, b);
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

 protected:
  /// This module's own use of a generator (set_generator has reached it); children are handled by set_generator.
  virtual void use_generator(Rng&) {}

 private:
  bool training_ = true;
};

/// A module with one input and one output.
template <class T = float>
class Layer : public Module<T> {
 public:
  virtual Variable<T> forward(const Variable<T>& x) = 0;
  /// forward(x), reported to nn::summary when it is recording.
  Variable<T> operator()(const Variable<T>& x) {
    Variable<T> y = forward(x);
    if (detail::layer_observer<T>) detail::layer_observer<T>->called(*this, x, y);
    return y;
  }
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
    for (auto& l : layers_) h = (*l)(h);
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
