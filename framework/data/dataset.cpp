#include "data/dataset.h"

#include <algorithm>
#include <cstring>

namespace xg::data {

Example Dataset::get(std::size_t i) const {
  Batch b = get_batch({i});
  Example e;
  e.input = xg::empty<float>(example_shape());
  std::copy(b.inputs.data(), b.inputs.data() + b.inputs.size(), e.input.data());
  e.target = b.targets.at(0);
  return e;
}

void Dataset::check_indices(const std::vector<std::size_t>& indices) const {
  for (std::size_t i : indices)
    if (i >= size())
      throw DataError(name() + ": example " + std::to_string(i) + " is out of range (the set has " +
                      std::to_string(size()) + " examples)");
}

TensorDataset::TensorDataset(Tensor<float> inputs, Labels targets, std::size_t classes, std::string name)
    : inputs_(std::move(inputs)), targets_(std::move(targets)), classes_(classes), name_(std::move(name)) {
  if (inputs_.dimension() < 1 || inputs_.shape()[0] != targets_.size())
    throw DataError(name_ + ": inputs of shape " + shape_str(Shape(inputs_.shape().begin(), inputs_.shape().end())) +
                    " do not hold one example per label (" + std::to_string(targets_.size()) + " labels)");
  // Labels are class indices: non-negative, below `classes` when it is given; a counted class number must fit in 31
  // bits (label INT64_MAX had overflowed largest + 1 into 2^63 classes).
  constexpr std::int64_t kMaxLabel = (std::int64_t(1) << 31) - 2;
  std::int64_t largest = -1;
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    const std::int64_t t = targets_[i];
    const std::string which = name_ + ": label " + std::to_string(t) + " of example " + std::to_string(i);
    if (classes_ > 0 && (t < 0 || static_cast<std::size_t>(t) >= classes_))
      throw DataError(which + " is outside [0, " + std::to_string(classes_) + ")");
    if (t < 0) throw DataError(which + " is negative (labels are class indices 0, 1, …)");
    if (classes_ == 0 && t > kMaxLabel)
      throw DataError(which + " is too large to count classes from (at most " + std::to_string(kMaxLabel) +
                      "); pass the number of classes");
    largest = std::max(largest, t);
  }
  if (classes_ == 0) classes_ = static_cast<std::size_t>(largest + 1);
  stride_ = targets_.empty() ? 0 : inputs_.size() / targets_.size();
}

Shape TensorDataset::example_shape() const { return Shape(inputs_.shape().begin() + 1, inputs_.shape().end()); }

Batch TensorDataset::get_batch(const std::vector<std::size_t>& indices) const {
  check_indices(indices);
  Shape s = example_shape();
  s.insert(s.begin(), indices.size());
  Batch b;
  b.inputs = xg::empty<float>(s);
  b.targets.resize(indices.size());
  for (std::size_t r = 0; r < indices.size(); ++r) {
    if (stride_) std::memcpy(b.inputs.data() + r * stride_, inputs_.data() + indices[r] * stride_, stride_ * sizeof(float));
    b.targets[r] = targets_[indices[r]];
  }
  b.indices = indices;
  b.global_size = indices.size();
  return b;
}

std::vector<std::size_t> shuffled_indices(std::size_t n, Rng& rng) {
  std::vector<std::size_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) idx[i] = i;
  for (std::size_t i = n; i > 1; --i) std::swap(idx[i - 1], idx[rng.below(i)]);
  return idx;
}

}  // namespace xg::data
