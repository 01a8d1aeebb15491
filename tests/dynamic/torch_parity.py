#!/usr/bin/env python3
"""PyTorch parity of fg::var: dtypes, conversion, creation, integer ops, selection, sorting,
indexing and printing.

Runs the fusegrad side (tests/dynamic/torch_parity.cpp, path in argv[1]), computes every case it
printed in PyTorch, and compares dtype, shape and values (float32 and the half types to 1e-6
relative, float64 to 1e-12 as sums may run in another order, integers and bools exactly),
gradients, errors (both must refuse) and printed text. Exits non-zero listing every case that
differs, or one that either side lacks.
"""
import json
import math
import re
import subprocess
import sys

import torch

DTYPES = {
    "float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
    "bfloat16": torch.bfloat16, "int64": torch.int64, "int32": torch.int32,
    "uint8": torch.uint8, "bool": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}


def of(values, dtype):
    return torch.tensor(values, dtype=torch.float64).to(dtype)


def grad_case(f):
    """f() returns (y, leaf): y.backward() and return both."""
    y, leaf = f()
    y.backward()
    return y, leaf.grad


def cases():
    """name -> a function giving a tensor, (tensor, grad), or raising."""
    c = {}
    for a, ta in DTYPES.items():
        for b, tb in DTYPES.items():
            pair = f"{a},{b}"
            x = lambda ta=ta: of([1, 0, 3], ta)
            y = lambda tb=tb: of([2, 1, 1], tb)
            c["add:" + pair] = lambda x=x, y=y: x() + y()
            c["mul:" + pair] = lambda x=x, y=y: x() * y()
            c["div:" + pair] = lambda x=x, y=y: x() / y()
            c["lt:" + pair] = lambda x=x, y=y: x() < y()
            c["add0d:" + pair] = lambda x=x, tb=tb: x() + torch.tensor(2, dtype=tb)
    for a, ta in DTYPES.items():
        c["plus_int:" + a] = lambda ta=ta: of([1, 0, 3], ta) + 2
        c["times_float:" + a] = lambda ta=ta: of([1, 0, 3], ta) * 2.5

    floats = [-2.7, -0.5, 0, 0.5, 2.7, 100.2, 65519, 1e-8, 0.1, 3e38]
    for t in ["float32", "float16", "bfloat16", "bool"]:
        c["to:float64," + t] = lambda t=t: of(floats, torch.float64).to(DTYPES[t])
    in_range = [-2.7, -0.5, 0, 0.5, 2.7, 100.2, 65519]
    c["to:float64,int64"] = lambda: of(in_range, torch.float64).to(torch.int64)
    c["to:float64,int32"] = lambda: of(in_range, torch.float64).to(torch.int32)
    c["to:float64,uint8"] = lambda: of([0, 0.5, 2.7, 100.2, 255.9], torch.float64).to(torch.uint8)
    big = [300, -1, 255, 2147483648, -2147483649, 65519, 70000]
    for t in ["uint8", "int32", "bool", "float16", "float32"]:
        c["to:int64," + t] = lambda t=t: torch.tensor(big, dtype=torch.int64).to(DTYPES[t])
    c["to:bool,float32"] = lambda: of([1, 0], torch.bool).to(torch.float32)

    top = 2**63 - 1
    c["int:overflow"] = lambda: torch.tensor([top, -top - 1], dtype=torch.int64) + 1
    c["int:uint8_wrap"] = lambda: of([250, 5], torch.uint8) + 10
    c["int:int32_wrap"] = lambda: of([2147483647], torch.int32) * 2
    c["int:true_div"] = lambda: of([7, -7, 3], torch.int64) / of([2, 2, -4], torch.int64)
    c["int:exp"] = lambda: torch.exp(of([0, 1, 2], torch.int64))
    c["int:sqrt_uint8"] = lambda: torch.sqrt(of([9, 2], torch.uint8))
    c["int:neg_abs"] = lambda: torch.abs(-of([-3, 4], torch.int32))
    c["int:max"] = lambda: torch.maximum(of([1, 5], torch.int32), of([3, 2], torch.int64))
    c["int:relu"] = lambda: torch.relu(of([-3, 4], torch.int64))
    c["int:cmp_float"] = lambda: of([1, 2, 3], torch.int64) >= 2.5
    c["half:cmp"] = lambda: of([0.1, 0.2], torch.float16) == of([0.1, 0.3], torch.float16)
    c["half:mul"] = lambda: of([0.1, 1000], torch.float16) * of([3, 70], torch.float16)
    c["bf16:add"] = lambda: of([0.1, 1000], torch.bfloat16) + of([3, 0.5], torch.bfloat16)
    c["bool:sub"] = lambda: of([1, 0], torch.bool) - of([1, 1], torch.bool)
    c["int:requires_grad"] = lambda: of([1, 0], torch.int64).requires_grad_(True)
    c["int:mean"] = lambda: torch.mean(of([1, 0], torch.int64))

    cond = lambda: of([1, 0, 1], torch.bool)
    c["where:int"] = lambda: torch.where(cond(), of([10, 20, 30], torch.int64),
                                         of([-1, -2, -3], torch.int32))
    c["where:mixed"] = lambda: torch.where(cond(), of([0.5, 1.5, 2.5], torch.float32),
                                           of([-1, -2, -3], torch.int64))

    def where_grad():
        a = of([1, 2, 3], torch.float64).requires_grad_(True)
        return torch.where(cond(), a * a, of([0, 0, 0], torch.int64)).sum(), a
    c["where:grad"] = lambda: grad_case(where_grad)
    c["where:number"] = lambda: torch.where(cond(), of([1.5, 2.5, 3.5], torch.float32), 0.0)
    c["where:int_number"] = lambda: torch.where(cond(), of([10, 20, 30], torch.int64), -1)

    def max_pool_nan():
        nan = float("nan")
        x = of([1, nan, 3, 4, 5, 6, nan, 8, 9, 10, nan, 12, 13, 14, 15, 16], torch.float64)
        x = x.reshape(1, 1, 4, 4).requires_grad_(True)
        y = torch.nn.functional.max_pool2d(x, 2)
        (y * of([1, 2, 3, 4], torch.float64).reshape(1, 1, 2, 2)).sum().backward()
        return y, x.grad
    c["max_pool2d:nan"] = max_pool_nan

    m = lambda: of([1, 2, 3, 4, 5, 6], torch.int32).reshape(2, 3)
    c["red:sum"] = lambda: m().sum()
    c["red:sum_axis"] = lambda: m().sum(1)
    c["red:prod"] = lambda: m().prod()
    c["red:max_axis"] = lambda: m().amax(0)
    c["red:min_keepdim"] = lambda: m().amin(1, keepdim=True)
    c["red:sum_bool"] = lambda: of([1, 1, 0], torch.bool).sum()
    c["red:sum_half"] = lambda: of([0.5, 0.25, 1000], torch.float16).sum()

    c["arange:n"] = lambda: torch.arange(5)
    c["arange:down"] = lambda: torch.arange(10, 0, -3)
    c["arange:float"] = lambda: torch.arange(0.0, 1.0, 0.1)
    c["arange:half_step"] = lambda: torch.arange(1.0, 2.5, 0.5)
    c["linspace:5"] = lambda: torch.linspace(-1, 1, 5)
    c["linspace:7"] = lambda: torch.linspace(0, 1, 7)
    c["linspace:1"] = lambda: torch.linspace(2, 3, 1)
    c["eye:2x3"] = lambda: torch.eye(2, 3)
    c["eye:int"] = lambda: torch.eye(3, dtype=torch.int64)

    s = lambda: of([2, 1, 2, math.nan, 1, 0, 5, 5, -3, 4, 4, 0], torch.float32).reshape(2, 6)
    c["argmax:flat"] = lambda: torch.argmax(s())
    c["argmax:dim1"] = lambda: torch.argmax(s(), 1)
    c["argmin:dim0_keep"] = lambda: torch.argmin(s(), 0, keepdim=True)
    c["argmax:int"] = lambda: torch.argmax(of([3, 9, 9, 1], torch.int64))
    c["sort:values"] = lambda: torch.sort(s(), dim=1, stable=True).values
    c["sort:indices"] = lambda: torch.sort(s(), dim=1, stable=True).indices
    c["sort:desc_indices"] = lambda: torch.sort(s(), dim=1, descending=True, stable=True).indices
    c["argsort:dim0"] = lambda: torch.sort(s(), dim=0, stable=True).indices
    # topk's ties are the stable sort's (torch.topk leaves their order unspecified)
    c["topk:values"] = lambda: torch.topk(s(), 3).values
    c["topk:indices"] = lambda: torch.sort(s(), dim=1, descending=True, stable=True).indices[:, :3]
    c["topk:smallest"] = lambda: torch.sort(s(), dim=1, stable=True).indices[:, :2]

    c["cumsum:dim1"] = lambda: torch.cumsum(s(), 1)
    c["cumsum:int"] = lambda: torch.cumsum(of([1, 2, 3], torch.int32), 0)
    c["cumprod:dim0"] = lambda: torch.cumprod(of([1, 2, 0, 4, 5, 6], torch.float64).reshape(3, 2), 0)

    def cumprod_grad():
        z = of([2, 0, 3, 4], torch.float64).requires_grad_(True)
        return torch.cumprod(z, 0).sum(), z
    c["cumprod:grad_zero"] = lambda: grad_case(cumprod_grad)
    c["clamp:float"] = lambda: torch.clamp(s(), -1, 2.5)
    c["clamp:int"] = lambda: torch.clamp(of([-5, 3, 9], torch.int64), 0, 4)
    c["clamp:empty_range"] = lambda: torch.clamp(of([0, 5], torch.float32), 3, 1)

    def clamp_grad():
        x = of([-2, -1, 0, 1, 2], torch.float64).requires_grad_(True)
        return (torch.clamp(x, -1, 1) * of([1, 2, 3, 4, 5], torch.float64)).sum(), x
    c["clamp:grad"] = lambda: grad_case(clamp_grad)

    # Numerical conventions: special values and gradients where an op has no derivative.
    inf, nan = math.inf, math.nan
    bases = [0, -0.0, 1, -1, 2, -2, 0.5, inf, -inf, nan]
    exponents = [0, -0.0, 1, -1, 2, 3, 0.5, -0.5, inf, -inf, nan]
    pa = [x for x in bases for _ in exponents]
    pb = [y for _ in bases for y in exponents]
    kinks = [0, -0.0, nan, 1, -1, 2.5, -2.5, inf, -inf] * 2 + [0]
    ta, tb = [1, 2, 1, nan, 1] * 4, [1, 1, 2, 1, nan] * 4

    def sum_grad(f, args, k, t):
        xs = [torch.tensor(a, dtype=t).requires_grad_(True) for a in args]
        y = f(*xs)
        y.sum().backward()
        return y, xs[k].grad
    for name, t in [("float32", torch.float32), ("float64", torch.float64)]:
        for k in range(2):
            c[f"conv:pow_grad{k}:{name}"] = lambda t=t, k=k: sum_grad(torch.pow, [pa, pb], k, t)
            c[f"conv:maximum_grad{k}:{name}"] = \
                lambda t=t, k=k: sum_grad(torch.maximum, [ta, tb], k, t)
            c[f"conv:minimum_grad{k}:{name}"] = \
                lambda t=t, k=k: sum_grad(torch.minimum, [ta, tb], k, t)
        for op in ["abs", "relu", "sqrt"]:
            c[f"conv:{op}_grad:{name}"] = \
                lambda t=t, op=op: sum_grad(getattr(torch, op), [kinks], 0, t)
    c["count_nonzero:all"] = lambda: torch.count_nonzero(s())
    c["count_nonzero:dim0"] = lambda: torch.count_nonzero(s(), 0)
    c["any:dim1"] = lambda: torch.any(of([0, 0, 1, 0], torch.int64).reshape(2, 2), 1)
    c["all:all"] = lambda: torch.all(of([1, 2, 0], torch.float32))
    c["nonzero"] = lambda: torch.nonzero(of([0, 3, 0, 0, -1, 2], torch.float32).reshape(2, 3))
    c["multinomial:negative"] = lambda: torch.multinomial(of([1, -1], torch.float32), 1, True)

    import torch.nn.functional as F
    g = lambda: torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    c["slice:step"] = lambda: g()[:, :, 1:4:2]
    c["slice:negative"] = lambda: g()[:, -2:100]
    c["narrow"] = lambda: torch.narrow(g(), 2, -3, 2)
    c["index_select"] = lambda: torch.index_select(g(), 1, torch.tensor([2, 0, 2]))
    c["flip"] = lambda: torch.flip(g(), [0, 2])
    c["permute"] = lambda: g().permute(2, 0, 1)
    c["squeeze"] = lambda: g().reshape(1, 24, 1).squeeze()
    c["unsqueeze"] = lambda: g().unsqueeze(-2)
    c["repeat"] = lambda: torch.tensor([1, 2]).repeat(2, 2, 3)
    c["expand"] = lambda: torch.tensor([1.0, 2, 3]).reshape(3, 1).expand(2, -1, 4).contiguous()
    c["pad:constant"] = lambda: F.pad(g(), (1, 2, 0, 1), "constant", -1)
    c["pad:reflect"] = lambda: F.pad(g(), (3, 2), "reflect")
    c["pad:replicate"] = lambda: F.pad(g(), (2, 0, 1, 1), "replicate")
    c["masked_fill"] = lambda: g().masked_fill(torch.tensor([True, False, False, True]), 9.5)
    c["masked_select"] = lambda: torch.masked_select(g(), g() > 17)
    c["chunk:last"] = lambda: torch.chunk(torch.arange(7), 3)[2]
    c["split:int"] = lambda: torch.split(g(), 3, 2)[1]
    c["split:sizes"] = lambda: torch.split(g(), [1, 2], 1)[1]
    c["cat"] = lambda: torch.cat([g(), g()], 1)
    si = lambda: torch.tensor([[2, 0, 1], [1, 1, 0]])  # [2, 3]; row 1 names place 1 twice
    src = lambda: torch.arange(10, 18, dtype=torch.float32).reshape(2, 4)
    c["scatter:src"] = lambda: g()[0].scatter(1, si()[:, :2], src())
    c["scatter:value"] = lambda: g()[0].scatter(1, si(), -1.5)
    c["scatter_add"] = lambda: g()[0].scatter_add(1, si(), src())
    c["scatter_add:dim0"] = lambda: torch.zeros(3, 4, dtype=torch.int64).scatter_add(
        0, torch.tensor([[2, 0, 2, 1]]), torch.tensor([[5, 6, 7, 8]]))
    c["scatter:dtype"] = lambda: g()[0].scatter(1, si(), src().double())

    def scatter_grad(k, add):
        x = of([[0.5, -1, 2, 3], [-0.25, 4, 1, 2]], torch.float64).requires_grad_(True)
        s = of([[1, 2, 3], [4, 5, 6]], torch.float64).requires_grad_(True)
        i = torch.tensor([[3, 0, 1], [2, 2, 0]]) if add else torch.tensor([[3, 0, 1], [2, 1, 0]])
        y = (x.scatter_add(1, i, s) if add else x.scatter(1, i, s))
        (torch.sin(y) * torch.arange(8, dtype=torch.float64).reshape(2, 4)).sum().backward()
        return y, [x, s][k].grad
    for k in range(2):
        c[f"scatter:grad{k}"] = lambda k=k: scatter_grad(k, False)
        c[f"scatter_add:grad{k}"] = lambda k=k: scatter_grad(k, True)

    def pad_grad():
        x = torch.tensor([[[[0.5, -1, 2], [3, -0.25, 4]]]], dtype=torch.float64, requires_grad=True)
        w = torch.arange(21, dtype=torch.float64).reshape(1, 1, 3, 7)
        return (torch.sin(F.pad(x, (2, 2, 1, 0), "reflect")) * w).sum(), x
    c["pad:reflect_grad"] = lambda: grad_case(pad_grad)

    def to_grad():
        w = of([1.5, -2, 3], torch.float32).requires_grad_(True)
        return (w.to(torch.float64) * w.to(torch.float64)).sum(), w
    c["to:grad"] = lambda: grad_case(to_grad)

    def to_grad_half():
        h = of([0.5, 4], torch.float16).requires_grad_(True)
        return (h * h * 3.0).sum(), h
    c["to:grad_half"] = lambda: grad_case(to_grad_half)

    # Normalisation layers (RMSNorm is torch.nn's from 2.4 on: its formula here).
    def pattern(shape, a, b, s):
        n = math.prod(shape)
        return torch.tensor([((i * a) % b - b // 2) * s for i in range(n)],
                            dtype=torch.float64).reshape(shape)

    def ramp(p, step, base):
        with torch.no_grad():
            p.copy_(base + step * torch.arange(p.numel(), dtype=torch.float64).reshape(p.shape))

    def layer_case(layer, x):
        x = x.clone().requires_grad_(True)
        y = layer(x)
        (y * pattern(y.shape, 5, 7, 0.25)).sum().backward()
        return y, x.grad

    gn = torch.nn.GroupNorm(2, 4, eps=1e-5).double()
    ramp(gn.weight, 0.1, 1)
    ramp(gn.bias, 0.05, -0.1)
    gn_case = layer_case(gn, pattern((3, 4, 2, 3), 7, 11, 0.37))
    c["group_norm"] = lambda: gn_case
    c["group_norm:weight_grad"] = lambda: gn.weight.grad
    inorm = torch.nn.InstanceNorm2d(3, eps=1e-5, momentum=0.1, affine=True,
                                    track_running_stats=True).double()
    ramp(inorm.weight, 0.1, 1)
    ramp(inorm.bias, 0.05, -0.1)
    x_in = pattern((2, 3, 2, 2), 7, 11, 0.37)
    in_case = layer_case(inorm, x_in)
    c["instance_norm"] = lambda: in_case
    c["instance_norm:running_mean"] = lambda: inorm.running_mean
    c["instance_norm:running_var"] = lambda: inorm.running_var
    inorm.eval()
    c["instance_norm:eval"] = lambda: inorm(x_in).detach()
    rms_w = torch.ones(3, 4, dtype=torch.float64)
    ramp(rms_w, 0.05, 1)
    rms = lambda x: x * torch.rsqrt(x.pow(2).mean((-2, -1), keepdim=True) + 1e-6) * rms_w
    rms_case = layer_case(rms, pattern((2, 3, 4), 7, 11, 0.37))
    c["rms_norm"] = lambda: rms_case

    c["print:floats"] = lambda: of([0, 0.25, -1.5], torch.float32)
    c["print:integral"] = lambda: of([1, 2, -30], torch.float64)
    c["print:sci"] = lambda: of([1e-5, 1], torch.float32)
    c["print:nan"] = lambda: of([math.nan, 1.5, -math.inf], torch.float32)
    c["print:bool"] = lambda: of([1, 0], torch.bool)
    c["print:2d"] = lambda: torch.arange(1600).reshape(40, 40)
    c["print:3d"] = lambda: torch.arange(3000).reshape(10, 10, 30)
    c["print:long"] = lambda: torch.arange(2000)
    c["print:wrap"] = lambda: torch.arange(0.0, 30.0, 1.25)
    c["print:scalar"] = lambda: torch.tensor(2.5)
    return c


def body_of_torch(text):
    """The bracketed part of torch's repr, indented as under 'var(' (3 columns less)."""
    text = re.sub(r"(, dtype=torch\.\w+)?\)$", "", text[len("tensor("):])
    lines = text.split("\n")
    return "\n".join([lines[0]] + [l[3:] if l.strip() else l for l in lines[1:]])


def body_of_ours(text):
    return re.sub(r", shape=\[[^\]]*\], \w+(, op=\w+|, requires_grad)?\)$", "", text[len("var("):])


def close(ours, theirs, dtype):
    if len(ours) != len(theirs):
        return False
    tol = {"float32": 1e-6, "float16": 1e-6, "bfloat16": 1e-6, "float64": 1e-12}.get(dtype, 0.0)
    for a, b in zip(ours, theirs):
        if isinstance(a, float) and math.isnan(a) or isinstance(b, float) and math.isnan(b):
            if not (isinstance(a, float) and math.isnan(a) and isinstance(b, float)
                    and math.isnan(b)):
                return False
        elif a != b and (math.isinf(a) or math.isinf(b) or abs(a - b) > tol * max(abs(a), abs(b))):
            return False
    return True


def flat(t):
    return [v if not isinstance(v, bool) else int(v) for v in t.detach().reshape(-1).double().tolist()] \
        if t.dtype != torch.int64 else t.reshape(-1).tolist()


def main():
    out = subprocess.run([sys.argv[1]], check=True, capture_output=True, text=True).stdout
    ours = {}
    for line in out.splitlines():
        r = json.loads(line)
        ours[r["case"]] = r
    theirs = cases()
    bad = []
    for name in sorted(set(ours) | set(theirs)):
        if name not in ours or name not in theirs:
            bad.append(f"{name}: only on the {'fusegrad' if name in ours else 'PyTorch'} side")
            continue
        r = ours[name]
        try:
            t = theirs[name]()
            error = None
        except Exception as e:  # PyTorch refuses: so must we
            error = str(e).split("\n")[0]
        if "error" in r or error is not None:
            if r.get("error") is None or error is None:
                bad.append(f"{name}: fusegrad error {r.get('error')!r}, PyTorch error {error!r}")
            continue
        grad = None
        if isinstance(t, tuple):
            t, grad = t
        if r["dtype"] != NAMES[t.dtype] or r["shape"] != list(t.shape):
            bad.append(f"{name}: fusegrad {r['dtype']} {r['shape']}, "
                       f"PyTorch {NAMES[t.dtype]} {list(t.shape)}")
        elif not close(r["values"], flat(t), r["dtype"]):
            bad.append(f"{name}: fusegrad {r['values']}, PyTorch {flat(t)}")
        if grad is not None and (r["grad"]["dtype"] != NAMES[grad.dtype] or
                                 not close(r["grad"]["values"], flat(grad), r["grad"]["dtype"])):
            bad.append(f"{name}: gradient fusegrad {r['grad']}, PyTorch "
                       f"{NAMES[grad.dtype]} {flat(grad)}")
        if "text" in r and body_of_ours(r["text"]) != body_of_torch(repr(t)):
            bad.append(f"{name}: printed\n{body_of_ours(r['text'])}\nPyTorch prints\n"
                       f"{body_of_torch(repr(t))}")
    for b in bad:
        print("MISMATCH", b)
    print(f"{len(ours)} cases, {len(bad)} mismatches (PyTorch {torch.__version__})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
