#pragma once
/// \file module.h
/// `Module` (registered parameters, buffers and submodules; train/eval; zero_grad), `Layer` (a module with
/// `forward(x)`) and `Sequential`.
///
/// As in PyTorch's C++ frontend, a module declares its parts once, in its constructor:
///
///     Net(Rng& rng) : conv({.in = 1, .out = 3, .kernel = 5}, rng), fc(432, 10, rng) {
///       this->register_module("conv", conv);
///       this->register_module("fc", fc);
///     }
///
/// and everything else follows from those registrations: `named_parameters`/`named_buffers`/`named_children` with
/// dotted names, train/eval, zero_grad, set_generator, nn::summary, checkpoints (`xg::save`/`load`) and the
/// architecture identity a checkpoint stores (`architecture()`: the module's type and settings, `set_type`, with
/// those of every registered submodule). A new layer is its constructor and `forward`, nothing else.
///
/// A registered part is either a **member** of the module (an lvalue: the module remembers where in the object it
/// lives, so copies and moves of the module stay consistent) or **owned** by the module (an rvalue Variable or
/// Tensor, or a `std::shared_ptr` to a submodule: how a module built at run time, such as a graph read from a file,
/// or a `Sequential` holds its parts).

#include <charconv>
#include <concepts>
#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/errors.h"
#include "core/random.h"
#include "core/variable.h"

namespace xg::nn {

template <class T>
using NamedParameter = std::pair<std::string, Variable<T>>;
/// A buffer: a tensor owned by the module, saved in checkpoints, not a parameter (no gradient, not optimized).
template <class T>
using NamedBuffer = std::pair<std::string, Tensor<T>*>;

/// One hyper-parameter of a module as its architecture record holds it: a name and a value in one canonical text
/// form (integers in decimal, floating-point numbers in their shortest round-trip form, booleans as true/false, and
/// anything with a `to_string` found by argument-dependent lookup, such as ops::Size2's "(5, 5)").
struct Setting {
  std::string name, value;
  template <class V>
  Setting(std::string n, const V& v) : name(std::move(n)), value(text(v)) {}

 private:
  template <class V>
  static std::string text(const V& v) {
    if constexpr (std::is_same_v<V, bool>) {
      return v ? "true" : "false";
    } else if constexpr (std::is_arithmetic_v<V>) {
      char buf[64];
      const auto r = std::to_chars(buf, buf + sizeof buf, v);
      return std::string(buf, r.ptr);
    } else if constexpr (std::is_convertible_v<const V&, std::string>) {
      return std::string(v);
    } else if constexpr (std::is_same_v<V, Shape>) {
      return shape_str(v);
    } else {
      using std::to_string;
      return to_string(v);
    }
  }
};
using Settings = std::vector<Setting>;

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
  virtual ~Module() = default;

  /// Registers `member`, a Variable member of this module, as the parameter `name`; returns it. Names are non-empty,
  /// contain no '.', and are unique among the module's parameters, buffers and submodules (std::invalid_argument
  /// otherwise). A parameter that is undefined (a Linear built without bias) is skipped by named_parameters.
  Variable<T>& register_parameter(std::string name, Variable<T>& member) { return add_member(params_, std::move(name), member); }
  /// Registers a parameter the module owns (a module built at run time); returns the stored Variable.
  Variable<T>& register_parameter(std::string name, Variable<T>&& value) { return add_owned(params_, std::move(name), std::move(value)); }
  /// Registers `member`, a tensor member of this module, as the buffer `name`: saved and loaded with the module,
  /// never trained (a BatchNorm's running statistics).
  Tensor<T>& register_buffer(std::string name, Tensor<T>& member) { return add_member(buffers_, std::move(name), member); }
  /// Registers a buffer the module owns; returns the stored tensor.
  Tensor<T>& register_buffer(std::string name, Tensor<T>&& value) { return add_owned(buffers_, std::move(name), std::move(value)); }
  /// Registers `member`, a module member of this one, as the submodule `name`; returns it.
  template <std::derived_from<Module> M>
  M& register_module(std::string name, M& member) {
    return static_cast<M&>(add_member(children_, std::move(name), static_cast<Module&>(member)));
  }
  /// Registers a submodule this module owns (shared, as libtorch's module holders are); returns it.
  template <std::derived_from<Module> M>
  M& register_module(std::string name, std::shared_ptr<M> module) {
    if (!module) throw std::invalid_argument(type_ + ": register_module('" + name + "') was given no module");
    M& ref = *module;
    add_entry(children_, std::move(name), std::shared_ptr<Module>(std::move(module)), 0);
    return ref;
  }

  /// This module's parameters, named like PyTorch's state_dict keys ("conv1.weight"): its own in registration
  /// order, then each submodule's (depth first) when `recurse`. Undefined parameters are left out.
  std::vector<NamedParameter<T>> named_parameters(bool recurse = true) const;
  /// The buffers, named and ordered as named_parameters ("bn1.running_mean").
  std::vector<NamedBuffer<T>> named_buffers(bool recurse = true);
  /// The direct submodules by name, in registration order.
  std::vector<std::pair<std::string, Module*>> named_children();
  std::vector<std::pair<std::string, const Module*>> named_children() const;
  std::vector<Variable<T>> parameters(bool recurse = true) const;
  /// Total number of parameter elements.
  std::size_t num_parameters() const;

