#pragma once
/// \file variable.h
/// `Variable` (a cheap-to-copy handle to a value in the graph), `Op` (a recorded graph node), `record()` (how an op
/// attaches itself to its output) and the grad-mode switch. See docs/architecture.md for ownership and the backward walk.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/tensor.h"

namespace xg {

template <class T>
class Op;
template <class T>
class Variable;

/// One optional gradient per input of an op; `std::nullopt` means "no gradient for this input".
template <class T>
using GradList = std::vector<std::optional<Tensor<T>>>;

namespace detail {
template <class OpT, class T, class... Args>
std::vector<Variable<T>> record_nodes(const char* name, bool per_output, std::vector<Tensor<T>> outs,
                                      std::vector<Variable<T>> inputs, Args&&... args);

/// Shared state behind a Variable. A leaf has no creator; an op output owns its creator (never the reverse).
///
/// Values nobody needs are freed early (flashlight's `withoutData`): the nodes of the graph hold their inputs through
/// uncounted handles, so an op output's value is released as soon as no counted handle (a user's Variable) and no
/// keeper (an op whose backward reads it: Op::keeps_input / keeps_output) is left. Its shape, creator and gradient
/// slot stay: the graph still runs through it. Leaves are never released, and a released value does not come back
/// (a handle copied later from `Op::inputs()` sees `has_value() == false`). The counters are atomic, but a graph is
/// used by one thread at a time (grad mode and recording are per thread), as in PyTorch's autograd.
template <class T>
struct VariableImpl {
  Tensor<T> value;
  std::atomic<std::size_t> handles{0};  ///< counted Variable handles (the user's)
  std::atomic<std::size_t> keepers{0};  ///< recorded ops whose backward reads this value
  bool value_released = false;          ///< the value was freed (nothing needed it); `released_shape` is its shape
  std::atomic<bool> release_claimed{false};  ///< set by the one call that releases (never twice)
  typename Tensor<T>::shape_type released_shape;  // inline storage for up to 4 dims: no allocation on release
  Shape value_shape() const {
    return value_released ? Shape(released_shape.begin(), released_shape.end()) : shape_of(value);
  }
  /// True when the value's shape (kept after a release) equals `s`; allocates nothing.
  template <class S>
  bool has_shape(const S& s) const {
    return value_released ? std::equal(s.begin(), s.end(), released_shape.begin(), released_shape.end())
                          : std::equal(s.begin(), s.end(), value.shape().begin(), value.shape().end());
  }
  /// Frees the value of an op output that no handle and no keeper needs any more.
  void release_value_if_unused();
  std::optional<Tensor<T>> grad;
  bool requires_grad = false;
  std::shared_ptr<Op<T>> creator;
  std::size_t output_index = 0;  ///< which output of `creator` this is (ops may have several)
  std::uint64_t version = 0;     ///< bumped by every in-place change of `value` (Variable::bump_version)
  std::string name;
  VariableImpl() = default;
  VariableImpl(const VariableImpl&) = delete;
  VariableImpl& operator=(const VariableImpl&) = delete;
  ~VariableImpl();  // tears long chains down iteratively (no recursion)
};
}  // namespace detail

/// True unless a NoGradGuard is alive on this thread.
bool is_grad_enabled();
/// Sets this thread's grad mode; prefer NoGradGuard.
void set_grad_enabled(bool enabled);

/// True while an AnomalyModeGuard is alive on this thread (off by default, like PyTorch's detect_anomaly).
bool is_anomaly_enabled();
/// Sets this thread's anomaly mode; prefer AnomalyModeGuard.
void set_anomaly_enabled(bool enabled);

/// RAII: while alive, every op checks its output, and backward checks every gradient an op returns, for NaN and Inf,
/// throwing NumericError that names the op. Costs one scan per tensor; meant for debugging.
class AnomalyModeGuard {
 public:
  explicit AnomalyModeGuard(bool enabled = true) : prev_(is_anomaly_enabled()) { set_anomaly_enabled(enabled); }
  ~AnomalyModeGuard() { set_anomaly_enabled(prev_); }
  AnomalyModeGuard(const AnomalyModeGuard&) = delete;
  AnomalyModeGuard& operator=(const AnomalyModeGuard&) = delete;

