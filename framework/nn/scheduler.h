#pragma once
/// \file scheduler.h
/// Learning-rate schedules. A schedule is a function of the optimizer step k (0-based, the step about to be taken)
/// and the steps per epoch: `set_step(k)` writes lr(k) into the optimizer, `step()` moves to the next step. The
/// Trainer calls set_step before every optimizer step, so a schedule changes the rate within an epoch where its
/// formula does (cosine, warm-up) and at epoch boundaries where it does (StepLR); a checkpoint stores k and the base
/// rate, and a resumed run continues exactly.
///
///     nn::Sgd<float> opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});
///     nn::CosineLR<float> sched(opt, /*epochs*/ 20, loader.batches());   // 0.1 → 0 over 20 epochs
///     trainer.set_scheduler(&sched);

#include <map>
#include <string>

#include "nn/optim.h"

namespace xg::nn {

template <class T = float>
class LrScheduler {
 public:
  /// The base rate is the optimizer's rate now. Throws std::invalid_argument for steps_per_epoch 0.
  LrScheduler(Optimizer<T>& optimizer, std::size_t steps_per_epoch);
  virtual ~LrScheduler() = default;
  /// The rate for step k (0-based).
  virtual double lr_at(std::size_t k) const = 0;
  virtual std::string describe() const = 0;
  /// Sets the optimizer's rate to lr_at(k) and remembers k.
  void set_step(std::size_t k);
  /// set_step(current + 1): call after each optimizer step when not using the Trainer.
  void step() { set_step(k_ + 1); }
  std::size_t current_step() const { return k_; }
  double base_lr() const { return base_; }
  /// A new base rate (a resumed run given another --lr); the optimizer's rate follows at the current step.
  void set_base_lr(double lr);
  std::size_t steps_per_epoch() const { return spe_; }
  void set_steps_per_epoch(std::size_t n);
  /// {"step", "base_lr"}: what a checkpoint stores. load_state refuses non-whole or non-finite values (CheckpointError).
  std::map<std::string, double> state() const;
  void load_state(const std::map<std::string, double>& s);

 protected:
  /// Fractional epochs done before step k.
  double epochs_at(std::size_t k) const { return static_cast<double>(k) / static_cast<double>(spe_); }
  Optimizer<T>* opt_;
  double base_;
  std::size_t spe_, k_ = 0;
};

/// lr = base · gamma^⌊epoch / step_size⌋ (PyTorch's StepLR stepped once per epoch).
template <class T = float>
class StepLR : public LrScheduler<T> {
 public:
  StepLR(Optimizer<T>& optimizer, std::size_t step_size_epochs, double gamma, std::size_t steps_per_epoch);
  double lr_at(std::size_t k) const override;
  std::string describe() const override;

 private:
  std::size_t size_;
  double gamma_;
};

/// lr = eta_min + (base − eta_min)·(1 + cos(π·min(t, T)/T))/2 with t the fractional epoch: PyTorch's
/// CosineAnnealingLR, evaluated every step instead of every epoch.
template <class T = float>
class CosineLR : public LrScheduler<T> {
 public:
  CosineLR(Optimizer<T>& optimizer, double total_epochs, std::size_t steps_per_epoch, double eta_min = 0.0);
  double lr_at(std::size_t k) const override;
  std::string describe() const override;

 private:
  double total_, eta_min_;
};

/// Linear warm-up from base/W to base over the first W = ⌈warmup_epochs · steps_per_epoch⌉ steps (never above the
/// base rate), then cosine to eta_min at `total_epochs`.
template <class T = float>
class WarmupCosineLR : public LrScheduler<T> {
 public:
  WarmupCosineLR(Optimizer<T>& optimizer, double warmup_epochs, double total_epochs, std::size_t steps_per_epoch,
                 double eta_min = 0.0);
  double lr_at(std::size_t k) const override;
  std::string describe() const override;

 private:
  double warmup_, total_, eta_min_;
};

}  // namespace xg::nn
