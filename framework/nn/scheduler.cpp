#include "nn/scheduler.h"

#include <cmath>
#include <stdexcept>

#include "core/errors.h"

namespace xg::nn {

namespace {
constexpr double kPi = 3.14159265358979323846;
void check(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}
std::string num(double v) {
  std::string s = std::to_string(v);
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}
}  // namespace

template <class T>
LrScheduler<T>::LrScheduler(Optimizer<T>& optimizer, std::size_t steps_per_epoch)
    : opt_(&optimizer), base_(optimizer.lr()), spe_(steps_per_epoch) {
  check(steps_per_epoch > 0, "LrScheduler: steps_per_epoch must be positive");
}

template <class T>
void LrScheduler<T>::set_step(std::size_t k) {
  k_ = k;
  opt_->set_lr(lr_at(k));
}

template <class T>
void LrScheduler<T>::set_base_lr(double lr) {
  check(std::isfinite(lr) && lr >= 0, "LrScheduler: base learning rate must be finite and >= 0, got " + num(lr));
  base_ = lr;
  opt_->set_lr(lr_at(k_));
}

template <class T>
void LrScheduler<T>::set_steps_per_epoch(std::size_t n) {
  check(n > 0, "LrScheduler: steps_per_epoch must be positive");
  spe_ = n;
}

template <class T>
std::map<std::string, double> LrScheduler<T>::state() const {
  return {{"step", static_cast<double>(k_)}, {"base_lr", base_}};
}

template <class T>
void LrScheduler<T>::load_state(const std::map<std::string, double>& s) {
  const auto step = s.find("step"), base = s.find("base_lr");
  if (step == s.end() || base == s.end()) throw CheckpointError("scheduler state: needs 'step' and 'base_lr'");
  if (!(step->second >= 0 && step->second <= 9007199254740992.0 && step->second == std::floor(step->second)))
    throw CheckpointError("scheduler state: step " + num(step->second) + " is not a whole number of steps");
  if (!(std::isfinite(base->second) && base->second >= 0 && base->second <= 1e6))
    throw CheckpointError("scheduler state: invalid base_lr " + num(base->second));
  base_ = base->second;
  set_step(static_cast<std::size_t>(step->second));
}

template <class T>
StepLR<T>::StepLR(Optimizer<T>& optimizer, std::size_t step_size_epochs, double gamma, std::size_t steps_per_epoch)
    : LrScheduler<T>(optimizer, steps_per_epoch), size_(step_size_epochs), gamma_(gamma) {
  check(step_size_epochs > 0, "StepLR: step_size must be positive");
  check(std::isfinite(gamma) && gamma > 0 && gamma <= 1, "StepLR: gamma must be in (0, 1], got " + num(gamma));
  this->set_step(0);
}
template <class T>
double StepLR<T>::lr_at(std::size_t k) const {
  const std::size_t epoch = k / this->spe_;
  return this->base_ * std::pow(gamma_, static_cast<double>(epoch / size_));
}
template <class T>
std::string StepLR<T>::describe() const {
  return "StepLR(step_size=" + std::to_string(size_) + ", gamma=" + num(gamma_) + ")";
}

template <class T>
CosineLR<T>::CosineLR(Optimizer<T>& optimizer, double total_epochs, std::size_t steps_per_epoch, double eta_min)
    : LrScheduler<T>(optimizer, steps_per_epoch), total_(total_epochs), eta_min_(eta_min) {
  check(std::isfinite(total_epochs) && total_epochs > 0, "CosineLR: total_epochs must be positive");
  check(std::isfinite(eta_min) && eta_min >= 0, "CosineLR: eta_min must be >= 0");
  this->set_step(0);
}
template <class T>
double CosineLR<T>::lr_at(std::size_t k) const {
  const double t = std::min(this->epochs_at(k), total_);
  return eta_min_ + (this->base_ - eta_min_) * (1 + std::cos(kPi * t / total_)) / 2;
}
template <class T>
std::string CosineLR<T>::describe() const {
  return "CosineLR(epochs=" + num(total_) + ", eta_min=" + num(eta_min_) + ")";
}

template <class T>
WarmupCosineLR<T>::WarmupCosineLR(Optimizer<T>& optimizer, double warmup_epochs, double total_epochs,
                                  std::size_t steps_per_epoch, double eta_min)
    : LrScheduler<T>(optimizer, steps_per_epoch), warmup_(warmup_epochs), total_(total_epochs), eta_min_(eta_min) {
  check(std::isfinite(warmup_epochs) && warmup_epochs >= 0 && std::isfinite(total_epochs) && total_epochs > warmup_epochs,
        "WarmupCosineLR: need 0 <= warmup_epochs < total_epochs, got " + num(warmup_epochs) + " and " + num(total_epochs));
  check(std::isfinite(eta_min) && eta_min >= 0, "WarmupCosineLR: eta_min must be >= 0");
  this->set_step(0);
}
template <class T>
double WarmupCosineLR<T>::lr_at(std::size_t k) const {
  // The warm-up is a whole number of steps, W = ⌈warmup_epochs · steps_per_epoch⌉, with rates base·(k + 1)/W: it ends
  // exactly at the base rate and never passes it (dividing by the fractional count had given 1.11× the base at the
  // last warm-up step of 1.5 epochs × 3 steps, and 10^9× the base for a warm-up of 1e-9 epochs).
  const double warm_steps = std::ceil(warmup_ * static_cast<double>(this->spe_));
  // base · ((k + 1)/W): the fraction is at most 1, so the product never rounds above the base (base·(k + 1)/W did, by
  // one ulp, for about 6% of pairs).
  if (static_cast<double>(k) < warm_steps) return this->base_ * ((static_cast<double>(k) + 1) / warm_steps);
  const double t = std::min(this->epochs_at(k), total_);
  return eta_min_ + (this->base_ - eta_min_) * (1 + std::cos(kPi * (t - warmup_) / (total_ - warmup_))) / 2;
}
template <class T>
std::string WarmupCosineLR<T>::describe() const {
  return "WarmupCosineLR(warmup=" + num(warmup_) + ", epochs=" + num(total_) + ", eta_min=" + num(eta_min_) + ")";
}

template class LrScheduler<float>;
template class LrScheduler<double>;
template class StepLR<float>;
template class StepLR<double>;
template class CosineLR<float>;
template class CosineLR<double>;
template class WarmupCosineLR<float>;
template class WarmupCosineLR<double>;

}  // namespace xg::nn
