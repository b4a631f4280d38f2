// tessera/tessera.hpp — the umbrella header: everything, nothing else.
// Layers of the library, each depending only on those above it:
//   core (tensor, shape, rng, allocator, parallel) → autograd (Var) → ops (the differentiable
//   ops) → kernels (their raw numerics, called by ops; arch/ holds every intrinsic) → nn
//   (modules, the fusion pass) → optim
// Beside nn: io (images, npy/npz, checkpoints) and data (datasets, transforms, loader),
// which use core, and nn/optim only through their public parameter walks.
// metrics (accuracy, ROC AUC, Fréchet distance) and train (command line, progress, metrics
// log, loss plots: what the example programs share) use core and io.
// models (GANs, VAE, texture classifier and autoencoder) are built from all of the above.
#pragma once

#include "core/allocator.hpp"
#include "core/error.hpp"
#include "core/flops.hpp"
#include "core/memory_budget.hpp"
#include "core/parallel.hpp"
#include "core/rng.hpp"
#include "core/shape.hpp"
#include "core/tensor.hpp"

#include "autograd/profile.hpp"
#include "autograd/var.hpp"

#include "ops/batchnorm.hpp"
#include "ops/broadcast.hpp"
#include "ops/conv.hpp"
#include "ops/elementwise.hpp"
#include "ops/matmul.hpp"
#include "ops/pool.hpp"
#include "ops/reduce.hpp"
#include "ops/shape.hpp"

#include "nn/activations.hpp"
#include "nn/batchnorm.hpp"
#include "nn/conditional_batchnorm.hpp"
#include "nn/conv2d.hpp"
#include "nn/conv2d_transpose.hpp"
#include "nn/dense.hpp"
#include "nn/dropout.hpp"
#include "nn/embedding.hpp"
#include "nn/freeze.hpp"
#include "nn/fuse.hpp"
#include "nn/init.hpp"
#include "nn/losses.hpp"
#include "nn/minibatch_std.hpp"
#include "nn/module.hpp"
#include "nn/padding.hpp"
#include "nn/pooling.hpp"
#include "nn/reshape.hpp"
#include "nn/sequential.hpp"
#include "nn/spectral_norm.hpp"

#include "optim/adam.hpp"
#include "optim/clip.hpp"
#include "optim/schedule.hpp"
#include "optim/optimizer.hpp"
#include "optim/sgd.hpp"
#include "optim/weight_average.hpp"

// data
#include "data/augment.hpp"
#include "data/cifar.hpp"
#include "data/dataset.hpp"
#include "data/defects.hpp"
#include "data/idx.hpp"
#include "data/image_folder.hpp"
#include "data/loader.hpp"
#include "data/procedural.hpp"
#include "data/transforms.hpp"

// io
#include "io/checkpoint.hpp"
#include "io/compress.hpp"
#include "io/file.hpp"
#include "io/image.hpp"
#include "io/npy.hpp"
#include "io/state_mismatch.hpp"
#include "io/zip.hpp"

// metrics
#include "metrics/classification.hpp"
#include "metrics/diversity.hpp"
#include "metrics/frechet.hpp"
#include "metrics/precision_recall.hpp"

// train
#include "train/canvas.hpp"
#include "train/cli.hpp"
#include "train/data.hpp"
#include "train/gan_flags.hpp"
#include "train/gan_judge.hpp"
#include "train/metrics_log.hpp"
#include "train/output_folder.hpp"
#include "train/plot.hpp"
#include "train/progress.hpp"
#include "train/interrupt.hpp"
#include "train/resume.hpp"
#include "train/loop.hpp"

// models
#include "models/cgan.hpp"
#include "models/dcgan.hpp"
#include "models/diff_augment.hpp"
#include "models/eval_mode.hpp"
#include "models/gan.hpp"
#include "models/gan_trainer.hpp"
#include "models/texture_autoencoder.hpp"
#include "models/texture_classifier.hpp"
#include "models/vae.hpp"
