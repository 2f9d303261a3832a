#include "nn/summary.h"

#include <map>

#include "core/variable.h"

namespace xg::nn {

namespace {
struct Row {
  std::string name, type, shape;
  std::size_t params = 0;
};

template <class T>
void collect_names(Module<T>& m, const std::string& prefix, std::map<const Module<T>*, std::pair<std::string, bool>>& out) {
  const auto kids = m.named_children();
  out[&m] = {prefix, kids.empty()};
  for (auto& [name, child] : kids) collect_names(*child, prefix.empty() ? name : prefix + "." + name, out);
}

template <class T>
struct Recorder : detail::LayerObserver<T> {
  std::map<const Module<T>*, std::pair<std::string, bool>> names;
  const Module<T>* root = nullptr;
  std::vector<Row> rows;
  void called(const Layer<T>& layer, const Variable<T>&, const Variable<T>& out) override {
    const auto it = names.find(&layer);
    if (&layer == root || it == names.end() || !it->second.second) return;  // the root, a stranger, or a composite
    std::size_t n = 0;
    for (const auto& p : layer.named_parameters(false)) n += p.second.numel();
    rows.push_back({it->second.first, layer.describe(), shape_str(out.shape()), n});
  }
};

std::string pad(std::string s, std::size_t w) {
  if (s.size() < w) s.append(w - s.size(), ' ');
  return s;
}
std::string lpad(const std::string& s, std::size_t w) { return s.size() < w ? std::string(w - s.size(), ' ') + s : s; }
}  // namespace

template <class T>
std::string summary(Layer<T>& model, const Shape& input_shape) {
  Recorder<T> rec;
  collect_names<T>(model, "", rec.names);
  rec.root = &model;
  Shape in = input_shape;
  in.insert(in.begin(), 1);
  const bool was_training = model.is_training();
  Variable<T> out;
  {
    NoGradGuard no_grad;
    model.eval();
    auto* previous = detail::layer_observer<T>;
    detail::layer_observer<T> = &rec;
    try {
      out = model(Variable<T>(zeros<T>(in)));
    } catch (...) {
      detail::layer_observer<T> = previous;
      model.train(was_training);
      throw;
    }
    detail::layer_observer<T> = previous;
    model.train(was_training);
  }
  std::size_t wn = 5, wt = 4, ws = 12;
  for (const auto& r : rec.rows) {
    wn = std::max(wn, r.name.size());
    wt = std::max(wt, r.type.size());
    ws = std::max(ws, r.shape.size());
  }
  std::string s = "xgrad summary: " + model.describe() + " on input " + shape_str(in) + "\n";
  s += pad("layer", wn + 2) + pad("type", wt + 2) + pad("output shape", ws + 2) + lpad("parameters", 10) + "\n";
  for (const auto& r : rec.rows)
    s += pad(r.name, wn + 2) + pad(r.type, wt + 2) + pad(r.shape, ws + 2) + lpad(std::to_string(r.params), 10) + "\n";
  std::size_t total = 0, trainable = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    total += p.numel();
    if (p.requires_grad()) trainable += p.numel();
  }
  s += "total: " + std::to_string(total) + " parameters (" + std::to_string(trainable) + " trainable) in " +
       std::to_string(rec.rows.size()) + " layer calls; output " + shape_str(out.shape()) + "\n";
  return s;
}

template std::string summary(Layer<float>&, const Shape&);
template std::string summary(Layer<double>&, const Shape&);

}  // namespace xg::nn
