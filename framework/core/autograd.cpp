// The backward walk, gradient accumulation and graph teardown. See docs/architecture.md, "The backward walk".

#include <algorithm>
#include <chrono>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <utility>

#include "core/profiler.h"
#include "core/variable.h"

namespace xg {

namespace {
std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

OpCall::OpCall(const char* name)
    : name_(name), timing_(profiler::enabled()), exceptions_(std::uncaught_exceptions()) {
  if (timing_) start_ns_ = now_ns();
}

OpCall::~OpCall() {
  if (std::uncaught_exceptions() == exceptions_) finish();  // returned without recording; a throw is not timed
}

void OpCall::finish() {
  if (finished_) return;
  finished_ = true;
  if (timing_) profiler::add(name_, false, static_cast<double>(now_ns() - start_ns_) * 1e-9);
}

namespace {
thread_local bool g_grad_enabled = true;

std::atomic<std::uint64_t> g_walk_counter{0};

template <class T>
void accumulate(std::optional<Tensor<T>>& slot, Tensor<T>&& g) {
  if (!slot) {
    slot.emplace(std::move(g));
    return;
  }
  T* dst = slot->data();
  const T* src = g.data();
  const std::size_t n = slot->size();
  for (std::size_t i = 0; i < n; ++i) dst[i] += src[i];
}

template <class S1, class S2>
bool shapes_equal(const S1& a, const S2& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}
}  // namespace

bool is_grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool enabled) { g_grad_enabled = enabled; }

namespace {
thread_local bool g_anomaly = false;
}
bool is_anomaly_enabled() { return g_anomaly; }
void set_anomaly_enabled(bool enabled) { g_anomaly = enabled; }

namespace detail {
template <class T>
void check_finite(const char* op, const char* what, const Tensor<T>& t) {
  const T* p = t.data();
  for (std::size_t i = 0; i < t.size(); ++i)
    if (!std::isfinite(p[i])) {
      Shape idx(t.dimension());
      std::size_t rem = i;
      for (std::size_t d = idx.size(); d-- > 0;) {
        idx[d] = rem % t.shape()[d];
        rem /= t.shape()[d];
      }
      throw NumericError(std::string("anomaly: '") + op + "' produced " + (std::isnan(p[i]) ? "NaN" : "Inf") + " in its " +
                         what + " at element " + shape_str(idx) + " (shape " + shape_str(t.shape()) + ")");
    }
}
template void check_finite(const char*, const char*, const Tensor<float>&);
template void check_finite(const char*, const char*, const Tensor<double>&);
}  // namespace detail

namespace detail {
// Note [Iterative teardown]: a chain of 100,000 ops would recurse 100,000 deep if each impl's destructor destroyed its
// creator, which destroyed its inputs, and so on. Instead the last owner of a node steals the creators of the inputs
// that will die with it and destroys them from an explicit stack.
template <class T>
VariableImpl<T>::~VariableImpl() {
  if (!creator) return;
  std::vector<std::shared_ptr<Op<T>>> stack;
  stack.push_back(std::move(creator));
  while (!stack.empty()) {
    std::shared_ptr<Op<T>> op = std::move(stack.back());
    stack.pop_back();
    if (op.use_count() != 1) continue;  // someone else still holds it
    for (auto& in : op->inputs_) {
      auto& impl = in.impl_;
      if (impl && impl.use_count() == 1 && impl->creator) stack.push_back(std::move(impl->creator));
    }
    // `op` dies here; the inputs it frees have no creator left, so nothing recurses.
  }
}
}  // namespace detail

template <class T>
void detail::VariableImpl<T>::release_value_if_unused() {
  if (!creator || value_released || handles.load(std::memory_order_acquire) != 0 ||
      keepers.load(std::memory_order_acquire) != 0 || release_claimed.exchange(true, std::memory_order_acq_rel))
    return;
  released_shape = value.shape();
  Tensor<T> freed = std::move(value);  // the buffer goes with `freed`; `value` is never read again (value_released)
  value_released = true;
}

template <class T>
Variable<T>::Variable(Tensor<T> value, bool requires_grad) : impl_(std::make_shared<detail::VariableImpl<T>>()) {
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
  impl_->handles.store(1, std::memory_order_relaxed);
}

template <class T>
Tensor<T>& Variable<T>::live_value() const {
  auto& i = impl();
  if (i.value_released)
    throw GraphError(std::string("Variable: the value of this output of '") + i.creator->name() +
                     "' was released: no handle held it and no backward needed it, so it was freed (to read an "
                     "intermediate, keep a Variable of it; an op whose backward reads an input must not override "
                     "keeps_input() to return false)");
  return i.value;
}

template <class T>
std::size_t Variable<T>::numel() const {
  const auto& i = impl();
  if (!i.value_released) return i.value.size();
  std::size_t n = 1;
  for (auto e : i.released_shape) n *= e;
  return n;
}

template <class T>
detail::VariableImpl<T>& Variable<T>::impl() const {
  if (!impl_) throw GraphError("Variable: this handle is undefined (default-constructed); assign a value first");
  return *impl_;
}

template <class T>
T Variable<T>::item() const {
  const auto& v = live_value();
  if (v.size() != 1)
    throw ShapeError("item: expected a Variable with one element, got shape " + shape_str(v.shape()));
  return *v.data();
}

template <class T>
Variable<T>& Variable<T>::set_requires_grad(bool on) {
  if (!is_leaf())
    throw GraphError("set_requires_grad: only leaves can change requires_grad; this Variable was made by '" +
                     std::string(creator()->name()) + "' (use detach() to get a leaf)");
  impl().requires_grad = on;
  return *this;
}

template <class T>
const Tensor<T>& Variable<T>::grad() const {
  if (!impl().grad)
    throw GraphError("grad: no gradient has been accumulated for this Variable" +
                     (name().empty() ? std::string() : " ('" + name() + "')") +
                     (requires_grad() ? " (backward has not reached it yet, or zero_grad cleared it)"
                                      : " (it does not require grad)"));
  return *impl().grad;
}

template <class T>
Tensor<T>& Variable<T>::grad() {
  return const_cast<Tensor<T>&>(static_cast<const Variable&>(*this).grad());
}

template <class T>
void Variable<T>::set_grad(Tensor<T> g) {
  const Shape vs = impl().value_shape();
  if (!std::equal(g.shape().begin(), g.shape().end(), vs.begin(), vs.end()))
    throw ShapeError("set_grad: gradient of shape " + shape_str(g.shape()) + " for a Variable of shape " +
                     shape_str(vs) + (name().empty() ? std::string() : " ('" + name() + "')"));
  impl().grad = std::move(g);
}

template <class T>
Variable<T> Variable<T>::detach() const {
  Variable out(live_value(), false);
  out.impl_->name = impl().name;
  return out;
}

template <class T>
std::vector<Variable<T>> attach_op_outputs(std::shared_ptr<Op<T>> op, std::vector<Tensor<T>> outs,
                                           std::vector<Variable<T>> inputs) {
  op->inputs_ = std::move(inputs);
  op->pending_grads_.assign(outs.size(), std::nullopt);
  op->saved_versions_.resize(op->inputs_.size());
  for (std::size_t i = 0; i < op->inputs_.size(); ++i)
    op->saved_versions_[i] = op->inputs_[i].impl_ ? op->inputs_[i].impl_->version : 0;
  // The node's claims: the input values its backward reads are kept; its handles on its inputs are not counted, so
  // an input nobody else holds or needs is freed right away (after the keepers are counted).
  for (std::size_t i = 0; i < op->inputs_.size(); ++i)
    if (op->inputs_[i].impl_ && op->keeps_input(i)) {
      op->inputs_[i].kept_ = true;
      op->inputs_[i].impl_->keepers.fetch_add(1, std::memory_order_relaxed);
    }
  op->kept_output_ = op->keeps_output();
  for (auto& in : op->inputs_) {
    const bool last = in.impl_ && in.counted_ && in.impl_->handles.load(std::memory_order_acquire) == 1;
    in.uncount();
    if (last) in.impl_->release_value_if_unused();
  }
  std::vector<Variable<T>> vs;
  for (std::size_t i = 0; i < outs.size(); ++i) {
    op->output_shapes_.push_back(shape_of(outs[i]));
    Variable<T> v(std::move(outs[i]), true);
    op->outputs_.push_back(v.impl_);
    v.impl_->output_index = i;
    v.impl_->creator = op;  // every output owns the op; the last one to go frees it
    if (op->kept_output_) v.impl_->keepers.fetch_add(1, std::memory_order_relaxed);
    vs.push_back(std::move(v));
  }
  return vs;
}

/// The reverse-mode walk. A class (not free functions) only so that Variable and Op can befriend it.
template <class T>
class Engine {
 public:
  static void run(const Variable<T>& root, const Tensor<T>& seed, bool retain_graph) {
    auto& rimpl = root.impl();
    if (!rimpl.requires_grad)
      throw GraphError(
          "backward: this Variable does not require grad and has no creator, so there is nothing to differentiate "
          "(did a parameter forget requires_grad, or was the graph built under NoGradGuard?)");
    if (!shapes_equal(seed.shape(), rimpl.value_shape()))
      throw GraphError("backward: the gradient has shape " + shape_str(seed.shape()) + " but the output has shape " +
                       shape_str(rimpl.value_shape()));
    if (!rimpl.creator) {  // a leaf: its gradient is the seed
      accumulate(rimpl.grad, Tensor<T>(seed));
      return;
    }
    std::vector<Op<T>*> order = topological_order(rimpl.creator.get());
    check_versions(order);  // before any gradient moves: a refused backward changes nothing
    try {
      walk(order, retain_graph, seed, rimpl.output_index);
    } catch (...) {  // leave no half-accumulated gradients behind in the graph
      for (Op<T>* op : order)
        for (auto& g : op->pending_grads_) g.reset();
      throw;
    }
  }

