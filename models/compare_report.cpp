// mnist compare's reports: compare.md (the table and the verdict), compare.json and compare.png (gnuplot).
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "core/files.h"
#include "models/compare.h"
#include "models/visualize.h"

namespace xg::mnist {

std::string pct(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", 100 * v);
  return b;
}
std::string num(double v, int digits) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}
namespace {
std::string p_text(double p) {
  if (!std::isfinite(p)) return "n/a";
  if (p < 0.0001) return "< 0.0001";
  return num(p, 4);
}
}  // namespace

std::string comparison_markdown(const ComparisonSummary& s, const std::string& settings) {
  std::string md = "# Pooling compared on validation data (mnist compare)\n\n`" + settings + "`\n\n";
  md += "Each run keeps the epoch with the best **validation** accuracy; the test accuracy is read at that epoch and is "
        "never used to choose. Mean ± sample standard deviation over the seeds.\n\n";
  md += "| pooling | validation accuracy, % | chosen epoch (per seed) | test accuracy at that epoch, % | training images/s |\n";
  md += "| --- | --- | --- | --- | --- |\n";
  for (const auto& p : s.pools) {
    std::string epochs;
    for (std::size_t i = 0; i < p.epoch.size(); ++i) epochs += (i ? ", " : "") + std::to_string(p.epoch[i]);
    md += "| " + p.pool + " | " + pct(p.validation_mean) + " ± " + pct(p.validation_sd) + " | " + num(p.epoch_mean, 1) +
          " (" + epochs + ") | " + pct(p.test_mean) + " ± " + pct(p.test_sd) + " | " + num(p.images_per_second, 0) + " |\n";
  }
  if (s.pools.empty()) return md;
  const PoolSummary& w = s.pools[s.winner];
  md += "\nWinner on validation: **" + w.pool + "** (" + pct(w.validation_mean) + "%";
  if (s.winner == s.runner_up) return md + "; only one pooling was compared).\n";
  const PoolSummary& r = s.pools[s.runner_up];
  md += " against " + r.pool + "'s " + pct(r.validation_mean) + "%). Welch's t-test on the per-seed validation "
        "accuracies: p = " + p_text(s.p_value) + " — ";
  if (!std::isfinite(s.p_value)) md += "one seed per pooling cannot separate a lead from the seed-to-seed noise (use --seeds 2 or more).\n";
  else if (s.significant) md += "the lead is larger than the seed-to-seed noise (p < 0.05).\n";
  else md += "the lead is within the seed-to-seed noise (p ≥ 0.05): on this evidence the two are not distinguishable.\n";
  md += "Test accuracy of the winner at its chosen epochs: " + pct(w.test_mean) + " ± " + pct(w.test_sd) + "%.\n";
  return md;
}

namespace {
/// The plot's data: validation accuracy per epoch, one mean line and a min–max band per pooling. The pool names reach
/// gnuplot only inside the data files (column headers), never in the script.
std::vector<std::pair<std::string, std::string>> plot_data(const ComparisonSummary& summary, std::size_t epochs) {
  std::vector<std::pair<std::string, std::string>> data;
  for (std::size_t i = 0; i < summary.pools.size(); ++i) {
    const auto& p = summary.pools[i];
    std::string d = "epoch " + p.pool + " min max\n";
    for (std::size_t e = 0; e < epochs; ++e) {
      double lo = 1e9, hi = -1e9, s = 0;
      for (const auto& c : p.curves) {
        lo = std::min(lo, c[e]);
        hi = std::max(hi, c[e]);
        s += c[e];
      }
      d += std::to_string(e + 1) + " " + num(100 * s / static_cast<double>(p.curves.size()), 4) + " " + num(100 * lo, 4) +
           " " + num(100 * hi, 4) + "\n";
    }
    data.emplace_back("pool" + std::to_string(i + 1) + ".dat", d);
  }
  return data;
}

nlohmann::json comparison_json(const CompareReport& report, const CompareOptions& o, const std::string& command) {
  const ComparisonSummary& s = report.summary;
  nlohmann::json js{{"command", command}, {"epochs", o.epochs}, {"validation", o.validation}, {"seeds", o.seeds},
                    {"winner", s.pools[s.winner].pool},
                    {"runner_up", s.pools[s.runner_up].pool},
                    {"welch_p_value", std::isfinite(s.p_value) ? nlohmann::json(s.p_value) : nlohmann::json()},
                    {"lead_larger_than_noise", s.significant},
                    {"test", "Welch's two-sided t-test on the per-seed best validation accuracies, p < 0.05"}};
  for (const auto& p : s.pools)
    js["poolings"].push_back({{"pool", p.pool}, {"seeds", p.seeds}, {"validation_accuracy", p.validation},
                              {"chosen_epoch", p.epoch}, {"test_accuracy_at_chosen_epoch", p.test},
                              {"validation_mean", p.validation_mean}, {"validation_sd", p.validation_sd},
                              {"test_mean", p.test_mean}, {"test_sd", p.test_sd},
                              {"train_images_per_second", p.images_per_second}});
  return js;
}
}  // namespace

void write_comparison(CompareReport& report, const CompareOptions& o, const std::string& command) {
  const std::string dir = o.out_dir;
  const std::string md = comparison_markdown(report.summary, command);
  files::write_atomic(dir + "/compare.md", md.data(), md.size(), "compare.md");
  report.markdown = md;
  const std::string jtext = comparison_json(report, o, command).dump(2) + "\n";
  files::write_atomic(dir + "/compare.json", jtext.data(), jtext.size(), "compare.json");
  report.files = {dir + "/compare.md", dir + "/compare.json"};
  const auto data = plot_data(report.summary, o.epochs);
  const std::string script =
      "set terminal pngcairo size 900,500\nset output 'plot.png'\nset xlabel 'epoch'\n"
      "set ylabel 'validation accuracy (%)'\nset grid\nset key bottom right\nset xtics 1\n"
      "set style fill transparent solid 0.15 noborder\n"
      "plot for [i=1:" + std::to_string(data.size()) + "] sprintf('pool%d.dat', i) using 1:3:4 every ::1 with filledcurves "
      "lc i notitle, for [i=1:" + std::to_string(data.size()) + "] sprintf('pool%d.dat', i) using 1:2 with linespoints "
      "lw 2 lc i title columnheader(2)\n";
  try {
    render_gnuplot(script, data, dir + "/compare.png", "compare.png");
    report.files.push_back(dir + "/compare.png");
  } catch (const FileError&) {
    throw;
  } catch (const std::runtime_error& e) {
    report.note = std::string("compare.png not drawn: ") + e.what();
  }
}

}  // namespace xg::mnist
