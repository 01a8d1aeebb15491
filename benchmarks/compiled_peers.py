"""W1 and W5 (BENCHMARKS.md; W10 when traced) through the compilers of the Python frameworks,
beside fusegrad in the same rounds: PyTorch 2.x `torch.compile` (inductor: forward and backward
as fused, vectorised C++ loops) and `jax.jit(jax.value_and_grad(f))` (XLA on the CPU), against
fusegrad's static path, its traced path (fg::function: the planned graph), its eager path and
the hand-written loop.

    python benchmarks/compiled_peers.py [--w1 build/bench/benchmarks/w1]
        [--w5 build/bench/benchmarks/w5] [--workloads W1 W5] [--w1-sizes 1000 100000 1000000]
        [--w5-sizes 10 100 1000] [--threads 1] [--rounds 5]

Needs PyPI's torch 2.x and jax (`bash cmake/fusegrad.sh compile_bench` makes the venv, builds the
C++ side and runs this). Every process of a case is pinned to its first t cores (taskset), which
is also how many threads each side is given: fusegrad's pool takes the cores of its affinity
mask, PyTorch gets torch.set_num_threads(t), XLA's CPU pool sees t cores. A step is what a user
writes: fusegrad and PyTorch clear the inputs' gradients, run the loss, call backward() and read
the value; JAX calls the jitted value_and_grad and waits for both results. Each Python process
compiles before it times; each is checked against the closed-form gradient first. Each round
runs every side once, so a machine that slows down slows all of them; the ratios are per round.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

# The peers' step, run in a fresh process: argv = framework workload n threads.
PEER_STEP = r"""
import sys, time
import numpy as np
framework, workload, n, t = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
if workload == "W5":
    xs = [rng.uniform(-3, 3, n).astype(np.float32)]
    def expected(x):
        e = np.exp(x[0].astype(np.float64))
        return [e / (1 + e)]
else:
    a, b, d = (rng.uniform(-1, 1, n).astype(np.float32) for _ in range(3))
    c = rng.uniform(-3, 3, n).astype(np.float32)
    xs = [a, b, c, d]
    def expected(x):
        a, b, c, d = (v.astype(np.float64) for v in x)
        return [b, a, np.cos(c) * np.exp(-d), -np.sin(c) * np.exp(-d)]

if framework == "torch":
    import torch
    torch.set_num_threads(t)
    leaves = [torch.from_numpy(x).requires_grad_() for x in xs]
    if workload == "W5":
        @torch.compile(fullgraph=True, dynamic=False)
        def loss(x):
            return torch.log(1 + torch.exp(x)).sum()
    else:
        @torch.compile(fullgraph=True, dynamic=False)
        def loss(a, b, c, d):
            return (a * b + torch.sin(c) * torch.exp(-d)).sum()
    def step():
        for x in leaves:
            x.grad = None
        y = loss(*leaves)
        y.backward()
        return float(y.detach())
    def grads():
        return [x.grad.numpy() for x in leaves]
else:
    import jax
    import jax.numpy as jnp
    if workload == "W5":
        def f(x):
            return jnp.sum(jnp.log(1 + jnp.exp(x)))
        argnums = 0
    else:
        def f(a, b, c, d):
            return jnp.sum(a * b + jnp.sin(c) * jnp.exp(-d))
        argnums = (0, 1, 2, 3)
    vg = jax.jit(jax.value_and_grad(f, argnums=argnums))
    args = [jnp.asarray(x) for x in xs]
    last = [None]
    def step():
        v, g = vg(*args)
        jax.block_until_ready(g)
        last[0] = g
        return float(v)
    def grads():
        g = last[0]
        return [np.asarray(v) for v in (g if isinstance(g, tuple) else (g,))]

for _ in range(20):
    step()
for got, want in zip(grads(), expected(xs)):
    assert np.allclose(got, want, rtol=1e-4, atol=1e-5), f"{framework}: wrong gradient"
# Blocks of steps, each timed as a whole (the clock's own cost stays out of small steps).
reps = 1
while True:
    s = time.perf_counter()
    for _ in range(reps):
        step()
    if time.perf_counter() - s > 0.05:
        break
    reps *= 2
blocks = []
while sum(blocks) * reps < 0.5 or len(blocks) < 5:
    s = time.perf_counter()
    for _ in range(reps):
        step()
    blocks.append((time.perf_counter() - s) / reps)
print(sorted(blocks)[len(blocks) // 2] * 1e6)
"""

FUSEGRAD = {"static": "fusegrad", "traced": "fusegrad_traced", "eager": "fusegrad_dyn",
            "hand": "handloop"}


def pinned(t):
    return ["taskset", "-c", f"0-{t - 1}"]


def peer_us(framework, workload, n, t):
    env = dict(os.environ, OMP_NUM_THREADS=str(t))
    out = subprocess.run(pinned(t) + [sys.executable, "-c", PEER_STEP, framework, workload, str(n),
                                      str(t)], check=True, capture_output=True, text=True,
                         env=env).stdout.split()
    return float(out[-1])


def fusegrad_us(bench, workload, n, t):
    sides = "|".join(FUSEGRAD.values())
    arg = f"{n}" if workload == "W5" else f"n:{n}/threads:{t}"
    filt = f"^BM_{workload}_({sides})/{arg}$"
    out = subprocess.run(pinned(t) + [bench, f"--benchmark_filter={filt}",
                                      "--benchmark_min_time=0.3", "--benchmark_format=json"],
                         check=True, capture_output=True, text=True).stdout
    per_us = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
    r = {}
    for run in json.loads(out)["benchmarks"]:
        if run.get("error_occurred"):
            sys.exit(f"{bench}: {run.get('error_message')}")
        r[run["name"].split("/")[0]] = run["real_time"] * per_us[run["time_unit"]]
    return {side: r[f"BM_{workload}_{name}"] for side, name in FUSEGRAD.items()}


def spread(values):
    return f"{statistics.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--w1", default="build/bench/benchmarks/w1")
    ap.add_argument("--w5", default="build/bench/benchmarks/w5")
    ap.add_argument("--workloads", nargs="+", default=["W1", "W5"], choices=["W1", "W5"])
    ap.add_argument("--w1-sizes", type=int, nargs="+", default=[1000, 100000, 1000000])
    ap.add_argument("--w5-sizes", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    import jax
    import torch
    print(f"torch {torch.__version__}, jax {jax.__version__}; {a.rounds} rounds; microseconds "
          "per step (median of rounds); ratios per round: median [min, max]")
    for workload in a.workloads:
        bench = a.w1 if workload == "W1" else a.w5
        for n in a.w1_sizes if workload == "W1" else a.w5_sizes:
            for t in a.threads:
                rows = []
                for _ in range(a.rounds):
                    r = fusegrad_us(bench, workload, n, t)
                    r["torch.compile"] = peer_us("torch", workload, n, t)
                    r["jax.jit"] = peer_us("jax", workload, n, t)
                    rows.append(r)
                med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
                print(f"{workload} n={n:>8} threads={t}: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in med.items())
                      + f" | traced/static {spread([r['traced'] / r['static'] for r in rows])}"
                      f", eager/traced {spread([r['eager'] / r['traced'] for r in rows])}"
                      f", torch.compile/traced "
                      f"{spread([r['torch.compile'] / r['traced'] for r in rows])}"
                      f", jax.jit/traced {spread([r['jax.jit'] / r['traced'] for r in rows])}"
                      f", static/hand {spread([r['static'] / r['hand'] for r in rows])}",
                      flush=True)


if __name__ == "__main__":
    main()
