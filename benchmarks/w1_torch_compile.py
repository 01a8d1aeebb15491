"""W1 (y = sum(a*b + sin(c)*exp(-d)), value and the 4 gradients) against PyTorch 2.x
`torch.compile`, in the same rounds: per round and per (n, threads), one process runs the
compiled PyTorch step and one runs fusegrad's benchmark binary (the static path and the
hand-written loop on the same threads), so a machine that slows down slows both.

    python benchmarks/w1_torch_compile.py [--bench build/bench/benchmarks/w1]
                                          [--sizes 1000000 10000000] [--threads 1 2] [--rounds 5]

Needs PyPI's torch 2.x (`bash cmake/fusegrad.sh compile_bench` makes a venv with it, builds the
C++ side and runs this). The PyTorch step is what a user writes: leaves with requires_grad, the
loss through the compiled function, backward(), gradients reset to None each step; inductor
compiles forward and backward into fused C++ loops (OpenMP, vectorised). Each process compiles
before it times (the compile cache under /tmp makes that quick after the first round).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

TORCH_STEP = """
import sys, time, torch
n, t = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(t)
g = torch.Generator().manual_seed(0)
a, b, d = [(torch.rand(n, generator=g) * 2 - 1).requires_grad_() for _ in range(3)]
c = (torch.rand(n, generator=g) * 6 - 3).requires_grad_()
xs = (a, b, c, d)

@torch.compile(fullgraph=True, dynamic=False)
def loss(a, b, c, d):
    return (a * b + torch.sin(c) * torch.exp(-d)).sum()

def step():
    for x in xs:
        x.grad = None
    y = loss(*xs)
    y.backward()
    return y

for _ in range(3):
    step()
ref = torch.cos(c.detach()) * torch.exp(-d.detach())
assert torch.allclose(c.grad, ref, rtol=1e-5, atol=1e-6), "torch.compile: wrong gradient"
reps, total = 0, 0.0
while total < 0.5 or reps < 5:
    s = time.perf_counter()
    step()
    total += time.perf_counter() - s
    reps += 1
print(total / reps * 1e6)
"""


def torch_us(n, t):
    env = dict(os.environ, OMP_NUM_THREADS=str(t))
    out = subprocess.run([sys.executable, "-c", TORCH_STEP, str(n), str(t)], check=True,
                         capture_output=True, text=True, env=env).stdout.split()
    return float(out[-1])


def fusegrad_us(bench, n, t):
    filt = f"^BM_W1_(fusegrad|handloop)/n:{n}/threads:{t}$"
    out = subprocess.run([bench, f"--benchmark_filter={filt}", "--benchmark_min_time=0.5",
                          "--benchmark_format=json"], check=True, capture_output=True,
                         text=True).stdout
    r = {}
    for run in json.loads(out)["benchmarks"]:
        if run.get("error_occurred"):
            sys.exit(f"{bench}: {run.get('error_message')}")
        r[run["name"].split("/")[0]] = run["real_time"]  # microseconds (the benchmark's unit)
    return r["BM_W1_fusegrad"], r["BM_W1_handloop"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="build/bench/benchmarks/w1")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000000, 10000000])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    import torch
    print(f"torch {torch.__version__}; {a.rounds} rounds; per-round ratios, median [min, max]")
    for n in a.sizes:
        for t in a.threads:
            rows = []
            for _ in range(a.rounds):
                fg, hand = fusegrad_us(a.bench, n, t)
                tc = torch_us(n, t)
                rows.append((fg, hand, tc))
            fg = statistics.median(r[0] for r in rows)
            tc = statistics.median(r[2] for r in rows)
            hand = statistics.median(r[1] for r in rows)
            vs_tc = [r[0] / r[2] for r in rows]
            vs_hand = [r[0] / r[1] for r in rows]
            print(f"n={n:>9} threads={t}: fusegrad {fg:9.1f} us, hand loop {hand:9.1f} us, "
                  f"torch.compile {tc:9.1f} us | fusegrad/torch.compile "
                  f"{statistics.median(vs_tc):.2f} [{min(vs_tc):.2f}, {max(vs_tc):.2f}], "
                  f"fusegrad/hand {statistics.median(vs_hand):.2f} "
                  f"[{min(vs_hand):.2f}, {max(vs_hand):.2f}]", flush=True)


if __name__ == "__main__":
    main()
