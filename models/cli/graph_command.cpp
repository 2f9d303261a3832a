// `mnist graph`: the recorded graph of one training step as Graphviz DOT.
#include <fmt/core.h>

#include "core/dot.h"
#include "core/files.h"
#include "models/cli/cli.h"
#include "models/cli/flags.h"
#include "models/registry.h"

namespace xg::mnist::cli {

Command graph_command(CLI::App& app) {
  struct State {
    std::string arch = "seed", out;
  };
  auto s = std::make_shared<State>();
  CLI::App* sub = app.add_subcommand("graph", "write the recorded graph of one training step as Graphviz DOT");
  sub->add_option("--arch", s->arch, choices(model_names()) + " (default seed)")->check(CLI::IsMember(model_names()));
  sub->add_option("--out", s->out, "the .dot file to write (render with: dot -Tsvg FILE -o graph.svg)")->required();
  return {sub, &s->out, false, [s](dist::Communicator&) {
            files::output_target(s->out, "graph --out");
            Rng rng(0);
            const std::unique_ptr<ImageClassifier<float>> model = find_model(s->arch).make({}, rng);
            for (auto& [name, p] : model->named_parameters()) p.set_name(name);
            Variable<float> images(zeros<float>({10, 1, 28, 28}));
            images.set_name("images");
            const std::string dot = to_dot(ops::cross_entropy((*model)(images), ops::Labels(10, 0)));
            files::write_atomic(s->out, dot.data(), dot.size(), "graph --out");
            fmt::print("wrote {}\n", files::escape_bytes(s->out));
            return 0;
          }};
}

}  // namespace xg::mnist::cli
