// `mnist plot`: --metrics JSON lines rendered to a PNG of loss and accuracy per epoch (gnuplot).
#include <fmt/core.h>

#include "core/files.h"
#include "models/cli/cli.h"
#include "models/visualize.h"

namespace xg::mnist::cli {

Command plot_command(CLI::App& app) {
  struct State {
    std::string in, out;
  };
  auto s = std::make_shared<State>();
  CLI::App* sub = app.add_subcommand("plot", "render --metrics JSON lines to a PNG of loss and accuracy per epoch (gnuplot)");
  sub->add_option("--metrics", s->in, "the JSON lines file written by --metrics")->required();
  sub->add_option("--out", s->out, "the PNG to write")->required();
  return {sub, &s->out, false, [s](dist::Communicator&) {
            const PlotOutput p = plot_metrics(s->in, s->out);
            fmt::print("wrote {} ({} epochs)\n", files::escape_bytes(s->out), p.epochs);
            if (!p.skipped.empty()) {
              std::string list;
              for (const auto& v : p.skipped) list += (list.empty() ? "" : ", ") + v;
              fmt::print("left out {} non-finite value{}: {}\n", p.skipped.size(), p.skipped.size() == 1 ? "" : "s", list);
            }
            return 0;
          }};
}

}  // namespace xg::mnist::cli