 private:
  /// Every value a node's backward reads must be the one its forward saw (PyTorch's saved-tensor version check).
  static void check_versions(const std::vector<Op<T>*>& order) {
    for (const Op<T>* op : order)
      for (std::size_t i = 0; i < op->inputs_.size(); ++i) {
        const auto& in = op->inputs_[i];
        if (!in.kept_ || in.impl_->version == op->saved_versions_[i]) continue;
        throw GraphError(std::string(op->name()) + ": input " + std::to_string(i) + " of shape " +
                         shape_str(in.impl_->value_shape()) + " was changed in place after the forward (version " +
                         std::to_string(in.impl_->version) + ", the op saw version " +
                         std::to_string(op->saved_versions_[i]) + "), e.g. by an optimizer step or xg::load between "
                         "forward and backward; backward would use the new values");
      }
  }

  static void walk(const std::vector<Op<T>*>& order, bool retain_graph, const Tensor<T>& seed, std::size_t root_output) {
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      Op<T>* op = *it;
      if (op->released_)
        throw GraphError(std::string("backward: trying to backward through the graph a second time ('") + op->name() +
                         "' already freed its saved tensors); pass retain_graph = true to the first backward if you "
                         "need to call it twice");
      const bool is_root = it == order.rbegin();  // the root's creator comes last in the post-order
      // An op recorded by record() gets its one gradient through backward(): the root's reads the seed in place (no
      // copy of a large gradient). One recorded by record_outputs() gets backward_outputs(), even with one output.
      const bool direct = !op->per_output_;
      if (is_root && !direct) {  // the seed joins whatever other outputs of the root's op received
        if (op->pending_grads_[root_output]) accumulate(op->pending_grads_[root_output], Tensor<T>(seed));
        else op->pending_grads_[root_output] = seed;
      }
      const bool any = std::any_of(op->pending_grads_.begin(), op->pending_grads_.end(), [](const auto& g) { return g.has_value(); });
      if (!(is_root && direct) && !any) continue;
      std::vector<std::optional<Tensor<T>>> pending;
      if (!(is_root && direct)) {
        pending = std::move(op->pending_grads_);
        op->pending_grads_.assign(op->outputs_.size(), std::nullopt);
      }
      const auto call = [&] {
        return is_root && direct ? op->backward(seed) : direct ? op->backward(*pending[0]) : op->backward_outputs(pending);
      };
      GradList<T> grads;
      if (profiler::enabled()) {
        const auto t0 = std::chrono::steady_clock::now();
        grads = call();
        profiler::add(op->name(), true, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      } else {
        grads = call();
      }
      if (grads.size() != op->inputs_.size())
        throw GraphError(std::string(op->name()) + ": backward returned " + std::to_string(grads.size()) +
                         " gradients for " + std::to_string(op->inputs_.size()) + " inputs");
      for (std::size_t i = 0; i < grads.size(); ++i) {
        if (!grads[i] || !op->needs_grad(i)) continue;
        if (g_anomaly) {
          const std::string what = "gradient for input " + std::to_string(i) + " (backward)";
          detail::check_finite(op->name(), what.c_str(), *grads[i]);
        }
        auto& in = *op->inputs_[i].impl_;
        if (!in.has_shape(grads[i]->shape()))
          throw GraphError(std::string(op->name()) + ": backward returned a gradient of shape " +
                           shape_str(grads[i]->shape()) + " for input " + std::to_string(i) + " of shape " +
                           shape_str(in.value_shape()));
        if (in.creator)
          accumulate(in.creator->pending_grads_[in.output_index], std::move(*grads[i]));
        else
          accumulate(in.grad, std::move(*grads[i]));
      }
      if (!retain_graph) {
        op->release();
        op->released_ = true;
        op->unkeep();
      }
    }
  }

