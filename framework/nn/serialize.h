#pragma once
/// \file serialize.h
/// Whole-model checkpoints in one call: `xg::save(path, model, optimizer[, scheduler])` and `xg::load(...)`.
///
///     xg::save("run.xgck", model, optimizer, scheduler);   // after training
///     xg::load("run.xgck", model, optimizer, scheduler);   // a model and optimizer built the same way
///
/// A checkpoint (nn/checkpoint.h: versioned, checksummed, written atomically) holds the model's architecture string
/// (`describe()`: every layer with its strides, paddings, dilations), its parameters and buffers under "model.<name>",
/// the optimizer's state under "optim.<state>.<parameter name>" (e.g. optim.momentum_buffer.conv1.weight) with its
/// type and scalars, and the scheduler's step and base rate. `load` checks everything before changing anything: a
/// model of another architecture is refused with a message listing every missing, unexpected and mis-shaped tensor,
/// an optimizer of another type or over other parameters is refused, and on any error the model, optimizer and
/// scheduler are unchanged (CheckpointError; exit 4 in the mnist CLI).
///
/// The lower-level pieces are public for programs that add their own state (the Trainer stores its epoch and
/// generators next to these): add_optimizer_state / optimizer_state_from.

#include <map>
#include <string>

#include "nn/checkpoint.h"
#include "nn/optim.h"
#include "nn/scheduler.h"

namespace xg::nn {

/// Adds `opt`'s tensors to `ck` as "optim.<state>.<parameter name>" and returns its scalars keyed the same way
/// ("lr", "step.fc1.weight"…). Every parameter of `opt` must be one of `model`'s (std::invalid_argument otherwise).
template <class T>
std::map<std::string, double> add_optimizer_state(Checkpoint& ck, const Optimizer<T>& opt, Module<T>& model);

/// The state stored by add_optimizer_state, in the positional form `opt.load_state` takes. Also reads checkpoints
/// written before states were keyed by name (optim.momentum_buffer.3). Throws CheckpointError naming an entry that
/// belongs to no parameter of `opt`.
template <class T>
OptimizerState<T> optimizer_state_from(const Checkpoint& ck, const std::map<std::string, double>& scalars,
                                       const Optimizer<T>& opt, Module<T>& model);

}  // namespace xg::nn

namespace xg {

/// The model (parameters and buffers) to `path`, atomically.
template <class T>
void save(const std::string& path, nn::Module<T>& model);
/// The model and the optimizer's state.
template <class T>
void save(const std::string& path, nn::Module<T>& model, const nn::Optimizer<T>& optimizer);
/// The model, the optimizer's state and the scheduler's step.
template <class T>
void save(const std::string& path, nn::Module<T>& model, const nn::Optimizer<T>& optimizer,
          const nn::LrScheduler<T>& scheduler);

/// Loads what `save` wrote into a model (and optimizer, scheduler) built the same way; all or nothing.
template <class T>
void load(const std::string& path, nn::Module<T>& model);
template <class T>
void load(const std::string& path, nn::Module<T>& model, nn::Optimizer<T>& optimizer);
template <class T>
void load(const std::string& path, nn::Module<T>& model, nn::Optimizer<T>& optimizer, nn::LrScheduler<T>& scheduler);

}  // namespace xg
