// `mnist visualize`: an input digit, its feature maps, its pooled maps and the learned filters as PNGs.
#include <fmt/core.h>

#include "core/files.h"
#include "models/cli/cli.h"
#include "models/cli/flags.h"
#include "models/registry.h"
#include "models/visualize.h"

namespace xg::mnist::cli {

namespace {
int run_visualize(const Options& o, const std::string& out_dir, std::size_t index) {
  files::ensure_output_dir(out_dir, "visualize --out");
  const RunConfig cfg = run_config(o);
  Rng rng(0);
  const std::unique_ptr<ImageClassifier<float>> model_ptr = cfg.factory(rng);
  ImageClassifier<float>& model = *model_ptr;
  const nn::Checkpoint ck = nn::load_checkpoint(o.load);
  load_weights(model, ck, o.load, o.run.arch);
  Data data = load_data(cfg);
  if (index >= data.test.size())
    throw UsageError(fmt::format("--index {} is out of range: there are {} images in the {} (0 to {})", index,
                                 data.test.size(), data.test_name, data.test.size() - 1));
  const VisualizeOutput v = visualize(model, data.test, index, out_dir);
  fmt::print("image {} of the {} (label {}):\n", index, data.test_name, data.test.labels()[index]);
  for (const auto& f : v.files) fmt::print("  {}\n", files::escape_bytes(f));
  return 0;
}

}  // namespace

Command visualize_command(CLI::App& app) {
  struct State {
    Options o;
    std::string out;
    std::size_t index = 0;
  };
  auto s = std::make_shared<State>();
  CLI::App* sub = app.add_subcommand("visualize", "draw an input digit, its feature maps, its pooled maps and the learned filters as PNGs");
  sub->add_option("--load", s->o.load, "a checkpoint of the network to draw")->required();
  sub->add_option("--out", s->out, "output directory for the PNG files")->required();
  sub->add_option("--arch", s->o.run.arch, "the checkpoint's architecture: " + choices(model_names()) + " (default seed)")
      ->check(CLI::IsMember(model_names()));
  sub->add_option("--pool", s->o.pool, "the --pool the checkpoint was trained with")->check(pool_choice());
  sub->add_option("--activation", s->o.activation, "the --activation it was trained with")->check(CLI::IsMember(kActivationNames));
  sub->add_option("--dropout", s->o.dropout, "the --dropout it was trained with")->check(finite_range(0.0, 0.99));
  sub->add_option("--dataset", s->o.run.dataset, "mnist (default) or fashion")->check(CLI::IsMember({"mnist", "fashion"}));
  sub->add_option("--data-dir", s->o.run.data_dir, "directory with the four IDX files");
  sub->add_option("--index", s->index, "which test image to draw (default 0)")->transform(decimal(0, 100000000));
  return {sub, &s->out, false, [s, sub](dist::Communicator&) {
            for (const CLI::Option* opt : sub->get_options())  // the flags given, for messages that name them
              if (opt->count() > 0) s->o.given.insert(opt->get_name());
            return run_visualize(s->o, s->out, s->index);
          }};
}

}  // namespace xg::mnist::cli
