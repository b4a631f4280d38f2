#!/usr/bin/python3
"""PyTorch ⇄ tessera state dicts through .npz, both directions.

The model in both libraries (tessera: Sequential<float> Conv2D, BatchNorm, LeakyReLU, Flatten,
Dense, the same state-dict names "0.weight", "1.running_mean", ...):
    nn.Sequential(Conv2d(3, 8, 4, 2, 1), BatchNorm2d(8), LeakyReLU(0.2), Flatten(), Linear(8*4*4, 1))
on 8x8 inputs.

    /usr/bin/python3 tests/reference/torch_interop.py fixtures
        PyTorch → tessera: writes tests/data/npy/torch_model.npz (numpy.savez of the
        state_dict, num_batches_tracked included) and torch_io.npz (an input x, the eval-mode
        output y, and the features after the first three layers). tests/test_npy.cpp loads
        them and must reproduce features and y.

    /usr/bin/python3 tests/reference/torch_interop.py check <tessera_tests> <out_dir>
        tessera → PyTorch (ctest npz_torch_roundtrip): runs `tessera_tests "[npz_export]"`,
        which saves tessera_model.npz and tessera_io.npz into out_dir, loads the model into
        PyTorch with load_state_dict(strict=False) and checks that only num_batches_tracked
        is missing and that PyTorch's output equals tessera's; the same, strictly, for a model
        with spectral normalisation (tessera_sn_model.npz, make_sn_model). Exits 77 (skipped)
        when numpy or torch is not installed.

Written against torch 1.13 and numpy 1.24 (Debian's /usr/bin/python3 here).
"""
import os
import subprocess
import sys

SKIP = 77


def make_model(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.BatchNorm2d(8), nn.LeakyReLU(0.2), nn.Flatten(),
                         nn.Linear(8 * 4 * 4, 1))


def make_sn_model(torch):
    """Spectral normalisation on a convolution, a transposed convolution (PyTorch's dim 1) and a
    linear layer: state-dict names "0.weight_orig", "0.weight_u", "0.weight_v", "0.bias", ..."""
    nn, sn = torch.nn, torch.nn.utils.spectral_norm
    return nn.Sequential(sn(nn.Conv2d(3, 8, 4, 2, 1)), nn.LeakyReLU(0.2), sn(nn.ConvTranspose2d(8, 4, 4, 2, 1)),
                         nn.Flatten(), sn(nn.Linear(4 * 8 * 8, 1)))


def write_sn_fixtures(torch, np, out_dir):
    torch.manual_seed(1)
    model = make_sn_model(torch)
    with torch.no_grad():
        model.train()
        for _ in range(5):                   # power iterations: u and v away from their start
            model(torch.randn(2, 3, 8, 8))
        state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
        x = torch.randn(2, 3, 8, 8)
        model.eval()
        y_eval = model(x)                    # the stored estimate of σ
        model.train()
        y_train = model(x)                   # one more power iteration, then σ
        u_after = model[0].weight_u.numpy().copy()
    np.savez(os.path.join(out_dir, "torch_sn_model.npz"), **state)
    np.savez(os.path.join(out_dir, "torch_sn_io.npz"), x=x.numpy(), y_eval=y_eval.numpy(), y_train=y_train.numpy(),
             u_after=u_after)
    print("spectral norm: keys", sorted(state), " y_eval:", y_eval.flatten().tolist())


def write_fixtures(torch, np):
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "npy")
    torch.manual_seed(0)
    model = make_model(torch)
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 1.5)   # non-default affine parameters
        model[1].bias.uniform_(-0.5, 0.5)
        model.train()
        for _ in range(3):                   # running statistics away from (0, 1)
            model(torch.randn(4, 3, 8, 8) * 2 + 0.5)
        model.eval()
        x = torch.randn(2, 3, 8, 8)
        features = model[:3](x)             # after Conv2d, BatchNorm2d (eval) and LeakyReLU
        y = model(x)
    np.savez(os.path.join(out_dir, "torch_model.npz"), **{k: v.numpy() for k, v in model.state_dict().items()})
    np.savez(os.path.join(out_dir, "torch_io.npz"), x=x.numpy(), features=features.numpy(), y=y.numpy())
    print("num_batches_tracked:", int(model[1].num_batches_tracked), " y:", y.flatten().tolist())
    write_sn_fixtures(torch, np, out_dir)


def check_tessera_export(torch, np, tessera_tests, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    env = dict(os.environ, TESSERA_NPY_EXPORT_DIR=out_dir)
    subprocess.run([tessera_tests, "[npz_export]"], env=env, check=True)

    with np.load(os.path.join(out_dir, "tessera_model.npz")) as z:
        state = {k: torch.from_numpy(z[k]) for k in z.files}
    model = make_model(torch)
    result = model.load_state_dict(state, strict=False)
    bad_missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if bad_missing or result.unexpected_keys:
        print("FAIL: missing", bad_missing, "unexpected", result.unexpected_keys)
        return 1
    for k, v in state.items():
        if model.state_dict()[k].shape != v.shape:
            print("FAIL: shape of", k, tuple(v.shape), "vs", tuple(model.state_dict()[k].shape))
            return 1

    with np.load(os.path.join(out_dir, "tessera_io.npz")) as z:
        x, y_tessera = torch.from_numpy(z["x"]), torch.from_numpy(z["y"])
    model.eval()
    with torch.no_grad():
        y_torch = model(x)
    error = float((y_torch - y_tessera).abs().max())
    scale = float(y_tessera.abs().max())
    print("tessera → torch: max |y_torch − y_tessera| = %.3g (|y| up to %.3g)" % (error, scale))
    if y_torch.shape != y_tessera.shape or not error <= 1e-5 * max(1.0, scale):
        print("FAIL: outputs differ")
        return 1
    return check_sn_export(torch, np, out_dir)


def check_sn_export(torch, np, out_dir):
    """tessera's spectrally normalised model, loaded strictly into PyTorch's: the same outputs."""
    with np.load(os.path.join(out_dir, "tessera_sn_model.npz")) as z:
        state = {k: torch.from_numpy(z[k]) for k in z.files}
    model = make_sn_model(torch)
    model.load_state_dict(state, strict=True)
    with np.load(os.path.join(out_dir, "tessera_sn_io.npz")) as z:
        x, y_tessera = torch.from_numpy(z["x"]), torch.from_numpy(z["y"])
    model.eval()
    with torch.no_grad():
        y_torch = model(x)
    error = float((y_torch - y_tessera).abs().max())
    print("spectral norm, tessera → torch: max |y_torch − y_tessera| = %.3g" % error)
    if y_torch.shape != y_tessera.shape or not error <= 1e-5 * max(1.0, float(y_tessera.abs().max())):
        print("FAIL: spectrally normalised outputs differ")
        return 1
    return 0


def main(argv):
    try:
        import numpy as np
        import torch
    except ImportError as e:
        print("skipped:", e)
        return SKIP
    if len(argv) == 2 and argv[1] == "fixtures":
        write_fixtures(torch, np)
        return 0
    if len(argv) == 4 and argv[1] == "check":
        return check_tessera_export(torch, np, argv[2], argv[3])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
