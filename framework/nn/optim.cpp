#include "nn/optim.h"

#include <cmath>
#include <optional>

namespace xg::nn {

namespace {
void check_hyper(const char* opt, const char* name, double v, double lo, double hi) {
  if (!(v >= lo && v <= hi))
    throw std::invalid_argument(std::string(opt) + ": invalid " + name + " " + std::to_string(v) + " (expected " +
                                std::to_string(lo) + " to " + std::to_string(hi) + ")");
}

/// The learning rate stored in a state, checked like a constructor argument but refused as a CheckpointError (a
/// crafted negative rate would turn descent into ascent).
std::optional<double> stored_lr(const std::map<std::string, double>& scalars, const char* opt) {
  const auto it = scalars.find("lr");
  if (it == scalars.end()) return std::nullopt;
  if (!(std::isfinite(it->second) && it->second >= 0.0 && it->second <= 1e6))
    throw CheckpointError(std::string(opt) + " state: invalid learning rate " + std::to_string(it->second));
  return it->second;
}

template <class T>
const Tensor<T>& find_tensor(const OptimizerState<T>& s, const std::string& name, const Shape& shape,
                             const char* opt) {
  for (const auto& [n, t] : s.tensors)
    if (n == name) {
      if (shape_of(t) != shape)
        throw CheckpointError(std::string(opt) + " state: '" + name + "' has shape " + shape_str(t.shape()) +
                              ", expected " + shape_str(shape));
      return t;
    }
  throw CheckpointError(std::string(opt) + " state: missing '" + name + "'");
}
}  // namespace

template <class T>
Optimizer<T>::Optimizer(std::vector<Variable<T>> params) : params_(std::move(params)) {
  for (std::size_t i = 0; i < params_.size(); ++i)
    if (!params_[i].defined() || !params_[i].is_leaf() || !params_[i].requires_grad())
      throw std::invalid_argument("optimizer: parameter " + std::to_string(i) +
                                  " must be a leaf Variable that requires grad");
}
template <class T>
void Optimizer<T>::zero_grad() {
  for (auto& p : params_) p.zero_grad();
}
template <class T>
void Optimizer<T>::set_lr(double lr) {
  check_hyper("optimizer", "learning rate", lr, 0.0, 1e6);
  lr_ = lr;
}

template <class T>
Sgd<T>::Sgd(std::vector<Variable<T>> params, SgdOptions o)
    : Optimizer<T>(std::move(params)), o_(o), buf_(this->params_.size()), has_buf_(this->params_.size(), false) {
  check_hyper("Sgd", "learning rate", o.lr, 0.0, 1e6);
  check_hyper("Sgd", "momentum", o.momentum, 0.0, 1.0);
  check_hyper("Sgd", "dampening", o.dampening, 0.0, 1.0);
  check_hyper("Sgd", "weight_decay", o.weight_decay, 0.0, 1e6);
  if (o.nesterov && (o.momentum <= 0.0 || o.dampening != 0.0))
    throw std::invalid_argument("Sgd: Nesterov momentum requires a momentum and zero dampening");
  this->lr_ = o.lr;
}

template <class T>
void Sgd<T>::step() {
  const T lr = static_cast<T>(this->lr_), wd = static_cast<T>(o_.weight_decay), mom = static_cast<T>(o_.momentum),
          damp = static_cast<T>(1.0 - o_.dampening);
  for (std::size_t i = 0; i < this->params_.size(); ++i) {
    Variable<T>& p = this->params_[i];
    if (!p.has_grad()) continue;
    p.bump_version();
    T* w = p.value().data();
    const T* g = p.grad().data();
    const std::size_t n = p.numel();
    if (mom == T(0)) {
      for (std::size_t k = 0; k < n; ++k) w[k] -= lr * (g[k] + wd * w[k]);
      continue;
    }
    if (!has_buf_[i]) {
      buf_[i] = xg::empty<T>(p.value().shape());
      T* b = buf_[i].data();
      for (std::size_t k = 0; k < n; ++k) b[k] = g[k] + wd * w[k];
      has_buf_[i] = true;
    } else {
      T* b = buf_[i].data();
      for (std::size_t k = 0; k < n; ++k) b[k] = mom * b[k] + damp * (g[k] + wd * w[k]);
    }
    const T* b = buf_[i].data();
    for (std::size_t k = 0; k < n; ++k) {
      const T d = o_.nesterov ? (g[k] + wd * w[k]) + mom * b[k] : b[k];
      w[k] -= lr * d;
    }
  }
}

template <class T>
OptimizerState<T> Sgd<T>::state() const {
  OptimizerState<T> s;
  s.scalars["lr"] = this->lr_;
  for (std::size_t i = 0; i < buf_.size(); ++i)
    if (has_buf_[i]) s.tensors.emplace_back("momentum_buffer." + std::to_string(i), buf_[i]);
  return s;
}

template <class T>
void Sgd<T>::load_state(const OptimizerState<T>& s) {
  std::vector<Tensor<T>> buf(this->params_.size());
  std::vector<bool> has(this->params_.size(), false);
  for (std::size_t i = 0; i < this->params_.size(); ++i) {
    const std::string name = "momentum_buffer." + std::to_string(i);
    for (const auto& [n, t] : s.tensors)
      if (n == name) {
        buf[i] = find_tensor(s, name, this->params_[i].shape(), "Sgd");
        has[i] = true;
      }
  }
  if (const auto lr = stored_lr(s.scalars, "Sgd")) this->lr_ = *lr;
  buf_ = std::move(buf);
  has_buf_ = std::move(has);
}

template <class T>
Adam<T>::Adam(std::vector<Variable<T>> params, AdamOptions o)
    : Optimizer<T>(std::move(params)), o_(o), m_(this->params_.size()), v_(this->params_.size()),
      steps_(this->params_.size(), 0) {
  check_hyper("Adam", "learning rate", o.lr, 0.0, 1e6);
  check_hyper("Adam", "beta1", o.beta1, 0.0, 0.999999999);
  check_hyper("Adam", "beta2", o.beta2, 0.0, 0.999999999);
  check_hyper("Adam", "eps", o.eps, 0.0, 1.0);
  check_hyper("Adam", "weight_decay", o.weight_decay, 0.0, 1e6);
  this->lr_ = o.lr;
}

template <class T>
void Adam<T>::step() {
  const T b1 = static_cast<T>(o_.beta1), b2 = static_cast<T>(o_.beta2), eps = static_cast<T>(o_.eps),
          wd = static_cast<T>(o_.weight_decay), lr = static_cast<T>(this->lr_);
  for (std::size_t i = 0; i < this->params_.size(); ++i) {
    Variable<T>& p = this->params_[i];
    if (!p.has_grad()) continue;
    const std::size_t n = p.numel();
    if (steps_[i] == 0) {
      m_[i] = zeros<T>(p.shape());
      v_[i] = zeros<T>(p.shape());
    }
    const std::size_t t = ++steps_[i];
    p.bump_version();
    T* w = p.value().data();
    const T* g = p.grad().data();
    T* m = m_[i].data();
    T* v = v_[i].data();
    const T bc1 = T(1) - static_cast<T>(std::pow(o_.beta1, static_cast<double>(t)));
    const T bc2 = T(1) - static_cast<T>(std::pow(o_.beta2, static_cast<double>(t)));
    const T step_size = lr / bc1;
    const T bc2_sqrt = std::sqrt(bc2);
    for (std::size_t k = 0; k < n; ++k) {
      T gk = g[k];
      if (o_.decoupled_weight_decay)
        w[k] *= T(1) - lr * wd;
      else
        gk += wd * w[k];
      m[k] = b1 * m[k] + (T(1) - b1) * gk;
      v[k] = b2 * v[k] + (T(1) - b2) * gk * gk;
      w[k] -= step_size * m[k] / (std::sqrt(v[k]) / bc2_sqrt + eps);
    }
  }
}

template <class T>
OptimizerState<T> Adam<T>::state() const {
  OptimizerState<T> s;
  s.scalars["lr"] = this->lr_;
  for (std::size_t i = 0; i < m_.size(); ++i) {
    if (steps_[i] == 0) continue;
    s.tensors.emplace_back("exp_avg." + std::to_string(i), m_[i]);
    s.tensors.emplace_back("exp_avg_sq." + std::to_string(i), v_[i]);
    s.scalars["step." + std::to_string(i)] = static_cast<double>(steps_[i]);
  }
  return s;
}

template <class T>
void Adam<T>::load_state(const OptimizerState<T>& s) {
  std::vector<Tensor<T>> m(this->params_.size()), v(this->params_.size());
  std::vector<std::size_t> steps(this->params_.size(), 0);
  for (std::size_t i = 0; i < this->params_.size(); ++i) {
    auto it = s.scalars.find("step." + std::to_string(i));
    if (it == s.scalars.end()) continue;
    const double t = it->second;
    if (!(t >= 1.0 && t <= 9007199254740992.0 && t == std::floor(t)))
      throw CheckpointError("Adam state: step." + std::to_string(i) + " = " + std::to_string(t) +
                            " is not a whole number of steps >= 1");
    steps[i] = static_cast<std::size_t>(t);
    m[i] = find_tensor(s, "exp_avg." + std::to_string(i), this->params_[i].shape(), "Adam");
    v[i] = find_tensor(s, "exp_avg_sq." + std::to_string(i), this->params_[i].shape(), "Adam");
  }
  if (const auto lr = stored_lr(s.scalars, "Adam")) this->lr_ = *lr;
  m_ = std::move(m);
  v_ = std::move(v);
  steps_ = std::move(steps);
}

template <class T>
double clip_grad_norm_(const std::vector<Variable<T>>& params, double max_norm) {
  if (!(std::isfinite(max_norm) && max_norm > 0))
    throw std::invalid_argument("clip_grad_norm_: max_norm must be positive and finite, got " + std::to_string(max_norm));
  double sq = 0;
  for (const auto& p : params) {
    if (!p.has_grad()) continue;
    const T* g = p.grad().data();
    for (std::size_t k = 0, n = p.numel(); k < n; ++k) sq += static_cast<double>(g[k]) * static_cast<double>(g[k]);
  }
  const double total = std::sqrt(sq);
  if (!std::isfinite(total)) return total;
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0)
    for (auto p : params) {
      if (!p.has_grad()) continue;
      T* g = p.grad().data();
      for (std::size_t k = 0, n = p.numel(); k < n; ++k) g[k] = static_cast<T>(static_cast<double>(g[k]) * coef);
    }
  return total;
}

template double clip_grad_norm_(const std::vector<Variable<float>>&, double);
template double clip_grad_norm_(const std::vector<Variable<double>>&, double);
template class Optimizer<float>;
template class Optimizer<double>;
template class Sgd<float>;
template class Sgd<double>;
template class Adam<float>;
template class Adam<double>;

}  // namespace xg::nn