 private:
  bool prev_;
};

namespace detail {
/// Throws NumericError naming `op` and `what` if `t` holds a NaN or Inf (anomaly mode).
template <class T>
void check_finite(const char* op, const char* what, const Tensor<T>& t);
}  // namespace detail

/// RAII: while alive, ops on this thread record no graph (like `torch::NoGradGuard`).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(is_grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

/// A handle to a value in the dynamic graph: value, grad, requires_grad and the op that made it.
///
/// Copies are shallow (they share the value, the grad and the creator), as `torch::Tensor` and flashlight's
/// `Variable` are. Leaves (parameters, inputs) have no creator. A default-constructed Variable is undefined.
template <class T = float>
class Variable {
 public:
  using value_type = T;

  /// An undefined handle (`defined() == false`).
  Variable() = default;
  /// A leaf holding `value`.
  explicit Variable(Tensor<T> value, bool requires_grad = false);
  Variable(const Variable& other) : impl_(other.impl_) {
    if (impl_) impl_->handles.fetch_add(1, std::memory_order_relaxed);
  }
  Variable(Variable&& other) noexcept : impl_(std::move(other.impl_)), counted_(other.counted_), kept_(other.kept_) {
    other.counted_ = true;
    other.kept_ = false;
  }
  Variable& operator=(Variable other) noexcept {
    std::swap(impl_, other.impl_);
    std::swap(counted_, other.counted_);
    std::swap(kept_, other.kept_);
    return *this;
  }
  ~Variable() { drop_handle(); }

  bool defined() const { return impl_ != nullptr; }
  /// The value. A reference or pointer taken from it is valid while a handle to this Variable exists (like a
  /// torch::Tensor's storage): the value of an op output that no handle and no backward needs any more is freed (see
  /// detail::VariableImpl), so rebinding the last handle (`h = ops::relu(h)`) ends the old value's life. Throws
  /// GraphError for a released value (reachable only by walking the graph through `Op::inputs()`).
  const Tensor<T>& value() const { return live_value(); }
  /// Mutable value, for optimizers and loaders. Changing a value that a recorded graph still needs would make that
  /// graph's gradients wrong: whoever changes it calls bump_version() (the optimizers, xg::load, load_module, the
  /// initialisers and the distributed broadcast do), and a backward through an op that saved the old value then
  /// throws GraphError naming the op, as PyTorch's saved-tensor version check. Writes that skip bump_version() are
  /// not detected.
  Tensor<T>& value() { return live_value(); }
  /// How many in-place changes of the value were announced with bump_version() (PyTorch's `_version`).
  std::uint64_t version() const { return impl().version; }
  /// Announces an in-place change of value(): recorded ops that read this value in backward refuse to run.
  void bump_version() { ++impl().version; }
  /// False once the value of an op output was released because nothing needed it (see detail::VariableImpl).
  bool has_value() const { return !impl().value_released; }
  Shape shape() const { return impl().value_shape(); }
  std::size_t dim() const { return impl().value_released ? impl().released_shape.size() : impl().value.dimension(); }
  std::size_t numel() const;
  /// The single value of a one-element Variable.
  T item() const;

  bool requires_grad() const { return impl().requires_grad; }
  /// Leaves only: a non-leaf's flag follows from its inputs.
  Variable& set_requires_grad(bool on);
  bool is_leaf() const { return impl().creator == nullptr; }
  const std::shared_ptr<Op<T>>& creator() const { return impl().creator; }

  bool has_grad() const { return impl().grad.has_value(); }
  /// The accumulated gradient; throws GraphError when none has been accumulated.
  const Tensor<T>& grad() const;
  Tensor<T>& grad();
  /// Drops the accumulated gradient (PyTorch's `set_to_none` behaviour).
  void zero_grad() { impl().grad.reset(); }
  /// Replaces the accumulated gradient (e.g. with one averaged across processes); `g` must have the value's shape,
  /// else ShapeError.
  void set_grad(Tensor<T> g);

