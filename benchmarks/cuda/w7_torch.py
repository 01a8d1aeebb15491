#!/usr/bin/env python3
"""W7's PyTorch peers on the GPU: y = sum(a*b + sin(c)*exp(-d)) and dy/da, db, dc, dd, float32.

Eager autograd and torch.compile (forward and backward compiled through AOTAutograd), timed the
way benchmarks/cuda/w7.cu times fusegrad: the value read back to the host every step (the
`.item()` a training loop's logging does), wall time per step, median of the repetitions.

    python3 benchmarks/cuda/w7_torch.py [--sizes 1e6 1e7 1e8] [--reps 50]

Prints one line per (implementation, n): median microseconds and GB/s at 32 bytes per element.
"""
import argparse
import statistics
import time

import torch


def make(n, device):
    g = torch.Generator(device="cpu").manual_seed(0)
    xs = [(torch.rand(n, generator=g) * 2 - 1).to(device).requires_grad_() for _ in range(4)]
    return xs


def step(a, b, c, d):
    y = (a * b + torch.sin(c) * torch.exp(-d)).sum()
    ga, gb, gc, gd = torch.autograd.grad(y, (a, b, c, d))
    return y, ga, gb, gc, gd


def time_it(fn, args, reps):
    for _ in range(5):  # warm-up: allocator, cuBLAS/cuDNN handles, compilation
        fn(*args)[0].item()
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn(*args)[0].item()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="*", type=float, default=[1e6, 1e7, 1e8])
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device")
        return
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    compiled = torch.compile(step)
    for n in map(int, args.sizes):
        xs = make(n, "cuda")
        ref = step(*xs)
        got = compiled(*xs)
        for r, c in zip(ref, got):  # the compiled step must agree before it is timed
            torch.testing.assert_close(c, r, rtol=1e-4, atol=1e-4)
        for name, fn in (("torch_eager", step), ("torch_compile", compiled)):
            t = time_it(fn, xs, args.reps)
            print(f"W7 {name:14s} n={n:>11d} {t * 1e6:10.1f} us {32 * n / t / 1e9:8.1f} GB/s")
        del xs, ref, got
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
