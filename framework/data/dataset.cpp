#include "data/dataset.h"

#include <algorithm>
#include <cstring>

namespace xg::data {

Example Dataset::get(std::size_t i) const {
  Batch b = get_batch({i});
  Example e;
  e.input = Tensor<float>::from_shape(example_shape());
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

TensorDataset::TensorDataset(Tensor<float> inputs, ops::Labels targets, std::size_t classes, std::string name)
    : inputs_(std::move(inputs)), targets_(std::move(targets)), classes_(classes), name_(std::move(name)) {
  if (inputs_.dimension() < 1 || inputs_.shape()[0] != targets_.size())
    throw DataError(name_ + ": inputs of shape " + shape_str(Shape(inputs_.shape().begin(), inputs_.shape().end())) +
                    " do not hold one example per label (" + std::to_string(targets_.size()) + " labels)");
  std::int64_t largest = -1;
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    if (targets_[i] < 0 || (classes_ > 0 && static_cast<std::size_t>(targets_[i]) >= classes_))
      throw DataError(name_ + ": label " + std::to_string(targets_[i]) + " of example " + std::to_string(i) +
                      " is outside [0, " + std::to_string(classes_) + ")");
    largest = std::max(largest, targets_[i]);
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
  b.inputs = Tensor<float>::from_shape(s);
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