  // Iterative depth-first post-order from the root's creator: every op appears after all ops it consumes.
  static std::vector<Op<T>*> topological_order(Op<T>* root) {
    const std::uint64_t mark = ++g_walk_counter;
    std::vector<Op<T>*> order;
    std::vector<std::pair<Op<T>*, std::size_t>> stack;
    root->mark_ = mark;
    stack.emplace_back(root, 0);
    while (!stack.empty()) {
      auto& [op, next] = stack.back();
      if (next < op->inputs_.size()) {
        const auto& in = op->inputs_[next++];
        if (!in.defined()) continue;
        Op<T>* child = in.impl_->creator.get();
        if (child && child->mark_ != mark) {
          child->mark_ = mark;
          stack.emplace_back(child, 0);
        }
      } else {
        order.push_back(op);
        stack.pop_back();
      }
    }
    return order;
  }
};

template <class T>
void Variable<T>::backward(bool retain_graph) const {
  if (numel() != 1)
    throw GraphError("backward: grad can be implicitly created only for one-element outputs, but the output has shape " +
                     shape_str(shape()) + "; pass a gradient of that shape to backward(grad)");
  Engine<T>::run(*this, full<T>(shape(), T(1)), retain_graph);
}

template <class T>
void Variable<T>::backward(const Tensor<T>& grad_output, bool retain_graph) const {
  Engine<T>::run(*this, grad_output, retain_graph);
}

template struct detail::VariableImpl<float>;
template struct detail::VariableImpl<double>;
template class Variable<float>;
template class Variable<double>;
template std::vector<Variable<float>> attach_op_outputs(std::shared_ptr<Op<float>>, std::vector<Tensor<float>>,
                                                        std::vector<Variable<float>>);
template std::vector<Variable<double>> attach_op_outputs(std::shared_ptr<Op<double>>, std::vector<Tensor<double>>,
                                                         std::vector<Variable<double>>);

}  // namespace xg
