"""Reads a safetensors file written by fusegrad and writes one back, with Python's tools:
the `safetensors` package when installed, else numpy and the format's published layout.

    python3 safetensors_interop.py <written by fusegrad> <to write for fusegrad>

The first must hold "w" = arange(6).reshape(2, 3) / 4 (float32), "b" = [-1.5, 2.0] (float64),
"ids" = [7, -3] (int64), "mask" = [True, False, True] (bool) and, under a name with quotes, a
backslash, a newline and a non-ASCII letter, the scalar 5.
"""
import json
import struct
import sys

import numpy as np


def load(path):
    try:
        from safetensors.numpy import load_file
        return load_file(path)
    except ImportError:
        pass
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    kinds = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1",
             "BOOL": "?"}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype=kinds[info["dtype"]]).reshape(info["shape"])
    return out


def save(path, tensors):
    try:
        from safetensors.numpy import save_file
        return save_file(tensors, path)
    except ImportError:
        pass
    names = sorted(tensors)
    header, offset, blobs = {}, 0, []
    for name in names:
        a = np.ascontiguousarray(tensors[name])
        blob = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": {"float32": "F32", "float64": "F64", "int64": "I64",
                                  "bool": "BOOL"}[a.dtype.name],
                        "shape": list(a.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


t = load(sys.argv[1])
assert t["w"].dtype == np.float32 and t["w"].shape == (2, 3), t["w"]
assert np.array_equal(t["w"], np.arange(6, dtype=np.float32).reshape(2, 3) / 4), t["w"]
assert t["b"].dtype == np.float64 and np.array_equal(t["b"], [-1.5, 2.0]), t["b"]
assert t["ids"].dtype == np.int64 and list(t["ids"]) == [7, -3], t["ids"]
assert t["mask"].dtype == np.bool_ and list(t["mask"]) == [True, False, True], t["mask"]
odd = 'say "hi"\\ \n \u00e9'
assert t[odd] == 5, sorted(t)
save(sys.argv[2], {"w2": (t["w"] * 2).astype(np.float32), "scalar": np.array(3.25),
                   "ids2": t["ids"] * 2, "mask2": ~t["mask"], odd + " (python)": t[odd] + 1})
print("python read and wrote safetensors")
