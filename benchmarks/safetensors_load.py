"""Loading a 1 GiB safetensors file: fusegrad against Python's safetensors.numpy.load_file, in
the same rounds, each load in a fresh process (a model is loaded once per process; a warm
allocator would flatter whoever runs second).

    python3 benchmarks/safetensors_load.py [--bench build/bench/benchmarks/safetensors_load]
                                            [--gib 1] [--rounds 5] [--file /tmp/x.safetensors]

Needs PyPI's safetensors and numpy (`bash cmake/fusegrad.sh safetensors_bench` makes a venv with
them, builds the C++ side and runs this). The file (64 float32 tensors per GiB, 16 MiB each, as
a model's weights) is written by Python's save_file and stays in the page cache, so the figures
compare the loaders, not the disk.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

PY_LOAD = """
import sys, time
from safetensors.numpy import load_file
s = time.perf_counter()
d = load_file(sys.argv[1], backend=sys.argv[2])
t = time.perf_counter() - s
total = sum(float(v.sum()) for v in d.values())
print(t, time.perf_counter() - s)
"""


def python_load(path, backend):
    out = subprocess.run([sys.executable, "-c", PY_LOAD, path, backend], check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def fusegrad_load(bench, path, case):
    env = dict(os.environ, FUSEGRAD_SAFETENSORS_FILE=path)
    out = subprocess.run([bench, f"--benchmark_filter=^BM_safetensors_{case}/",
                          "--benchmark_min_time=0.01", "--benchmark_format=json"],
                         check=True, capture_output=True, text=True, env=env).stdout
    (run,) = json.loads(out)["benchmarks"]
    if run.get("error_occurred"):
        sys.exit(f"{bench}: {run.get('error_message')}")
    # read and map_touch take one iteration (a cold load); map, far under the minimum time,
    # repeats in the process and gives the mean
    return run["real_time"] / 1e3  # ms -> s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="build/bench/benchmarks/safetensors_load")
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--file", default=os.path.join(tempfile.gettempdir(),
                                                   "fusegrad_bench.safetensors"))
    a = ap.parse_args()
    import numpy as np
    from safetensors.numpy import save_file

    n = max(1, round(64 * a.gib))
    rng = np.random.default_rng(0)
    save_file({f"layer{i}.weight": rng.standard_normal((1024, 4096), dtype=np.float32)
               for i in range(n)}, a.file)
    size = os.path.getsize(a.file)
    cases = {
        "python load_file (mmap, default)": lambda: python_load(a.file, "mmap")[0],
        "python load_file (pread)": lambda: python_load(a.file, "pread")[0],
        "python load_file + sum of every tensor": lambda: python_load(a.file, "mmap")[1],
        "fusegrad load_mode::read": lambda: fusegrad_load(a.bench, a.file, "read"),
        "fusegrad load_mode::map": lambda: fusegrad_load(a.bench, a.file, "map"),
        "fusegrad load_mode::map + sum of every tensor":
            lambda: fusegrad_load(a.bench, a.file, "map_touch"),
    }
    times = {k: [] for k in cases}
    for _ in range(a.rounds):
        for k, run in cases.items():
            times[k].append(run())
    os.remove(a.file)
    print(f"{size / 2**30:.2f} GiB, {n} tensors, {a.rounds} rounds, median of fresh processes "
          f"(this machine: {os.cpu_count()} CPUs)")
    ref = statistics.median(times["python load_file (mmap, default)"])
    for k, ts in times.items():
        m = statistics.median(ts)
        print(f"  {k:48s} {m * 1e3:9.1f} ms  {m / ref:6.3f}x python load_file  "
              f"(rounds: {', '.join(f'{t * 1e3:.0f}' for t in ts)})")


if __name__ == "__main__":
    main()