  /// Training mode (dropout active) for this module and all submodules.
  void train(bool on = true);
  /// Evaluation mode: train(false).
  void eval() { train(false); }
  bool is_training() const { return training_; }
  /// Drops every parameter's gradient.
  void zero_grad();
  /// The generator this module's stochastic layers (dropout, stochastic pooling) draw from from now on; `rng` must
  /// outlive the module. Modules that draw override use_generator; the Trainer calls this with a generator it
  /// re-seeds every epoch from (seed, epoch, rank), which makes dropout masks reproducible, resumable and different
  /// on every rank.
  void set_generator(Rng& rng);

  /// The type set by set_type ("Conv2d"); "Module" for a module that never calls it.
  const std::string& type_name() const { return type_; }
  /// The settings set by set_type.
  const Settings& settings() const { return settings_; }
  /// One line: type, settings and submodules, "Net(conv=Conv2d(in=1, out=3, kernel=(5, 5), …), fc=Linear(…))".
  std::string describe() const;
  /// The architecture identity checkpoints store: a JSON record of the type, the settings and every registered
  /// submodule's record by name, {"type":…,"settings":{…},"children":[[name, record], …]}. Any differing stride,
  /// padding, size or pooling of xgrad's layers tells two modules apart; what the record cannot see is what no module
  /// states (a custom forward, a Lambda's function): a model states its own settings with set_type.
  std::string architecture() const;

 protected:
  // Protected: a module copies as its own class, never sliced to a bare Module. (Slicing a subclass with registered
  // members of its own to an intermediate class would leave their entries behind: copy a module as what it is.)
  Module(const Module&) = default;
  Module(Module&&) noexcept = default;
  Module& operator=(const Module&) = default;
  Module& operator=(Module&&) noexcept = default;

  /// Names this module's type and the settings that shape what it computes (not its parameter values), for
  /// describe() and architecture(). Called in the constructor, as the registrations are.
  void set_type(std::string type, Settings settings = {}) {
    type_ = std::move(type);
    settings_ = std::move(settings);
  }
  /// This module's own use of a generator (set_generator has reached it); submodules are handled by set_generator.
  virtual void use_generator(Rng&) {}

 private:
  /// A registered part: a member at `offset` bytes from this Module, or an owned object.
  template <class V>
  struct Entry {
    std::string name;
    std::ptrdiff_t offset = 0;
    std::shared_ptr<V> owned;
  };
  template <class V>
  V* get(const Entry<V>& e) {
    return e.owned ? e.owned.get() : reinterpret_cast<V*>(reinterpret_cast<char*>(this) + e.offset);
  }
  template <class V>
  const V* get(const Entry<V>& e) const {
    return e.owned ? e.owned.get() : reinterpret_cast<const V*>(reinterpret_cast<const char*>(this) + e.offset);
  }
  void check_name(const std::string& name) const;
  template <class V>
  void add_entry(std::vector<Entry<V>>& list, std::string name, std::shared_ptr<V> owned, std::ptrdiff_t offset) {
    check_name(name);
    list.push_back({std::move(name), offset, std::move(owned)});
  }
  /// The offset of `member` in this object, refused when it cannot be a member: before the object's start or more
  /// than kMaxObjectBytes after it (a local variable). An element of a container or a pointer's target must be
  /// registered as an owned part: the module cannot tell every such address from a member's.
  std::ptrdiff_t member_offset(const void* member, const std::string& name) const;
  template <class V>
  V& add_member(std::vector<Entry<V>>& list, std::string name, V& member) {
    const std::ptrdiff_t offset = member_offset(&member, name);
    add_entry(list, std::move(name), std::shared_ptr<V>(), offset);
    return member;
  }
  template <class V>
  V& add_owned(std::vector<Entry<V>>& list, std::string name, V&& value) {
    auto p = std::make_shared<V>(std::move(value));
    V& ref = *p;
    add_entry(list, std::move(name), std::move(p), 0);
    return ref;
  }

  std::vector<Entry<Variable<T>>> params_;
  std::vector<Entry<Tensor<T>>> buffers_;
  std::vector<Entry<Module>> children_;
  std::string type_ = "Module";
  Settings settings_;
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

/// Layers applied in order; submodules are named "0", "1", ... as in PyTorch.
template <class T = float>
class Sequential : public Layer<T> {
 public:
  Sequential() { this->set_type("Sequential"); }
  Sequential(Sequential&&) noexcept = default;
  Sequential& operator=(Sequential&&) noexcept = default;

  /// Appends a layer constructed in place and returns it.
  template <class L, class... Args>
  L& add(Args&&... args) {
    return push_back(std::make_shared<L>(std::forward<Args>(args)...));
  }
  /// Appends an existing layer (moved in).
  template <class L>
    requires(!std::is_pointer_v<L>)
  Sequential& push_back(L layer) {
    push_back(std::make_shared<L>(std::move(layer)));
    return *this;
  }
  /// Appends a shared layer and returns it.
  template <class L>
  L& push_back(std::shared_ptr<L> layer) {
    L& ref = this->register_module(std::to_string(layers_.size()), std::move(layer));
    layers_.push_back(&ref);
    return ref;
  }
  Variable<T> forward(const Variable<T>& x) override {
    Variable<T> h = x;
    for (auto* l : layers_) h = (*l)(h);
    return h;
  }
  std::size_t size() const { return layers_.size(); }
  Layer<T>& operator[](std::size_t i) { return *layers_.at(i); }

 private:
  std::vector<Layer<T>*> layers_;  ///< the registered submodules (owned through the registry)
};

}  // namespace xg::nn
