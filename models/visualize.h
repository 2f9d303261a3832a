#pragma once
/// \file visualize.h
/// Pictures of what the seed chapter draws, from a real network: an input digit, the feature maps after the
/// convolution (and activation), the maps after pooling, and the learned first-layer filters. PNG via stb.

#include <cstdint>
#include <string>
#include <vector>

#include "models/mnist_cnn.h"
#include "data/mnist.h"

namespace xg::mnist {

/// A grey image, row-major, 0 = black.
struct Image {
  std::size_t width = 0, height = 0;
  std::vector<std::uint8_t> pixels;
};

/// Writes a grey PNG atomically (core/files.h rules: a regular file or a new one); throws FileError naming the path.
void write_png(const std::string& path, const Image& img);

/// The files written by `visualize`, with their sizes (scale factors and gaps are fixed; see visualize.cpp).
struct VisualizeOutput {
  std::vector<std::string> files;
};

/// Writes digit.png (the input), feature_maps.png (each first-stage map after the activation, side by side),
/// pooled_maps.png (after pooling), filters.png (the first-layer filters, grey = 0) and overview.png (the three side by
/// side, as the chapter's figure) into `dir` for image `index` of `data`.
VisualizeOutput visualize(ImageClassifier<float>& model, const data::MnistDataset& data, std::size_t index, const std::string& dir);

/// What plot_metrics drew.
struct PlotOutput {
  std::size_t epochs = 0;                 ///< metrics lines read
  std::vector<std::string> skipped;       ///< values left out because they were not finite, e.g. "epoch 3 train_loss"
};

/// Renders a `--metrics` JSONL file to a PNG of loss and accuracy per epoch with gnuplot. No shell is involved:
/// gnuplot is spawned with an argument vector in a private temporary directory, and its script holds no text from
/// the user (only fixed names inside that directory); the PNG is then moved to `png` atomically. Non-finite values
/// (written as null) are left out of the plot and listed in the result. Throws DataError for a bad metrics file
/// (a line that is not a metrics object, JSON nested too deep, a file too large), FileError for `png`, and
/// std::runtime_error naming the package to install if gnuplot is missing.
PlotOutput plot_metrics(const std::string& jsonl, const std::string& png);

/// Runs gnuplot on `script` in a private temporary directory holding the `data` files (name → contents); the script
/// must write 'plot.png' there, which is then moved to `png` atomically (FileError naming `role`). No shell, and the
/// script must hold no user text (only fixed names inside the directory). std::runtime_error naming the package when
/// gnuplot is missing, or with gnuplot's message when it fails.
void render_gnuplot(const std::string& script, const std::vector<std::pair<std::string, std::string>>& data,
                    const std::string& png, const std::string& role);

}  // namespace xg::mnist
