// tessera/train/gan_flags.hpp — the flags dcgan and cgan share, and the recipes they name. A
// recipe is a set of GAN training choices; each flag given on the command line overrides its part.
//   --recipe dcgan  Radford et al. 2016: D with BatchNorm and Dropout(0.5), the non-saturating
//                   loss, Adam(2e-4, β1 0.5, β2 0.999) for both networks
//   --recipe sngan  Miyato et al. 2018: spectral normalisation on every D layer and no BatchNorm
//                   in D, the hinge loss, Adam(β1 0, β2 0.9) with a learning rate 4 times G's for
//                   D (1e-4 and 4e-4: TTUR, Heusel et al. 2017), samples from G's exponential
//                   moving average (decay 0.999)
#pragma once

#include <string>

#include "../core/error.hpp"
#include "../models/gan_trainer.hpp"
#include "cli.hpp"

namespace tessera::train {

/// What a recipe and the flags decide: the trainer's options and the discriminator's form.
struct GanRecipe {
  models::GanTrainerOptions trainer;
  bool batch_norm_in_d = true;
  bool spectral_norm = false;
  bool minibatch_std = false;
  double dropout = 0.5;
};

struct GanFlags {
  std::string recipe = "dcgan", loss;  // loss "": the recipe's
  double lr_d = 0, average = 0, clip_grad_norm = 0;
  bool label_smoothing = false, diff_augment = false, minibatch_std = false;

  /// Registers the flags; --lr becomes G's learning rate, 0 (set it as the default) the recipe's.
  void add_to(Cli& cli) {
    cli.describe("--lr", "the generator's learning rate (0: the recipe's: 2e-4, or 1e-4 with sngan)");
    cli.add("--recipe", recipe, "GAN training recipe: dcgan (Radford et al.) or sngan (spectral norm, hinge loss, TTUR, EMA)", "NAME");
    cli.add("--loss", loss, "non-saturating, hinge or least-squares (default: the recipe's)", "LOSS");
    cli.add("--lr-d", lr_d, "the discriminator's learning rate (0: the recipe's: --lr, or 4 × --lr with sngan)",
            Require::non_negative);
    cli.add("--label-smoothing", label_smoothing, "one-sided: the discriminator's target for real images is 0.9");
    cli.add("--clip-grad-norm", clip_grad_norm, "clip each network's gradient norm to this (0: off)", Require::non_negative);
    cli.add("--diff-augment", diff_augment, "the discriminator sees real and fake images randomly shifted and cut out");
    cli.add("--average", average, "samples come from an exponential moving average of G with this decay (0: the recipe's)",
            Require::non_negative);
    cli.add("--minibatch-std", minibatch_std, "the discriminator sees the batch's spread as one more feature map");
    cli.may_change_on_resume({"--loss", "--label-smoothing", "--lr-d", "--clip-grad-norm", "--diff-augment"});
  }

  /// The recipe with the flags given over it; an Error naming the known recipes and losses.
  GanRecipe resolve(const Options& opt) const {
    GanRecipe r;
    double lr_g = 2e-4, d_to_g = 1;
    if (recipe == "sngan") {
      r.spectral_norm = true, r.batch_norm_in_d = false, r.dropout = 0;
      r.trainer.loss = models::GanLoss::hinge;
      r.trainer.beta1 = 0, r.trainer.beta2 = 0.9;
      r.trainer.average_decay = 0.999;
      lr_g = 1e-4, d_to_g = 4;
    } else {
      TESSERA_CHECK(recipe == "dcgan", "--recipe: unknown recipe '" << recipe << "' (known: dcgan, sngan)");
    }
    if (!loss.empty()) {
      TESSERA_CHECK(loss == "non-saturating" || loss == "hinge" || loss == "least-squares",
                    "--loss: unknown loss '" << loss << "' (known: non-saturating, hinge, least-squares)");
      r.trainer.loss = loss == "hinge" ? models::GanLoss::hinge
                       : loss == "least-squares" ? models::GanLoss::least_squares
                                                  : models::GanLoss::non_saturating;
    }
    r.trainer.lr_g = opt.lr > 0 ? opt.lr : lr_g;
    r.trainer.lr_d = lr_d > 0 ? lr_d : d_to_g * r.trainer.lr_g;
    if (average > 0) r.trainer.average_decay = average;
    r.trainer.label_smoothing = label_smoothing;
    r.trainer.clip_grad_norm = clip_grad_norm;
    r.trainer.diff_augment = diff_augment;
    r.minibatch_std = minibatch_std;
    return r;
  }
};

}  // namespace tessera::train
