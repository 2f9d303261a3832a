#pragma once
/// \file transforms.h
/// Batch transforms for image data [B,C,H,W] (float), applied by a DataLoader after it reads a batch.
///
/// `Normalize` maps x to (x − mean) / std per channel. `RandomShift` and `RandomRotation` are the book's
/// *expanding the training data* (chapter 6): each training image moved by up to k pixels, or turned by a small
/// angle, differently every epoch. They are deterministic: the draw for an example depends only on (the transform's
/// seed, the epoch, the example's dataset index), never on the order, the rank or the thread count, so a run is
/// reproducible and resumable bit for bit.

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace xg::data {

class Transform {
 public:
  virtual ~Transform() = default;
  /// Transforms `inputs` [B, ...] in place; `indices[b]` is row b's dataset index, `epoch` the loader's epoch.
  virtual void apply(Tensor<float>& inputs, const std::vector<std::size_t>& indices, std::size_t epoch) const = 0;
  virtual std::string describe() const = 0;
};

/// (x − mean[c]) / std[c] for channel c of [B,C,...] inputs; one value each applies to every channel.
/// Throws std::invalid_argument for an empty list, a std ≤ 0 or a non-finite value; ShapeError when the lists do not
/// match the channels.
class Normalize : public Transform {
 public:
  Normalize(std::vector<double> mean, std::vector<double> std);
  void apply(Tensor<float>& inputs, const std::vector<std::size_t>& indices, std::size_t epoch) const override;
  std::string describe() const override;

 private:
  std::vector<double> mean_, std_;
};

/// Moves each image by (dx, dy), each uniform in [−max_shift, max_shift] pixels, filling with 0 (inputs [B,C,H,W];
/// every channel of an image moves together).
class RandomShift : public Transform {
 public:
  explicit RandomShift(std::size_t max_shift, std::uint64_t seed = 0);
  void apply(Tensor<float>& inputs, const std::vector<std::size_t>& indices, std::size_t epoch) const override;
  std::string describe() const override;

 private:
  std::size_t max_;
  std::uint64_t seed_;
};

/// Turns each image about its centre by an angle uniform in [−max_degrees, max_degrees], bilinear interpolation,
/// 0 outside (inputs [B,C,H,W]). Throws std::invalid_argument unless 0 ≤ max_degrees ≤ 180.
class RandomRotation : public Transform {
 public:
  explicit RandomRotation(double max_degrees, std::uint64_t seed = 0);
  void apply(Tensor<float>& inputs, const std::vector<std::size_t>& indices, std::size_t epoch) const override;
  std::string describe() const override;

 private:
  double max_;
  std::uint64_t seed_;
};

}  // namespace xg::data
