// tessera/train/loop.hpp — EpochLoop: the training loop every example program shares. It
// continues from --resume, draws the progress bar, stops on a non-finite loss, saves a
// checkpoint and exits 130/143 on Ctrl-C or SIGTERM, and after each epoch appends a row to
// metrics.csv, redraws the loss plots and saves the checkpoint.
//
//   io::Checkpoint<float> checkpoint;  checkpoint.add("model", model).add("optimizer", optimizer);
//   train::EpochLoop<float> loop(checkpoint, opt);              // loads --resume
//   loop.plot("loss.png", "my model", {"loss"});
//   return loop.run(loader,
//       [&](const data::Batch& batch) -> train::Values { ...one step...; return {{"loss", l}}; },
//       [&](std::size_t epoch, train::Values& row) { ...pictures; row.emplace_back("val_loss", v); });
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../data/loader.hpp"
#include "../io/checkpoint.hpp"
#include "../io/image.hpp"
#include "cli.hpp"
#include "interrupt.hpp"
#include "metrics_log.hpp"
#include "plot.hpp"
#include "progress.hpp"
#include "resume.hpp"

namespace tessera::train {

/// Named numbers in order: a step's losses, an epoch's metrics (a metrics.csv row).
using Values = MetricsLog::Values;

template <class T>
class EpochLoop {
 public:
  /// `checkpoint` must hold everything a bit-identical continuation needs; --resume is loaded
  /// into it here. metrics.csv in --out is started, or continued after --resume.
  EpochLoop(io::Checkpoint<T>& checkpoint, const Options& opt)
      : checkpoint_(checkpoint), opt_(opt), at_(resume(checkpoint, opt)),
        log_(MetricsLog::open(opt.out + "/metrics.csv", !opt.resume.empty())),
        resumed_sums_(checkpoint.state.metadata.count("epoch_sums") ? checkpoint.state.metadata.at("epoch_sums") : "") {}

  /// After every epoch, redraw `file` (in --out): these metrics.csv columns (all if empty) by epoch.
  EpochLoop& plot(std::string file, std::string title, std::vector<std::string> columns = {}) {
    plots_.push_back({std::move(file), std::move(title), std::move(columns)});
    return *this;
  }

  /// True before any training: neither resumed nor run yet.
  bool at_start() const { return at_.epoch == 0 && at_.step == 0; }
  /// The epoch being trained, from 0 (during run()).
  std::size_t epoch() const { return at_.epoch; }
  std::string checkpoint_path() const { return opt_.out + "/checkpoint.tsr"; }

  /// Trains until --epochs. `step(batch)` does one training step and returns its numbers for
  /// the progress bar; a NaN or Inf among them stops training with an Error (the checkpoint on
  /// disk stays the last good one). After each epoch, `end_of_epoch(epoch, row)` may write
  /// pictures and add held-out metrics to `row` (the epoch's mean step numbers); then the row
  /// is logged, the plots redrawn and the checkpoint saved. Returns the exit code: 0, or
  /// 130/143 after saving a mid-epoch checkpoint on SIGINT/SIGTERM.
  template <class Step, class EndOfEpoch>
  int run(data::DataLoader& loader, Step step, EndOfEpoch end_of_epoch) {
    TESSERA_CHECK(loader.batches_per_epoch() > 0, "the " << loader.size() << " images to train on make no batch of --batch "
                                                         << opt_.batch << " (the last, smaller batch is left out)");
    if (at_.epoch >= opt_.epochs) {
      if (opt_.resume.empty())
        std::cout << "nothing to train: --epochs is 0\n";
      else
        std::cout << "nothing to train: " << opt_.resume << " is at epoch " << at_.epoch << " and --epochs is " << opt_.epochs
                  << "; give a larger --epochs to continue\n";
      return 0;
    }
    StopOnSignal stop;
    for (; at_.epoch < opt_.epochs; ++at_.epoch, at_.step = 0) {
      bar_.start_epoch(at_.epoch, opt_.epochs, loader.batches_per_epoch());
      if (at_.step > 0) bar_.restore_sums(resumed_sums_);  // an epoch resumed mid-way: its means cover all of it
      for (const data::Batch& batch : loader.epoch(at_.epoch, at_.step)) {
        if (stop.requested()) {
          prepare_save(" after step " + std::to_string(at_.step));
          checkpoint_.state.metadata["epoch_sums"] = bar_.saved_sums();
          return save_and_stop(checkpoint_, checkpoint_path(), at_.epoch, at_.step, stop);
        }
        const Values values = step_at_position(step, batch);
        require_finite(values);
        bar_.update(at_.step++, batch.labels.size(), values);
        trained_ = true;
      }
      bar_.end_epoch();
      Values row = bar_.means();
      end_of_epoch(at_.epoch, row);
      log_.append(at_.epoch + 1, row);
      for (const Plot& p : plots_) write_loss_plot_png(opt_.out + "/" + p.file, p.title, log_, p.columns);
      prepare_save("");
      checkpoint_.state.metadata.erase("epoch_sums");
      checkpoint_.state.epoch = at_.epoch + 1;
      checkpoint_.state.step = 0;
      checkpoint_.save(checkpoint_path());
    }
    return 0;
  }

