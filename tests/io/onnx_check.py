#!/usr/bin/env python3
"""fusegrad's ONNX export checked by ONNX Runtime (tests/io/onnx_export.cpp writes the cases).

    onnx_check.py <venv dir> <fusegrad_onnx_export binary> <work dir>

Runs under the system python3 first: makes (once) a venv with PyPI's onnxruntime and onnx, then
runs itself again in it. Each case's model must pass onnx.checker (full check, shapes inferred)
and ONNX Runtime must give fusegrad's outputs: integers and bools equal, floats within 1e-5 of
the output's largest magnitude (the normwise relative error, printed per output).
"""
import os
import subprocess
import sys

PACKAGES = ["onnxruntime==1.32.0", "onnx==1.17.0", "numpy"]
RTOL = 1e-5


def ensure_venv(venv):
    python = os.path.join(venv, "bin", "python")
    probe = [python, "-c", "import onnxruntime, onnx, numpy"]
    if os.path.exists(python) and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", *PACKAGES], check=True)
    return python


def check(work):
    import numpy as np
    import onnx
    import onnxruntime as ort

    cases = sorted(f[:-5] for f in os.listdir(work) if f.endswith(".onnx"))
    if not cases:
        sys.exit("onnx_check: the exporter wrote no model")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    failures = []
    for case in cases:
        path = os.path.join(work, case + ".onnx")
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        assert model.opset_import[0].version >= 17, "opset below 17"
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        feeds = {}
        for k, inp in enumerate(session.get_inputs()):
            feeds[inp.name] = np.load(os.path.join(work, f"{case}.in{k}.npy"))
        got = session.run(None, feeds)
        for k, g in enumerate(got):
            want = np.load(os.path.join(work, f"{case}.out{k}.npy"))
            label = f"{case} output {k} {want.dtype}{list(want.shape)}"
            if g.shape != want.shape or g.dtype != want.dtype:
                failures.append(f"{label}: ONNX Runtime gave {g.dtype}{list(g.shape)}")
                continue
            if want.dtype.kind in "biu":
                ok = np.array_equal(g, want)
                print(f"{label}: {'equal' if ok else 'DIFFERENT'}")
                if not ok:
                    failures.append(f"{label}: integers differ\n{g}\n{want}")
                continue
            w, h = want.astype(np.float64), g.astype(np.float64)
            scale = max(np.max(np.abs(w)), np.finfo(want.dtype).tiny) if w.size else 1.0
            err = float(np.max(np.abs(h - w)) / scale) if w.size else 0.0
            print(f"{label}: relative error {err:.2e}")
            if not err <= RTOL:
                failures.append(f"{label}: relative error {err:.2e} > {RTOL}")
    if failures:
        sys.exit("onnx_check: FAILED\n" + "\n".join(failures))
    print(f"onnx_check: {len(cases)} models agree with ONNX Runtime {ort.__version__}")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    venv, exporter, work = sys.argv[1:]
    if os.path.realpath(sys.prefix) != os.path.realpath(venv):
        python = ensure_venv(venv)
        os.makedirs(work, exist_ok=True)
        subprocess.run([exporter, work], check=True)
        os.execv(python, [python, os.path.abspath(__file__), venv, exporter, work])
    check(work)


if __name__ == "__main__":
    main()
