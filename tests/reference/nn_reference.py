#!/usr/bin/python3
"""PyTorch reference numbers for tests/test_nn.cpp.

Every input below is written out literally, and the same literals appear in the C++ test,
so both sides compute on identical data in float64. The script prints C++ constants
(`const std::vector<double> kName{...};`) that are pasted into tests/test_nn.cpp; the tests
do not run Python.

Run with Debian's interpreter, which has torch (written against torch 1.13) and numpy:
    /usr/bin/python3 tests/reference/nn_reference.py
"""
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def t(values, *shape):
    return torch.tensor(values, dtype=torch.float64).reshape(shape)


def emit(name, values, per_line=4):
    values = values.detach().flatten().tolist() if torch.is_tensor(values) else list(values)
    items = ["%.17g" % v for v in values]
    if len(items) <= per_line:
        print("const std::vector<double> %s{%s};" % (name, ", ".join(items)))
        return
    print("const std::vector<double> %s{" % name)
    for i in range(0, len(items), per_line):
        last = i + per_line >= len(items)
        print("    " + ", ".join(items[i:i + per_line]) + ("};" if last else ","))


def section(title):
    print()
    print("// ---- %s" % title)


# ---- Dense: F.linear ------------------------------------------------------------------------------
section("Dense(3, 2) forward: F.linear")
dense_x = t([0.9, 0.3, -0.7, -0.4, 0.4, -0.6], 2, 3)
dense_w = t([0.25, 0.44, 0.43, -0.01, -0.16, -0.32], 2, 3)
dense_b = t([-0.35, -0.44], 2)
emit("kDenseOut", F.linear(dense_x, dense_w, dense_b))

# ---- Conv2D: F.conv2d, stride 2, padding 1 --------------------------------------------------------
section("Conv2D(2, 3, kernel 3, stride 2, padding 1) on (1, 2, 4, 5): F.conv2d")
conv_x = t([0.4, -0.6, -0.4, 0.6, 1.0, -0.7, -0.8, -0.6, -0.3, -0.7,
            0.2, 0.2, -0.8, 0.1, -1.0, -0.1, 1.0, 0.6, 0.2, -0.3,
            -0.6, -0.1, -0.4, 0.7, -0.6, -0.5, 0.6, -0.5, -0.5, -0.9,
            -0.1, -0.5, 0.8, -0.4, 0.5, 0.0, -0.1, 0.9, 0.8, -0.8], 1, 2, 4, 5)
conv_w = t([-0.25, -0.32, 0.41, 0.05, -0.13, 0.33, -0.15, 0.18, -0.27,
            -0.48, 0.2, -0.16, -0.16, -0.22, -0.25, 0.07, -0.17, -0.07,
            -0.3, 0.01, 0.09, -0.08, -0.1, 0.44, -0.45, -0.17, 0.02,
            0.1, -0.46, -0.26, -0.45, -0.49, -0.18, -0.09, 0.36, -0.49,
            0.22, -0.04, 0.09, -0.35, 0.3, -0.12, -0.09, 0.07, -0.24,
            -0.06, -0.37, 0.2, -0.4, -0.22, -0.28, -0.37, 0.05, -0.3], 3, 2, 3, 3)
conv_b = t([0.25, -0.22, 0.47], 3)
conv_y = F.conv2d(conv_x, conv_w, conv_b, stride=2, padding=1)
assert conv_y.shape == (1, 3, 2, 3)
emit("kConvOut", conv_y)

# ---- Conv2DTranspose: F.conv_transpose2d, stride 2, padding 1, output_padding 1 -------------------
section("Conv2DTranspose(2, 2, kernel 3, stride 2, padding 1, output_padding 1) on (1, 2, 2, 3)")
convt_x = t([0.1, -0.8, 0.2, -0.6, -0.2, -0.6,
             -0.4, 0.2, 0.0, -1.0, 0.8, -0.5], 1, 2, 2, 3)
convt_w = t([-0.01, -0.37, -0.12, 0.28, -0.26, 0.34, 0.11, 0.13, 0.41,
             0.01, -0.36, 0.14, 0.13, 0.3, -0.37, -0.28, 0.43, 0.06,
             -0.3, -0.08, -0.11, -0.37, 0.09, -0.45, -0.44, -0.24, -0.13,
             0.06, 0.41, -0.27, -0.35, -0.37, -0.43, -0.35, -0.28, 0.45], 2, 2, 3, 3)
convt_b = t([0.37, -0.36], 2)
convt_y = F.conv_transpose2d(convt_x, convt_w, convt_b, stride=2, padding=1, output_padding=1)
assert convt_y.shape == (1, 2, 4, 6)
emit("kConvTransposeOut", convt_y)

# ---- BatchNorm2d: running statistics after 3 training passes, then eval ---------------------------
section("BatchNorm2d(2), momentum 0.1, eps 1e-5, weight (1.5, -0.5), bias (0.1, 0.2)")
bn2 = torch.nn.BatchNorm2d(2)
with torch.no_grad():
    bn2.weight.copy_(t([1.5, -0.5], 2))
    bn2.bias.copy_(t([0.1, 0.2], 2))
bn2_batches = [
    t([1.1, -2.0, 0.7, -0.7, -0.6, -1.1, 0.2, 1.7, 1.3, 1.3, 0.0, 1.9, 1.4, 0.5, 1.6, -1.6], 2, 2, 2, 2),
    t([-1.1, 1.6, -1.3, -1.7, -0.4, 0.9, 0.4, 0.1, 1.0, 1.3, -1.9, 1.6, 0.4, 1.5, 0.0, -0.7], 2, 2, 2, 2),
    t([-1.5, 0.9, -1.5, 1.3, -1.3, -1.7, 0.7, 0.1, -1.3, -1.8, -0.9, 1.5, -0.5, 1.1, 1.9, 1.3], 2, 2, 2, 2),
]
bn2.train()
for batch in bn2_batches:
    bn2_train_out = bn2(batch)