  /// A new leaf with a copy of the value, cut from the graph, not requiring grad.
  Variable detach() const;

  /// Backpropagates from this one-element Variable, seeding 1.
  void backward(bool retain_graph = false) const;
  /// Backpropagates `grad_output` (same shape as the value) from this Variable.
  void backward(const Tensor<T>& grad_output, bool retain_graph = false) const;

  /// Optional name, used by error messages and `to_dot`.
  const std::string& name() const { return impl().name; }
  Variable& set_name(std::string n) {
    impl().name = std::move(n);
    return *this;
  }
  /// Identity of the shared state (two copies of a handle have the same id).
  const void* id() const { return impl_.get(); }

 private:
  detail::VariableImpl<T>& impl() const;
  Tensor<T>& live_value() const;
  void drop_handle() noexcept {
    if (impl_ && counted_ && impl_->handles.fetch_sub(1, std::memory_order_acq_rel) == 1) impl_->release_value_if_unused();
  }
  /// Makes this handle an uncounted one (a graph node's reference to its input).
  void uncount() noexcept {
    if (impl_ && counted_) {
      counted_ = false;
      impl_->handles.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
  std::shared_ptr<detail::VariableImpl<T>> impl_;
  bool counted_ = true;  // false for the handles a graph node holds on its inputs
  bool kept_ = false;    // a node's input handle whose value that node's backward reads (a keeper)

  template <class U>
  friend std::vector<Variable<U>> attach_op_outputs(std::shared_ptr<Op<U>> op, std::vector<Tensor<U>> outs,
                                                    std::vector<Variable<U>> inputs);
  template <class U>
  friend struct detail::VariableImpl;
  template <class U>
  friend class Engine;
  template <class U>
  friend class Op;
};

/// A recorded graph node: one op call with its inputs and whatever its backward needs.
///
/// Subclasses implement `backward()` (one optional gradient per input, `std::nullopt` where `needs_grad(i)` is false)
/// and, as needed, `release()` (free saved tensors) and `keeps_input` / `keeps_output` (what backward reads); the
/// name comes from the OpCall that records them. They never hold their output Variables.
///
/// An op may have several outputs (`record_outputs`: split, chunk), each with its own gradient slot. An op recorded
/// with `record_outputs` overrides `backward_outputs` — the engine calls it whatever the number of outputs, one
/// included (a one-piece split) — which receives one optional gradient per output: `std::nullopt` for an output no
/// gradient reached (an unused chunk); treat it as zero without materialising it. Ops recorded with `record` override
/// `backward`.
template <class T>
class Op {
 public:
  Op() = default;
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;
  virtual ~Op() { unkeep(); }

  /// The op's public name, e.g. "conv2d": the one its OpCall gave it (an op recorded with the bare `record` overrides
  /// this instead).
  virtual const char* name() const { return name_ ? name_ : "unnamed op"; }
  /// Gradients of the loss with respect to each input, given the gradient with respect to the output.
  virtual GradList<T> backward(const Tensor<T>& grad_output) {
    (void)grad_output;
    throw GraphError(std::string(name()) + ": an op must override backward (one output) or backward_outputs");
  }
  /// Gradients with respect to each input, given one optional gradient per output (nullopt: none reached it, i.e.
  /// zero). The default, for single-output ops, calls backward() with the one gradient.
  virtual GradList<T> backward_outputs(const std::vector<std::optional<Tensor<T>>>& grad_outputs) {
    return backward(*grad_outputs.at(0));
  }
  /// Frees the tensors saved for backward. Called after backward unless `retain_graph` is set.
  virtual void release() {}
  /// Whether backward reads input `i`'s value (`this->inputs()[i].value()`); asked once, when the node is recorded.
  /// The default is yes. An op that needs only an input's shape (reshape, add, max_pool2d with its argmax, relu with
  /// its output) returns false, so that the value is freed as soon as nothing else needs it.
  virtual bool keeps_input(std::size_t i) const {
    (void)i;
    return true;
  }
  /// Whether backward reads the op's own output (`this->output()`); asked once, when the node is recorded. Default yes.
  virtual bool keeps_output() const { return true; }

  const std::vector<Variable<T>>& inputs() const { return inputs_; }
  /// True when input `i` requires a gradient; compute no partial otherwise.
  bool needs_grad(std::size_t i) const { return inputs_[i].defined() && inputs_[i].requires_grad(); }
  const Shape& output_shape() const { return output_shapes_.at(0); }
  std::size_t num_outputs() const { return output_shapes_.size(); }
  const Shape& output_shape(std::size_t i) const { return output_shapes_.at(i); }
  bool released() const { return released_; }
  /// The op's output value, for backward formulas that need it (sigmoid, softmax, ...): shared, not copied. It is
  /// alive whenever backward reaches the op (the root, or an input of a later op, holds it). Do not modify an op
  /// output in place before backward.
  const Tensor<T>& output(std::size_t i = 0) const {
    auto p = outputs_.at(i).lock();
    if (!p) throw GraphError(std::string(name()) + ": the output this op saved for backward no longer exists");
    if (p->value_released)
      throw GraphError(std::string(name()) + ": backward read the op's output, which was released: keeps_output() "
                       "said backward does not read it");
    return p->value;
  }

 private:
  template <class U>
  friend std::vector<Variable<U>> attach_op_outputs(std::shared_ptr<Op<U>> op, std::vector<Tensor<U>> outs,
                                                    std::vector<Variable<U>> inputs);
  template <class U>
  friend class Engine;
  template <class U>
  friend struct detail::VariableImpl;

  template <class OpT, class U, class... Args>
  friend std::vector<Variable<U>> detail::record_nodes(const char* name, bool per_output, std::vector<Tensor<U>> outs,
                                                       std::vector<Variable<U>> inputs, Args&&... args);

  /// Drops this node's claims on the values it kept (after backward, or when the node dies unused).
  void unkeep() noexcept {
    if (unkept_) return;
    unkept_ = true;
    for (auto& in : inputs_)
      if (in.kept_) {
        in.kept_ = false;
        if (in.impl_->keepers.fetch_sub(1, std::memory_order_acq_rel) == 1) in.impl_->release_value_if_unused();
      }
    if (kept_output_)
      for (const auto& w : outputs_)
        if (auto p = w.lock())
          if (p->keepers.fetch_sub(1, std::memory_order_acq_rel) == 1) p->release_value_if_unused();
  }

  const char* name_ = nullptr;  // set by OpCall::record (a string literal or other static storage)
  bool per_output_ = false;     // recorded by record_outputs: the engine calls backward_outputs, whatever the count
  bool kept_output_ = false;
  bool unkept_ = false;
  std::vector<Variable<T>> inputs_;
  std::vector<std::weak_ptr<detail::VariableImpl<T>>> outputs_;
  std::vector<Shape> output_shapes_;
  bool released_ = false;
  std::vector<std::optional<Tensor<T>>> pending_grads_;  // engine scratch during one backward walk, one per output
  std::vector<std::uint64_t> saved_versions_;  // each input's version when recorded (checked for the kept ones)
  std::uint64_t mark_ = 0;                 // engine scratch: visit mark of the topological sort
};

/// True when an op over `inputs` must be recorded: grad mode is on and some input requires grad.
template <class T>
bool should_record(std::initializer_list<const Variable<T>*> inputs) {
  if (!is_grad_enabled()) return false;
  for (const auto* v : inputs)
    if (v && v->defined() && v->requires_grad()) return true;
  return false;
}

/// Makes `outs` the outputs of `op` over `inputs` (which must make should_record true).
template <class T>
std::vector<Variable<T>> attach_op_outputs(std::shared_ptr<Op<T>> op, std::vector<Tensor<T>> outs,
                                           std::vector<Variable<T>> inputs);

namespace detail {
/// The one recording path: builds `OpT(args...)` named `name` (nullptr: its own name() override) as the creator of
/// every tensor in `outs` when grad mode is on and an input requires grad, else returns plain leaves. In anomaly mode
/// every output is checked for NaN/Inf first. `per_output`: recorded by record_outputs, so backward goes through
/// backward_outputs even when there is one output (a one-piece split or chunk).
template <class OpT, class T, class... Args>
std::vector<Variable<T>> record_nodes(const char* name, bool per_output, std::vector<Tensor<T>> outs,
                                      std::vector<Variable<T>> inputs, Args&&... args) {
  bool any = false;
  if (is_grad_enabled())
    for (const auto& v : inputs) any = any || (v.defined() && v.requires_grad());
  std::shared_ptr<OpT> op;
  if (any || is_anomaly_enabled()) {
    op = std::make_shared<OpT>(std::forward<Args>(args)...);
    if (name) op->name_ = name;
    op->per_output_ = per_output;
  }
  if (is_anomaly_enabled())
    for (const auto& o : outs) check_finite(op->name(), "output", o);
  if (!any) {
    std::vector<Variable<T>> leaves;
    for (auto& o : outs) leaves.emplace_back(std::move(o));
    return leaves;
  }
  return attach_op_outputs<T>(std::move(op), std::move(outs), std::move(inputs));
}

template <class T>
std::vector<Tensor<T>> one_output(Tensor<T> out) {
  std::vector<Tensor<T>> outs;
  outs.push_back(std::move(out));
  return outs;
}
}  // namespace detail

/// One call of an op, opened first thing in the op's function: it names the call once — the recorded node, the
/// profiler row and the errors all use this name — and times the forward for the profiler (from construction to
/// record(), or to the end of the scope when the op returns without recording; not when it throws). Recording goes
/// through it, so no op can be recorded unnamed or unprofiled:
///
///     OpCall call("max_pool2d");
///     if (bad) throw call.error("expected 4-D input, got " + shape_str(x.shape()));
///     ...compute y...
///     return call.record<MaxPool2dOp<T>>(std::move(y), {x}, saved...);
class OpCall {
 public:
  /// `name` must outlive the graph (a string literal, or a `const char*` into static storage).
  explicit OpCall(const char* name);
  ~OpCall();
  OpCall(const OpCall&) = delete;
  OpCall& operator=(const OpCall&) = delete;

  const char* name() const { return name_; }
  /// A ShapeError reading "<name>: <what>", to throw at the point of the mistake.
  ShapeError error(const std::string& what) const { return ShapeError(std::string(name_) + ": " + what); }

  /// Ends the forward's timing and records `OpT(args...)` (named by this call) as the creator of `out` when grad mode
  /// is on and an input requires grad; otherwise returns `out` as a plain leaf.
  template <class OpT, class T, class... Args>
  Variable<T> record(Tensor<T> out, std::vector<Variable<T>> inputs, Args&&... args) {
    auto outs = detail::record_nodes<OpT>(name_, false, detail::one_output(std::move(out)), std::move(inputs),
                                          std::forward<Args>(args)...);
    finish();  // after recording: a throw from it (anomaly mode) is not timed
    return std::move(outs[0]);
  }
  /// `record` for an op with several outputs, each with its own gradient slot (split, chunk).
  template <class OpT, class T, class... Args>
  std::vector<Variable<T>> record_outputs(std::vector<Tensor<T>> outs, std::vector<Variable<T>> inputs,
                                          Args&&... args) {
    auto vs = detail::record_nodes<OpT>(name_, true, std::move(outs), std::move(inputs), std::forward<Args>(args)...);
    finish();
    return vs;
  }

 private:
  void finish();  // adds the forward time to the profiler once
  const char* name_;
  bool timing_;
  bool finished_ = false;
  int exceptions_;  // std::uncaught_exceptions() at construction: a throw past the call is not timed
  std::int64_t start_ns_ = 0;
};


extern template class Variable<float>;
extern template class Variable<double>;

}  // namespace xg
