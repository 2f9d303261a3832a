#include "models/visualize.h"

#include <fcntl.h>
#include <spawn.h>
#include <stb_image_write.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/errors.h"
#include "core/files.h"
#include "core/json_limits.h"

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
  std::vector<std::uint8_t> png;
  auto append = [](void* ctx, void* data, int size) {
    auto* out = static_cast<std::vector<std::uint8_t>*>(ctx);
    out->insert(out->end(), static_cast<std::uint8_t*>(data), static_cast<std::uint8_t*>(data) + size);
  };
  if (!stbi_write_png_to_func(append, &png, static_cast<int>(img.width), static_cast<int>(img.height), 1,
                              img.pixels.data(), static_cast<int>(img.width)))
    throw FileError("PNG '" + files::escape_bytes(path) + "': cannot encode the image");
  files::write_atomic(path, png.data(), png.size(), "PNG");
}

VisualizeOutput visualize(ImageClassifier<float>& model, const data::MnistDataset& data, std::size_t index, const std::string& dir) {
  if (index >= data.size())
    throw std::invalid_argument("visualize: image index " + std::to_string(index) + " is out of range for " +
                                std::to_string(data.size()) + " images");
  files::ensure_output_dir(dir, "visualize --out");
  // Every file is checked before the first is written: a bad one must not leave the others half done.
  for (const char* name : {"digit.png", "feature_maps.png", "pooled_maps.png", "filters.png", "overview.png"})
    files::output_target((std::filesystem::path(dir) / name).string(), "visualize --out");
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

namespace {

/// A private directory (mkdtemp, mode 0700) removed with its files when it goes out of scope.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/xgrad-plot-XXXXXX";
    if (!::mkdtemp(pattern.data())) throw FileError("cannot create a temporary directory: " + std::string(std::strerror(errno)));
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const char* name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Runs `argv` (looked up on PATH) with its working directory `dir`, standard input from /dev/null and its output
/// into `dir`/`log`; returns its exit status, or -1 when the program does not exist. No shell is involved.
int run_in(const std::string& dir, const std::vector<std::string>& argv, const char* log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addchdir_np(&fa, dir.c_str());
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc == ENOENT) return -1;
  if (rc != 0) throw std::runtime_error(std::string("cannot start ") + args[0] + ": " + std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw std::runtime_error(std::string("waiting for ") + args[0] + ": " + std::strerror(errno));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/// A metrics value as gnuplot data: the number, or "?" (gnuplot's missing-data mark) when it is null/non-finite.
std::string datum(const nlohmann::json& line, const char* key, double scale, std::size_t epoch, PlotOutput& out,
                  const std::string& where) {
  if (!line.contains(key)) throw DataError(where + ": the line has no \"" + key + "\" (not a metrics line of mnist --metrics)");
  const auto& v = line.at(key);
  if (v.is_null() || (v.is_number() && !std::isfinite(v.get<double>()))) {
    out.skipped.push_back("epoch " + std::to_string(epoch) + " " + key);
    return "?";
  }
  if (!v.is_number()) throw DataError(where + ": \"" + key + "\" is " + v.dump() + ", not a number");
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", scale * v.get<double>());
  return buf;
}

}  // namespace

void render_gnuplot(const std::string& script, const std::vector<std::pair<std::string, std::string>>& data,
                    const std::string& png, const std::string& role) {
  TempDir tmp;
  for (const auto& [name, text] : data) files::write_atomic(tmp.file(name.c_str()), text.data(), text.size(), "plot data");
  files::write_atomic(tmp.file("plot.gp"), script.data(), script.size(), "plot script");
  const int status = run_in(tmp.path(), {"gnuplot", "plot.gp"}, "gnuplot.log");
  if (status == -1) throw std::runtime_error("gnuplot is not installed (apt-get install gnuplot-nox)");
  if (status != 0) {
    std::string log;
    try {
      const auto l = files::read_regular_file(tmp.file("gnuplot.log"), 1 << 16, "gnuplot log");
      log.assign(l.begin(), l.end());
    } catch (const FileError&) {
    }
    for (char& c : log)
      if (c == '\n') c = ' ';
    throw std::runtime_error("gnuplot failed (exit status " + std::to_string(status) + ")" + (log.empty() ? "" : ": " + log));
  }
  const auto image = files::read_regular_file(tmp.file("plot.png"), std::size_t(1) << 28, "gnuplot's PNG");
  files::write_atomic(png, image.data(), image.size(), role);
}

PlotOutput plot_metrics(const std::string& jsonl, const std::string& png) {
  files::output_target(png, "plot --out");  // refused before any work if it is a device, a directory…
  std::vector<std::uint8_t> bytes;
  try {
    bytes = files::read_regular_file(jsonl, std::size_t(1) << 28, "metrics file");
  } catch (const FileError& e) {
    throw DataError(e.what());
  }
  PlotOutput out;
  std::string dat = "# epoch train_loss heldout_loss heldout_accuracy\n";
  const std::string text(bytes.begin(), bytes.end()), name = files::escape_bytes(jsonl);
  std::size_t line_no = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t nl = std::min(text.find('\n', pos), text.size());
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = name + ": line " + std::to_string(line_no);
    const nlohmann::json j = parse_json_bounded<DataError>(line.begin(), line.end(), where, JsonLimits{8, line.size()});
    if (!j.is_object() || !j.contains("epoch") || !j.at("epoch").is_number_unsigned())
      throw DataError(where + ": not a metrics line of mnist --metrics (no whole-number \"epoch\")");
    const auto epoch = j.at("epoch").get<std::size_t>();
    // One value at a time: the order of the skipped list is the column order.
    dat += std::to_string(epoch);
    for (const auto& [key, scale] : {std::pair{"train_loss", 1.0}, {"heldout_loss", 1.0}, {"heldout_accuracy", 100.0}})
      dat.append(" ").append(datum(j, key, scale, epoch, out, where));
    dat += "\n";
    ++out.epochs;
  }
  if (out.epochs == 0) throw DataError(name + ": has no epochs");
  // Fixed names inside the private directory: nothing in the script comes from the user.
  const std::string script =
      "set terminal pngcairo size 900,400\nset output 'plot.png'\nset datafile missing '?'\n"
      "set multiplot layout 1,2\nset xlabel 'epoch'\nset xtics 1\nset ylabel 'loss'\nset grid\n"
      "plot 'metrics.dat' using 1:2 with linespoints title 'train', '' using 1:3 with linespoints title 'held-out'\n"
      "set ylabel 'held-out accuracy (%)'\nplot 'metrics.dat' using 1:4 with linespoints title 'accuracy'\n"
      "unset multiplot\n";
  render_gnuplot(script, {{"metrics.dat", dat}}, png, "plot --out");
  return out;
}

}  // namespace xg::mnist
