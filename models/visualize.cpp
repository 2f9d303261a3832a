#include "models/visualize.h"

#include <stb_image_write.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace xg::mnist {

namespace {

constexpr std::size_t kGap = 8;

Image blank(std::size_t w, std::size_t h) { return {w, h, std::vector<std::uint8_t>(w * h, 255)}; }

/// Draws a [rows, cols] map scaled by `s` at (x, y); values mapped linearly from [lo, hi] to white..black.
void draw(Image& img, const float* map, std::size_t rows, std::size_t cols, std::size_t s, std::size_t x, std::size_t y,
          float lo, float hi) {
  const float range = hi > lo ? hi - lo : 1.0f;
  for (std::size_t r = 0; r < rows * s; ++r)
    for (std::size_t c = 0; c < cols * s; ++c) {
      const float v = std::clamp((map[(r / s) * cols + c / s] - lo) / range, 0.0f, 1.0f);
      img.pixels[(y + r) * img.width + x + c] = static_cast<std::uint8_t>(255.0f - 255.0f * v);
    }
}

void min_max(const float* p, std::size_t n, float& lo, float& hi) {
  lo = *std::min_element(p, p + n);
  hi = *std::max_element(p, p + n);
}

/// Maps [N=1, C, H, W] drawn in a row (or a column), each scaled by s and normalised on its own.
Image row_of_maps(const Tensor<float>& t, std::size_t s, bool vertical = false) {
  const std::size_t c = t.shape()[1], h = t.shape()[2], w = t.shape()[3];
  Image img = vertical ? blank(w * s + 2 * kGap, c * h * s + (c + 1) * kGap)
                       : blank(c * w * s + (c + 1) * kGap, h * s + 2 * kGap);
  for (std::size_t k = 0; k < c; ++k) {
    const float* m = t.data() + k * h * w;
    float lo, hi;
    min_max(m, h * w, lo, hi);
    const std::size_t x = vertical ? kGap : kGap + k * (w * s + kGap), y = vertical ? kGap + k * (h * s + kGap) : kGap;
    draw(img, m, h, w, s, x, y, lo, hi);
  }
  return img;
}

void paste(Image& dst, const Image& src, std::size_t x, std::size_t y) {
  for (std::size_t r = 0; r < src.height; ++r)
    std::copy_n(src.pixels.data() + r * src.width, src.width, dst.pixels.data() + (y + r) * dst.width + x);
}

}  // namespace

void write_png(const std::string& path, const Image& img) {
  if (!stbi_write_png(path.c_str(), static_cast<int>(img.width), static_cast<int>(img.height), 1, img.pixels.data(),
                      static_cast<int>(img.width)))
    throw std::runtime_error("cannot write PNG '" + path + "'");
}

VisualizeOutput visualize(MnistCnn<float>& model, const Dataset& data, std::size_t index, const std::string& dir) {
  if (index >= data.size())
    throw std::invalid_argument("visualize: image index " + std::to_string(index) + " is out of range for " +
                                std::to_string(data.size()) + " images");
  std::filesystem::create_directories(dir);
  NoGradGuard no_grad;
  model.eval();
  const Tensor<float> x = data.images<float>({index});
  const auto maps = model.feature_maps(Variable<float>(x));  // stage 1: activation, pooled; stage 2: ...
  model.train();
  VisualizeOutput out;
  auto save = [&](const std::string& name, const Image& img) {
    const std::string path = (std::filesystem::path(dir) / name).string();
    write_png(path, img);
    out.files.push_back(path);
  };
  const Image digit = row_of_maps(x, 6);           // 28x28 -> 168
  const Image conv = row_of_maps(maps[0].value(), 6);   // 24x24 -> 144
  const Image pooled = row_of_maps(maps[1].value(), 12);  // 12x12 -> 144
  save("digit.png", digit);
  save("feature_maps.png", conv);
  save("pooled_maps.png", pooled);
  {  // filters: a row of 5x5 kernels scaled 24, one shared scale symmetric around 0 (grey = 0)
    const Tensor<float>& w = model.first_conv().weight.value();
    const std::size_t f = w.shape()[0], c = w.shape()[1], kh = w.shape()[2], kw = w.shape()[3], s = 24;
    float lo, hi;
    min_max(w.data(), w.size(), lo, hi);
    const float m = std::max(std::abs(lo), std::abs(hi));
    Image img = blank(f * kw * s + (f + 1) * kGap, kh * s + 2 * kGap);
    for (std::size_t k = 0; k < f; ++k) draw(img, w.data() + k * c * kh * kw, kh, kw, s, kGap + k * (kw * s + kGap), kGap, -m, m);
    save("filters.png", img);
  }
  {  // overview: the input, the maps after the convolution, the maps after pooling, left to right
    const Image conv_col = row_of_maps(maps[0].value(), 6, true), pooled_col = row_of_maps(maps[1].value(), 12, true);
    const std::size_t h = std::max({digit.height, conv_col.height, pooled_col.height});
    Image img = blank(digit.width + conv_col.width + pooled_col.width + 4 * kGap, h);
    paste(img, digit, kGap, (h - digit.height) / 2);
    paste(img, conv_col, digit.width + 2 * kGap, (h - conv_col.height) / 2);
    paste(img, pooled_col, digit.width + conv_col.width + 3 * kGap, (h - pooled_col.height) / 2);
    save("overview.png", img);
  }
  return out;
}

void plot_metrics(const std::string& jsonl, const std::string& png) {
  std::ifstream in(jsonl);
  if (!in) throw std::runtime_error("cannot read metrics '" + jsonl + "'");
  const std::string dat = png + ".dat", gp = png + ".gp";
  {
    std::ofstream d(dat);
    d << "# epoch train_loss heldout_loss heldout_accuracy\n";
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const auto j = nlohmann::json::parse(line);
      d << j.at("epoch").get<std::size_t>() << " " << j.at("train_loss").get<double>() << " "
        << j.at("heldout_loss").get<double>() << " " << 100.0 * j.at("heldout_accuracy").get<double>() << "\n";
      ++n;
    }
    if (n == 0) throw std::runtime_error("metrics '" + jsonl + "' has no epochs");
  }
  {
    std::ofstream g(gp);
    g << "set terminal pngcairo size 900,400\nset output '" << png << "'\nset multiplot layout 1,2\n"
      << "set xlabel 'epoch'\nset xtics 1\nset ylabel 'loss'\nset grid\n"
      << "plot '" << dat << "' using 1:2 with linespoints title 'train', '' using 1:3 with linespoints title 'held-out'\n"
      << "set ylabel 'held-out accuracy (%)'\nplot '" << dat << "' using 1:4 with linespoints title 'accuracy'\n"
      << "unset multiplot\n";
  }
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0)
    throw std::runtime_error("gnuplot is not installed (apt-get install gnuplot-nox); the data and the script are in " +
                             dat + " and " + gp);
  if (std::system(("gnuplot '" + gp + "'").c_str()) != 0) throw std::runtime_error("gnuplot failed on " + gp);
}

}  // namespace xg::mnist