emit("kBn2dTrainOut3", bn2_train_out)  # training-mode output of the third pass (batch statistics)
emit("kBn2dRunningMean", bn2.running_mean)
emit("kBn2dRunningVar", bn2.running_var)
bn2.eval()
emit("kBn2dEvalOut", bn2(t([1.9, -0.1, 1.8, -1.2, -1.2, 0.8, 1.9, 0.6], 1, 2, 2, 2)))

section("BatchNorm1d(3) on (4, 3): 2 training passes, then eval")
bn1 = torch.nn.BatchNorm1d(3)
bn1_batches = [
    t([0.3, 1.5, -0.9, 1.5, -1.8, -1.1, 1.2, 0.2, 1.3, -0.5, -1.9, 0.3], 4, 3),
    t([0.6, -1.5, 0.5, 1.0, 1.8, 0.7, 0.3, 0.6, -0.4, 0.2, -0.2, 0.2], 4, 3),
]
bn1.train()
for batch in bn1_batches:
    bn1(batch)
emit("kBn1dRunningMean", bn1.running_mean)
emit("kBn1dRunningVar", bn1.running_var)
bn1.eval()
emit("kBn1dEvalOut", bn1(t([0.6, 0.6, 1.4, -1.3, -1.1, -0.7], 2, 3)))

# ---- Optimizers: parameters after each of 3 steps with fixed gradients -----------------------------
opt_p0 = [0.5, -1.0, 2.0, 0.0]
opt_grads = [[0.1, -0.2, 0.3, 0.0], [-0.5, 0.4, 0.05, 1.0], [0.2, 0.2, -0.1, -2.0]]


def run_optimizer(name, make):
    p = torch.nn.Parameter(t(opt_p0, 4))
    opt = make([p])
    after = []
    for g in opt_grads:
        p.grad = t(g, 4)
        opt.step()
        after += p.detach().tolist()
    emit(name, after)  # 3 steps x 4 values, row = step


section("optimizers from p0 = (0.5, -1, 2, 0) and the gradients (0.1, -0.2, 0.3, 0), (-0.5, 0.4, 0.05, 1), "
        "(0.2, 0.2, -0.1, -2); each constant is 3 rows (one per step) of 4 values")
run_optimizer("kAdamSteps", lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.5, 0.999)))
run_optimizer("kAdamWeightDecaySteps", lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.5, 0.999), weight_decay=0.1))
run_optimizer("kAdamWSteps", lambda ps: torch.optim.AdamW(ps, lr=0.1, betas=(0.5, 0.999), weight_decay=0.1))
run_optimizer("kSgdMomentumSteps", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9))
run_optimizer("kSgdNesterovSteps", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True))
run_optimizer("kSgdDecayDampeningSteps",
              lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.1))


# ---- Losses: value and gradient with respect to the input ------------------------------------------
def loss_and_grad(name, fn, x, *rest):
    x = x.clone().requires_grad_(True)
    loss = fn(x, *rest)
    loss.backward()
    emit(name, [loss.item()])
    emit(name + "Grad", x.grad)


section("losses: value, and gradient with respect to the first argument")
bce_p = t([0.1, 0.7, 0.95, 0.3, 0.5, 0.02], 2, 3)
bce_t = t([0.0, 1.0, 1.0, 0.25, 0.5, 1.0], 2, 3)
loss_and_grad("kBce", F.binary_cross_entropy, bce_p, bce_t)
# p at 0 and 1: PyTorch clamps each log at -100 (and the gradient's denominator p(1 - p) at 1e-12),
# so the loss and its gradient stay finite
loss_and_grad("kBceSaturated", F.binary_cross_entropy, t([0.0, 1.0, 0.0, 1.0, 0.5], 5), t([1.0, 0.0, 0.0, 1.0, 0.5], 5))

logits = t([-100.0, 100.0, 0.5, -2.0, 100.0, -100.0], 2, 3)
logit_t = t([1.0, 0.0, 0.3, 0.0, 1.0, 0.0], 2, 3)
loss_and_grad("kBceWithLogits", F.binary_cross_entropy_with_logits, logits, logit_t)

mse_x = t([0.7, -0.3, -0.5, 0.8, -0.7, -0.7], 2, 3)
mse_t = t([-0.5, 0.7, -0.8, -0.6, 0.9, 0.8], 2, 3)
loss_and_grad("kMse", F.mse_loss, mse_x, mse_t)
loss_and_grad("kL1", F.l1_loss, mse_x, mse_t)

ce_logits = t([0.8, -1.4, 0.9, 2.0, 0.8, 0.2, 0.9, 1.6, -0.3, 0.8, 0.5, 0.4], 3, 4)
ce_labels = torch.tensor([2, 0, 3])
loss_and_grad("kCrossEntropy", F.cross_entropy, ce_logits, ce_labels)

mu = t([-0.1, -0.2, -1.0, 0.6, 0.0, 0.3], 2, 3)
logvar = t([-0.5, 0.1, -0.9, 0.0, 0.0, -0.4], 2, 3)


def kl_normal(m, lv):
    return -0.5 * torch.sum(1 + lv - m ** 2 - lv.exp()) / m.shape[0]


mu = mu.clone().requires_grad_(True)
logvar = logvar.clone().requires_grad_(True)
kl = kl_normal(mu, logvar)
kl.backward()
emit("kKlNormal", [kl.item()])
emit("kKlNormalGradMu", mu.grad)
emit("kKlNormalGradLogvar", logvar.grad)
