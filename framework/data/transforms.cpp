#include "data/transforms.h"

#include <cmath>
#include <stdexcept>

#include "core/errors.h"
#include "core/random.h"

namespace xg::data {

namespace {
/// The generator for one example's draw: a function of (seed, epoch, index) only.
Rng example_rng(std::uint64_t seed, std::size_t epoch, std::size_t index) {
  return Rng(splitmix64(splitmix64(seed ^ 0x7472616e73666f72ULL) ^ epoch) ^ splitmix64(index));
}

struct Planes {
  std::size_t batch, channels, h, w;
};
Planes image_planes(const Tensor<float>& x, const std::vector<std::size_t>& indices, const char* who) {
  if (x.dimension() != 4 || x.shape()[0] != indices.size())
    throw ShapeError(std::string(who) + ": expected images [B,C,H,W] with one index per image, got " +
                     shape_str(shape_of(x)) + " and " + std::to_string(indices.size()) + " indices");
  return {x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]};
}
}  // namespace

Normalize::Normalize(std::vector<double> mean, std::vector<double> std) : mean_(std::move(mean)), std_(std::move(std)) {
  if (mean_.empty() || std_.empty() || mean_.size() != std_.size())
    throw std::invalid_argument("Normalize: mean and std must be non-empty lists of the same length");
  for (std::size_t c = 0; c < mean_.size(); ++c)
    if (!std::isfinite(mean_[c]) || !std::isfinite(std_[c]) || !(std_[c] > 0))
      throw std::invalid_argument("Normalize: channel " + std::to_string(c) + " has mean " + std::to_string(mean_[c]) +
                                  " and std " + std::to_string(std_[c]) + " (std must be finite and positive)");
}

void Normalize::apply(Tensor<float>& x, const std::vector<std::size_t>&, std::size_t) const {
  if (x.dimension() < 2) throw ShapeError("Normalize: expected inputs [B,C,...], got " + shape_str(shape_of(x)));
  const std::size_t b = x.shape()[0], c = x.shape()[1], plane = c && b ? x.size() / (b * c) : 0;
  if (mean_.size() != 1 && mean_.size() != c)
    throw ShapeError("Normalize: " + std::to_string(mean_.size()) + " means for inputs with " + std::to_string(c) +
                     " channels " + shape_str(shape_of(x)));
  float* p = x.data();
  for (std::size_t i = 0; i < b; ++i)
    for (std::size_t ch = 0; ch < c; ++ch) {
      const std::size_t k = mean_.size() == 1 ? 0 : ch;
      const float m = static_cast<float>(mean_[k]), inv = static_cast<float>(1.0 / std_[k]);
      float* q = p + (i * c + ch) * plane;
      for (std::size_t j = 0; j < plane; ++j) q[j] = (q[j] - m) * inv;
    }
}

std::string Normalize::describe() const {
  std::string s = "Normalize(mean=";
  for (std::size_t i = 0; i < mean_.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(mean_[i]);
  }
  s += ", std=";
  for (std::size_t i = 0; i < std_.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(std_[i]);
  }
  return s + ")";
}

RandomShift::RandomShift(std::size_t max_shift, std::uint64_t seed) : max_(max_shift), seed_(seed) {
  if (max_shift > 1024) throw std::invalid_argument("RandomShift: max_shift " + std::to_string(max_shift) + " is > 1024");
}

void RandomShift::apply(Tensor<float>& x, const std::vector<std::size_t>& indices, std::size_t epoch) const {
  const Planes s = image_planes(x, indices, "RandomShift");
  if (max_ == 0) return;
  const auto span = static_cast<std::int64_t>(max_);
  std::vector<float> tmp(s.h * s.w);
  for (std::size_t b = 0; b < s.batch; ++b) {
    Rng rng = example_rng(seed_, epoch, indices[b]);
    const std::int64_t dx = static_cast<std::int64_t>(rng.below(2 * max_ + 1)) - span;
    const std::int64_t dy = static_cast<std::int64_t>(rng.below(2 * max_ + 1)) - span;
    for (std::size_t c = 0; c < s.channels; ++c) {
      float* p = x.data() + (b * s.channels + c) * s.h * s.w;
      for (std::size_t y = 0; y < s.h; ++y)
        for (std::size_t xx = 0; xx < s.w; ++xx) {
          const std::int64_t sy = static_cast<std::int64_t>(y) - dy, sx = static_cast<std::int64_t>(xx) - dx;
          const bool in = sy >= 0 && sx >= 0 && sy < static_cast<std::int64_t>(s.h) && sx < static_cast<std::int64_t>(s.w);
          tmp[y * s.w + xx] = in ? p[static_cast<std::size_t>(sy) * s.w + static_cast<std::size_t>(sx)] : 0.0f;
        }
      std::copy(tmp.begin(), tmp.end(), p);
    }
  }
}

std::string RandomShift::describe() const { return "RandomShift(" + std::to_string(max_) + ")"; }

RandomRotation::RandomRotation(double max_degrees, std::uint64_t seed) : max_(max_degrees), seed_(seed) {
  if (!(max_degrees >= 0 && max_degrees <= 180))
    throw std::invalid_argument("RandomRotation: max_degrees must be in [0, 180], got " + std::to_string(max_degrees));
}

void RandomRotation::apply(Tensor<float>& x, const std::vector<std::size_t>& indices, std::size_t epoch) const {
  const Planes s = image_planes(x, indices, "RandomRotation");
  if (max_ == 0) return;
  std::vector<float> tmp(s.h * s.w);
  const double cy = (static_cast<double>(s.h) - 1) / 2, cx = (static_cast<double>(s.w) - 1) / 2;
  for (std::size_t b = 0; b < s.batch; ++b) {
    Rng rng = example_rng(seed_ ^ 0x726f74ULL, epoch, indices[b]);
    const double a = rng.uniform(-max_, max_) * 3.14159265358979323846 / 180.0, ca = std::cos(a), sa = std::sin(a);
    for (std::size_t c = 0; c < s.channels; ++c) {
      float* p = x.data() + (b * s.channels + c) * s.h * s.w;
      const auto at = [&](std::int64_t yy, std::int64_t xx) -> double {
        if (yy < 0 || xx < 0 || yy >= static_cast<std::int64_t>(s.h) || xx >= static_cast<std::int64_t>(s.w)) return 0.0;
        return p[static_cast<std::size_t>(yy) * s.w + static_cast<std::size_t>(xx)];
      };
      for (std::size_t y = 0; y < s.h; ++y)
        for (std::size_t xx = 0; xx < s.w; ++xx) {
          // The source of output pixel (y, x): rotate it back by −a about the centre.
          const double ry = static_cast<double>(y) - cy, rx = static_cast<double>(xx) - cx;
          const double sy = ca * ry - sa * rx + cy, sx = sa * ry + ca * rx + cx;
          const double fy = std::floor(sy), fx = std::floor(sx), wy = sy - fy, wx = sx - fx;
          const auto y0 = static_cast<std::int64_t>(fy), x0 = static_cast<std::int64_t>(fx);
          const double v = (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x0 + 1)) +
                           wy * ((1 - wx) * at(y0 + 1, x0) + wx * at(y0 + 1, x0 + 1));
          tmp[y * s.w + xx] = static_cast<float>(v);
        }
      std::copy(tmp.begin(), tmp.end(), p);
    }
  }
}

std::string RandomRotation::describe() const { return "RandomRotation(" + std::to_string(max_) + ")"; }

}  // namespace xg::data
