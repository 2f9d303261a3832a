#pragma once
/// \file dataset.h
/// The dataset interface the DataLoader and the Trainer read from, and `TensorDataset` (examples held in memory).
///
/// A dataset is a numbered set of labelled examples for classification: `size()` examples, each an input of
/// `example_shape()` (e.g. {1,28,28}) and an integer class in [0, classes()). `get_batch(indices)` stacks the examples
/// `indices` into one tensor [B, example_shape...] with their labels [B]; it is the one method a dataset implements
/// (reading a whole batch at once lets an in-memory set copy straight into the batch tensor). Errors are
/// `xg::DataError` naming the dataset and the offending index or shape.

#include <cstdint>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/random.h"
#include "core/tensor.h"
#include "core/tensor.h"

namespace xg::data {

/// Stacked examples: inputs [B, ...] and their class labels [B]. A DataLoader also says which examples they are and
/// how large the global batch was (with K ranks, each rank holds a shard of it).
struct Batch {
  Tensor<float> inputs;
  Labels targets;
  std::vector<std::size_t> indices;  ///< the dataset indices of the rows, in order
  std::size_t global_size = 0;       ///< examples in the whole mini-batch, over all ranks (≥ targets.size())
};

/// One example: input of example_shape() and its label.
struct Example {
  Tensor<float> input;
  std::int64_t target = 0;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  /// Number of examples.
  virtual std::size_t size() const = 0;
  /// The shape of one example's input, without the batch dimension ({1,28,28} for MNIST).
  virtual Shape example_shape() const = 0;
  /// Number of classes: every label is in [0, classes()).
  virtual std::size_t classes() const = 0;
  /// The examples `indices` stacked: inputs [B, example_shape()...], targets [B]. Throws DataError for an index ≥ size().
  virtual Batch get_batch(const std::vector<std::size_t>& indices) const = 0;
  /// A short name for messages ("MNIST training set").
  virtual std::string name() const { return "dataset"; }

  /// Example `i` (get_batch of one, without the batch dimension).
  Example get(std::size_t i) const;

 protected:
  /// Throws DataError naming this dataset unless every index is < size().
  void check_indices(const std::vector<std::size_t>& indices) const;
};

/// Examples held in memory as one float tensor [N, ...] and N labels (PyTorch's TensorDataset).
class TensorDataset : public Dataset {
 public:
  /// Throws DataError when `inputs` has no batch dimension, its first extent is not targets.size(), or a label is
  /// negative or ≥ `classes` (0: one more than the largest label).
  TensorDataset(Tensor<float> inputs, Labels targets, std::size_t classes = 0, std::string name = "tensor dataset");
  std::size_t size() const override { return targets_.size(); }
  Shape example_shape() const override;
  std::size_t classes() const override { return classes_; }
  Batch get_batch(const std::vector<std::size_t>& indices) const override;
  std::string name() const override { return name_; }
  const Tensor<float>& inputs() const { return inputs_; }
  const Labels& targets() const { return targets_; }

 private:
  Tensor<float> inputs_;
  Labels targets_;
  std::size_t classes_ = 0, stride_ = 0;
  std::string name_;
};

/// A seeded shuffled order of [0, n): Fisher–Yates from `rng`, serially.
std::vector<std::size_t> shuffled_indices(std::size_t n, Rng& rng);

}  // namespace xg::data