  /// Whether run() trained at all (not when --epochs was already reached).
  bool trained() const { return trained_; }

 private:
  struct Plot {
    std::string file, title;
    std::vector<std::string> columns;
  };

  // What a checkpoint records beside the state: the run's flags, so that --resume continues it
  // as it was made. And nothing non-finite is saved over the last good checkpoint: a
  // divergence that leaves the losses finite (Inf in an optimizer's moments) stops training too.
  void prepare_save(const std::string& when) {
    checkpoint_.state.metadata["program"] = opt_.program;
    checkpoint_.state.metadata["flags"] = flags_text(opt_.run_flags);
    const std::string bad = checkpoint_.first_non_finite();
    TESSERA_CHECK(bad.empty(), "epoch " << at_.epoch + 1 << when << ": " << bad << "; training stopped without saving ("
                                        << checkpoint_path() << " from before, if any, is intact; try a smaller --lr)");
  }

  // A step's Error (a model's own NaN check, say) is told with where training stood; nothing
  // is saved after it, so the last checkpoint stays as it was.
  template <class Step>
  Values step_at_position(Step& step, const data::Batch& batch) {
    try {
      return step(batch);
    } catch (const Error& e) {
      throw Error("epoch " + std::to_string(at_.epoch + 1) + ", step " + std::to_string(at_.step + 1) + ": " + e.what() +
                  " (" + checkpoint_path() + " from before, if any, is intact)");
    }
  }

  // Training on after a NaN would only spread it; what was saved last is still good.
  void require_finite(const Values& values) const {
    for (const auto& [name, value] : values)
      TESSERA_CHECK(std::isfinite(value), "epoch " << at_.epoch + 1 << ", step " << at_.step + 1 << ": " << name << " is "
                                                   << number_text(value) << "; training stopped without saving (" << checkpoint_path()
                                                   << " from before, if any, is intact; set_detect_anomaly(true) names the op)");
  }

  io::Checkpoint<T>& checkpoint_;
  const Options& opt_;
  Position at_;
  MetricsLog log_;
  ProgressBar bar_;
  std::vector<Plot> plots_;
  std::string resumed_sums_;  // the sums of the epoch a mid-epoch checkpoint stopped in
  bool trained_ = false;
};

/// A GAN's per-epoch picture: `images` as a grid with `columns` per row, written to
/// samples_epoch_NNN.png (epoch counted from 1) and to samples.png, the latest, in `dir`.
inline void save_epoch_samples(const Tensor<float>& images, const std::string& dir, std::size_t epoch,
                               std::size_t columns, io::ValueRange range) {
  char name[64];
  std::snprintf(name, sizeof name, "/samples_epoch_%03zu.png", epoch + 1);
  io::save_image_grid(images, dir + name, columns, range);
  io::save_image_grid(images, dir + "/samples.png", columns, range);
}

}  // namespace tessera::train
