#!/usr/bin/env python3
"""tessera and PyTorch side by side: the four workloads of bench/bench.cpp (batch 64, Adam,
random data, the same architectures), each run in its own process, tessera's and PyTorch's
interleaved, at each thread count, several rounds; then one table of steps/s (median over
processes of each process's median over its timing blocks) with the tessera/PyTorch ratio,
inference, peak RSS and minor page faults per training step.

  python3 bench/compare_torch.py --bench build/bench/tessera_bench
  python3 bench/compare_torch.py --bench build/bench/tessera_bench --best-env   # PyTorch's best setup
  python3 bench/compare_torch.py --install                # apt-get install python3-torch first

--best-env runs PyTorch with Debian's OpenMP build of OpenBLAS (libopenblas0-openmp),
glibc malloc tunables that keep freed memory, and for each workload the faster of the
contiguous and channels-last memory formats.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

WORKLOADS = ["dcgan64", "dcgan28", "vae32", "texture64"]
BATCH = 64
BEST_ENV = {
    "LD_LIBRARY_PATH": "/usr/lib/x86_64-linux-gnu/openblas-openmp",
    "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296:"
                      "glibc.malloc.top_pad=268435456",
}


# ---- the PyTorch workloads (run in a child process: --worker) ------------------------------

def torch_workload(name, channels_last):
    import torch
    from torch import nn
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def inference(module, make_input):
        """As tessera's EvalMode: eval mode, no graph, training mode back after."""
        def infer():
            module.eval()
            with torch.no_grad():
                module(make_input())
            module.train()
        return infer

    def dcgan(size, channels):
        s, ups = (7, 2) if size == 28 else (size // 8, 3)
        widths = [128, 64] if ups == 2 else [128, 128, 64]
        g = [nn.Linear(100, 128 * s * s), nn.Unflatten(1, (128, s, s)), nn.BatchNorm2d(128), nn.LeakyReLU(0.2)]
        c = 128
        for i, w in enumerate(widths[1:] + [channels]):
            g.append(nn.ConvTranspose2d(c, w, 4, 2, 1))
            if i < ups - 1:
                g += [nn.BatchNorm2d(w), nn.LeakyReLU(0.2)]
            c = w
        g.append(nn.Tanh())
        d, c = [], channels
        for i, w in enumerate([64, 128, 128][:ups]):
            d.append(nn.Conv2d(c, w, 4, 2, 1))
            if i > 0:
                d.append(nn.BatchNorm2d(w))
            d.append(nn.LeakyReLU(0.2))
            c = w
        feature = c * (size >> ups) ** 2
        d += [nn.Flatten(), nn.Dropout(0.5), nn.Linear(feature, 1)]
        G, D = nn.Sequential(*g).to(memory_format=fmt), nn.Sequential(*d).to(memory_format=fmt)
        opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
        real = (torch.rand(BATCH, channels, size, size) * 2 - 1).contiguous(memory_format=fmt)
        bce = nn.BCEWithLogitsLoss()
        ones, zeros = torch.ones(BATCH, 1), torch.zeros(BATCH, 1)
        fixed_z = torch.randn(BATCH, 100)

        def step():  # as tessera's GanTrainer: D on real and fake, then G through a frozen D
            fake = G(torch.randn(BATCH, 100))
            opt_d.zero_grad()
            (bce(D(real), ones) + bce(D(fake.detach()), zeros)).backward()
            opt_d.step()
            D.requires_grad_(False)
            opt_g.zero_grad()
            bce(D(fake), ones).backward()
            opt_g.step()
            D.requires_grad_(True)

        return step, inference(G, lambda: fixed_z)

    def vae():
        enc = nn.Sequential(nn.Conv2d(3, 64, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(64, 128, 4, 2, 1),
                            nn.BatchNorm2d(128), nn.LeakyReLU(0.2), nn.Flatten()).to(memory_format=fmt)
        mu, logvar = nn.Linear(8192, 100), nn.Linear(8192, 100)
        dec = nn.Sequential(nn.Linear(100, 2048), nn.Unflatten(1, (128, 4, 4)), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
                            nn.ConvTranspose2d(128, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
                            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
                            nn.ConvTranspose2d(64, 3, 4, 2, 1), nn.Sigmoid()).to(memory_format=fmt)
        params = [*enc.parameters(), *mu.parameters(), *logvar.parameters(), *dec.parameters()]
        opt = torch.optim.Adam(params, 1e-3)
        x = torch.rand(BATCH, 3, 32, 32).contiguous(memory_format=fmt)

        def step():
            h = enc(x)
            m, lv = mu(h), logvar(h)
            z = m + torch.exp(0.5 * lv) * torch.randn_like(m)
            recon = ((dec(z) - x) ** 2).sum(dim=(1, 2, 3)).mean()
            kl = (-0.5 * (1 + lv - m * m - lv.exp()).sum(dim=1)).mean()
            opt.zero_grad()
            (recon + kl).backward()
            opt.step()

        return step, inference(dec, lambda: torch.randn(BATCH, 100))

    def texture():
        layers, c = [], 3
        for w in (32, 64, 128):
            layers += [nn.Conv2d(c, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2)]
            c = w
        net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10)).to(memory_format=fmt)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        x = torch.rand(BATCH, 3, 64, 64).contiguous(memory_format=fmt)
        y = torch.arange(BATCH) % 10
        ce = nn.CrossEntropyLoss()

        def step():
            opt.zero_grad()
            ce(net(x), y).backward()
            opt.step()

        return step, inference(net, lambda: x)

    return {"dcgan64": lambda: dcgan(64, 3), "dcgan28": lambda: dcgan(28, 1), "vae32": vae, "texture64": texture}[name]()


def worker(args):
    """One PyTorch process: one workload at one thread count; prints bench.cpp's CSV line."""
    import torch
    torch.set_num_threads(args.threads)
    step, infer = torch_workload(args.workload, args.channels_last)
    step()
    step()  # warm-up
    rates, faults = [], 0
    for _ in range(args.blocks):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        rates.append(args.steps / (time.perf_counter() - start))
        faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    infer()
    start = time.perf_counter()
    for _ in range(5):
        infer()
    inference = 5 * BATCH / (time.perf_counter() - start)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    med = statistics.median(rates)
    print(f"torch,{args.workload},{args.threads},{med:.4f},{min(rates):.4f},{max(rates):.4f},{med * BATCH:.2f},,,"
          f"{inference:.1f},{rss_mb:.1f},{faults / (args.blocks * args.steps):.0f}", flush=True)


# ---- the side-by-side run -------------------------------------------------------------------

def run(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    rows = [line.split(",") for line in out.splitlines() if line.startswith(("tessera,", "torch,"))]
    return rows[-1]


def machine():
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return f"{model}, {os.cpu_count()} logical CPUs"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", default="build/bench/tessera_bench", help="the tessera_bench program")
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--threads", default="1,2", help="thread counts")
    p.add_argument("--rounds", type=int, default=3, help="processes per side, workload and thread count")
    p.add_argument("--blocks", type=int, default=3, help="timing blocks per process")
    p.add_argument("--steps", type=int, default=3, help="steps per timing block")
    p.add_argument("--best-env", action="store_true", help="PyTorch with OpenMP OpenBLAS, malloc tunables, best memory format")
    p.add_argument("--install", action="store_true", help="apt-get install python3-torch (and libopenblas0-openmp)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workload", help=argparse.SUPPRESS)
    p.add_argument("--channels-last", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        return worker(args)

    if args.install:
        # With its recommends, as apt installs it by default: they bring libopenblas0 (pthreads),
        # which becomes libblas.so.3; without them PyTorch's BLAS is the slow reference one.
        packages = ["python3-torch", "libopenblas0"] + (["libopenblas0-openmp"] if args.best_env else [])
        subprocess.run(["apt-get", "install", "-y", *packages], check=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if not os.access(args.bench, os.X_OK):
        sys.exit(f"compare_torch.py: no tessera_bench at {args.bench} (build it, or pass --bench)")
    threads = [int(t) for t in args.threads.split(",")]
    workloads = args.workloads.split(",")
    formats = [False, True] if args.best_env else [False]
    common = ["--blocks", str(args.blocks), "--steps", str(args.steps)]
    samples = {}  # (side, workload, threads) → [csv rows]
    for r in range(args.rounds):
        for w in workloads:
            for t in threads:
                env = dict(os.environ, OMP_NUM_THREADS=str(t))
                torch_env = dict(env, **BEST_ENV) if args.best_env else env
                jobs = [("tessera", [args.bench, "--csv", "--workload", w, "--threads", str(t), *common], env)]
                for cl in formats:
                    cmd = [sys.executable, __file__, "--worker", "--workload", w, "--threads", str(t), *common]
                    jobs.append(("torch-cl" if cl else "torch", cmd + (["--channels-last"] if cl else []), torch_env))
                if r % 2:
                    jobs.reverse()  # alternate who goes first
                for side, cmd, e in jobs:
                    samples.setdefault((side, w, t), []).append(run(cmd, e))
                    print(f"round {r + 1}/{args.rounds}: {side} {w} {t} thread(s): {samples[(side, w, t)][-1][3]} steps/s",
                          file=sys.stderr)

    def med(side, w, t, column):
        rows = samples.get((side, w, t), [])
        return statistics.median(float(row[column]) for row in rows) if rows else None

    print(f"\nmachine: {machine()}; PyTorch {'best environment' if args.best_env else 'as installed'}; "
          f"{args.rounds} processes per cell, median of their medians")
    print(f"{'workload':<10} {'threads':>7} {'tessera steps/s':>16} {'PyTorch steps/s':>16} {'ratio':>6}   "
          f"{'inference ratio':>15} {'peak RSS MB tessera/PyTorch':>28} {'page faults/step':>18}")
    for w in workloads:
        for t in threads:
            ours = med("tessera", w, t, 3)
            sides = ["torch", "torch-cl"] if args.best_env else ["torch"]
            best = max(sides, key=lambda s: med(s, w, t, 3) or 0)
            theirs = med(best, w, t, 3)
            infer = med("tessera", w, t, 9) / med(best, w, t, 9)
            note = " (channels-last)" if best == "torch-cl" else ""
            print(f"{w:<10} {t:>7} {ours:>16.3f} {theirs:>16.3f} {ours / theirs:>6.2f}x  {infer:>14.2f}x "
                  f"{med('tessera', w, t, 10):>14.0f} / {med(best, w, t, 10):<6.0f} "
                  f"{med('tessera', w, t, 11):>9.0f} / {med(best, w, t, 11):.0f}{note}")
    for w in workloads:
        if len(threads) > 1:
            print(f"tessera {w}: {threads[-1]} threads / {threads[0]}: "
                  f"{med('tessera', w, threads[-1], 3) / med('tessera', w, threads[0], 3):.2f}x")


if __name__ == "__main__":
    main()
