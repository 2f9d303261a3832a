#pragma once
/// \file compare.h
/// `mnist compare`: the chapter's advice as a command — train the network with several poolings and seeds, choose
/// each run's epoch by validation accuracy only, report the held-out test accuracy at that epoch, and say whether the
/// winner's lead over the runner-up is larger than the seed-to-seed noise (Welch's t-test).
///
/// Every (pooling, seed) run is a child process (the caller's command line for it, `child_command`: `mnist` itself,
/// started with an argument vector, no shell) that writes its metrics to DIR/runs/POOL-seedS.jsonl; a run counts as done once that file is complete, so an interrupted comparison
/// resumes without redoing finished runs, and every number is reproducible from the seeds. Several small runs go at
/// once (one thread each) when that is faster than one run with all threads — measured once per DIR
/// (DIR/calibration.json). Under `mpirun -np K` the runs are spread over the ranks.

#include <csignal>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dist/communicator.h"

namespace xg::mnist {

/// One run's numbers per epoch (accuracies 0–1), as read from its metrics file.
struct RunCurve {
  std::string pool;
  std::uint64_t seed = 0;
  std::vector<double> validation, test, images_per_second;
};

/// One pooling over its seeds.
struct PoolSummary {
  std::string pool;
  std::vector<std::uint64_t> seeds;
  std::vector<double> validation;   ///< per seed: the best validation accuracy
  std::vector<std::size_t> epoch;   ///< per seed: the epoch it was reached (1-based; the first on ties)
  std::vector<double> test;         ///< per seed: the test accuracy at that epoch
  std::vector<std::vector<double>> curves;  ///< per seed: validation accuracy per epoch (for the plot)
  double validation_mean = 0, validation_sd = 0, test_mean = 0, test_sd = 0, epoch_mean = 0, images_per_second = 0;
};

struct ComparisonSummary {
  std::vector<PoolSummary> pools;     ///< in the order asked for
  std::size_t winner = 0, runner_up = 0;  ///< by mean validation accuracy (runner_up == winner with one pooling)
  double p_value = 0;                 ///< Welch's two-sided t-test of their validation accuracies (NaN: < 2 seeds each)
  bool significant = false;           ///< p < 0.05
};

/// Chooses every run's epoch by validation accuracy alone and reads the test accuracy there; the test numbers never
/// influence a choice. `pools` gives the order; every run must belong to one of them (std::invalid_argument).
ComparisonSummary summarize_comparison(const std::vector<RunCurve>& runs, const std::vector<std::string>& pools);

/// The reports' number formats: `v` as a percentage with two decimals ("97.25"), and with `digits` decimals.
std::string pct(double v);
std::string num(double v, int digits);

/// The table, winner and verdict as Markdown (deterministic: the same runs give the same bytes).
std::string comparison_markdown(const ComparisonSummary& s, const std::string& settings);

/// One child run the comparison starts: `pool` with `seed` on `threads` threads for the comparison's epochs, holding
/// out its validation images and writing one metrics line per epoch to `metrics`. A calibration run instead trains
/// one short epoch (a fixed few thousand images) and writes no metrics.
struct ChildRun {
  std::string pool;
  std::uint64_t seed = 0;
  std::size_t threads = 1;
  std::string metrics;
  bool calibration = false;
};

struct CompareOptions {
  std::vector<std::string> pools;        ///< poolings by name (max, l2, avg, lpP, stochastic)
  std::size_t seeds = 5;                 ///< seeds 0 … seeds−1
  std::size_t validation = 1000;         ///< evenly spaced training images held out for choosing
  std::size_t epochs = 10;
  std::size_t jobs = 0;                  ///< runs at once (one process); 0: measured (DIR/calibration.json)
  std::string out_dir;
  /// What every run shares besides the above (the caller's training settings, as text): stored in
  /// DIR/compare-settings.json, so that a directory is resumed only with the settings it was started with.
  std::vector<std::string> settings;
  std::string command;                   ///< the command line the report shows
  /// The argument vector (argv[0] a path) of a child run; the caller's program knows how to start one.
  std::function<std::vector<std::string>(const ChildRun&)> child_command;
};

struct CompareReport {
  ComparisonSummary summary;
  std::size_t runs_total = 0, runs_reused = 0, jobs = 1, threads = 1;
  std::vector<std::string> files;        ///< what was written (rank 0)
  std::string markdown;                  ///< compare.md's text (rank 0)
  std::string note;                      ///< e.g. why compare.png was not drawn
};

/// Writes DIR/compare.md, DIR/compare.json and DIR/compare.png (a note instead when gnuplot cannot draw it) for
/// `report.summary`, with `command` as the settings line; fills report.markdown, report.files and report.note.
void write_comparison(CompareReport& report, const CompareOptions& o, const std::string& command);

/// Runs (or resumes) the comparison and writes DIR/compare.md, DIR/compare.json and DIR/compare.png (rank 0).
/// `say` receives progress lines (rank 0); a non-zero `*stop` (a signal) stops the children and throws
/// train::Interrupted, leaving finished runs in DIR. A failed run throws std::runtime_error naming it and its log
/// (JobError under MPI); settings that differ from those DIR was started with are a UsageError.
CompareReport run_compare(const CompareOptions& o, dist::Communicator& world,
                          const std::function<void(const std::string&)>& say, const volatile std::sig_atomic_t* stop);

}  // namespace xg::mnist
