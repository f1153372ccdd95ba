"""quant_bnb.py: src/quant4.c (through tests/quant/quant_dump) against
bitsandbytes 0.50.2 on the CPU and against a NumPy re-implementation written
from the rules in doc/design.md ("4-bit quantization").

usage: quant_bnb.py QUANT_DUMP SCRATCH_DIR      (exit status 1 if any check fails)

For nf4 and fp4 at blocksizes 64, 128, 256, on random tensors of Llama-like
shapes (in_features a multiple of 256, f32 / bf16 / f16) and one crafted
tensor (exact ties, FP4's zeros, an all-zero block, subnormals):
  1. codes and absmax == bitsandbytes.functional.quantize_4bit(...,
     compress_statistics=False), bit for bit, and == NumPy;
  2. nested state (offset, 8-bit codes, nested_absmax) == NumPy bit for bit;
     against bitsandbytes, which picks the 8-bit codes with an approximate
     lookup on the CPU: nested_absmax bit for bit and codes equal except the
     two documented kinds of difference (a neighbouring code; a near-zero
     value that bitsandbytes sends to code 123 or 131), which are counted;
     the offset is compared with torch's fp32 mean (see doc/design.md);
  3. dequantized values (fp32, bf16, f16; plain and through the nested
     state) == bitsandbytes.functional.dequantize_4bit on our state;
  4. the 16-value tables and the 256-value dynamic map == bitsandbytes'.
Odd sizes (1-D, not a multiple of the blocksize): == NumPy bit for bit; and
bitsandbytes == the same NumPy with bitsandbytes' own tail rule (it divides
the last partial block by its absmax, which it stores clamped at 1e-38), so
that rule is the only difference.  Linear4bit is never used here, so its
avx512bf16 repacking on the CPU cannot happen; the 2-D shapes keep
in_features a multiple of the blocksize, as its CPU dequantize needs."""
import os
import subprocess
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file

import bitsandbytes
import bitsandbytes.functional as F

QUANT_DUMP, SCRATCH = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, flush=True)


def bits(a):
    """Raw bit patterns, so that -0.0 != 0.0 and NaN == NaN."""
    if isinstance(a, torch.Tensor):
        a = a.detach().contiguous()
        if a.dtype in (torch.bfloat16, torch.float16):
            a = a.view(torch.int16)
        a = a.numpy()
    a = np.ascontiguousarray(a).reshape(-1)
    return a.view({1: np.uint8, 2: np.uint16, 4: np.uint32}[a.dtype.itemsize])


def same(a, b, what):
    a, b = bits(a), bits(b)
    if a.shape != b.shape:
        check(False, f"{what}: {a.shape[0]} values vs {b.shape[0]}")
        return
    bad = np.flatnonzero(a != b)
    check(bad.size == 0, f"{what}: {bad.size} of {a.size} differ, first at {bad[:5].tolist()}")


def codes_of(packed, n):
    """The n 4-bit codes of packed bytes, first value in the high nibble."""
    p = packed.numpy().reshape(-1) if isinstance(packed, torch.Tensor) else np.asarray(packed).reshape(-1)
    return np.stack([p >> 4, p & 15], axis=1).reshape(-1)[:n]


def same_but_zero_sign(ours, theirs, minus_zero_code, what):
    """Bit for bit, except where the code is FP4's -0 (code 8): ours is -0.0;
    bitsandbytes' CPU dequantize gives -0.0 on some CPUs and +0.0 on others
    (+0.0 seen on an Intel Xeon with AVX512-FP16), so there any zero of
    either sign is accepted -- and nothing else."""
    a, b = bits(ours), bits(theirs)
    if a.shape != b.shape:
        check(False, f"{what}: {a.shape[0]} values vs {b.shape[0]}")
        return
    both_zero = (as_f32(ours) == 0) & (as_f32(theirs) == 0)
    excused = (a != b) & minus_zero_code & both_zero
    bad = np.flatnonzero((a != b) & ~excused)
    check(bad.size == 0, f"{what}: {bad.size} of {a.size} differ, first at {bad[:5].tolist()}")
    stats["zero_sign"] += int(np.count_nonzero(excused))


def as_f32(a):
    if isinstance(a, torch.Tensor):
        a = a.detach().float().numpy()
    return np.asarray(a, dtype=np.float32).reshape(-1)


# ---------------------------------------------------------------- NumPy side
# The published NF4 table (QLoRA, appendix E) and FP4 from its bit fields:
# sign, 2 exponent bits (0 subnormal: mantissa / 16; 1, 2, 3: 2^3, 2^2, 2^1),
# 1 mantissa bit (x 1.5), divided by the largest magnitude 12 in fp32.
NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                0.07958029955625534, 0.16093020141124725, 0.24611230194568634,
                0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                0.7229568362236023, 1.0], dtype=np.float32)


def fp4_table():
    vals = []
    for c in range(16):
        e, m = (c >> 1) & 3, c & 1
        mag = m / 16 if e == 0 else 2.0 ** (4 - e) * (1 + m / 2)
        vals.append(-mag if c & 8 else mag)
    return (np.array(vals, dtype=np.float32) / np.float32(12)).astype(np.float32)


TABLE = {"nf4": NF4, "fp4": fp4_table()}
DYN = F.create_dynamic_map().numpy()  # the 8-bit map's values: bitsandbytes' own
TINY = np.float32(1e-38)  # bitsandbytes clamps absmax to this before 1/absmax


def ranked(table):
    """Codes by ascending value and the fp32 midpoints between neighbours.
    A stable sort ranks FP4's code 0 (+0) before code 8 (-0), as
    bitsandbytes' CPU kernel does."""
    order = np.argsort(table, kind="stable")
    v = table[order]
    return order, ((v[:-1] + v[1:]) / np.float32(2)).astype(np.float32)


def encode(s, order, mids):
    """Nearest value, a value on a midpoint going to the lower one."""
    return order[np.searchsorted(mids, s, side="left")]


def np_quantize(x, qt, bs, tail="mul"):
    """tail="div": bitsandbytes' CPU rule for a last partial block."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    n = x.size
    nb = -(-n // bs)
    order, mids = ranked(TABLE[qt])
    blocks = np.zeros(nb * bs, np.float32)
    blocks[:n] = x
    blocks = blocks.reshape(nb, bs)
    absmax = np.abs(blocks).max(axis=1)
    scaled = blocks * (np.float32(1) / np.maximum(absmax, TINY))[:, None]
    if tail == "div" and n % bs:
        am = np.maximum(absmax[-1], TINY)
        scaled[-1] = blocks[-1] / am
        absmax[-1] = am
    codes = encode(scaled.reshape(-1)[:n], order, mids).astype(np.uint8)
    if n % 2:
        codes = np.append(codes, np.uint8(encode(np.float32(0), order, mids)))
    return ((codes[0::2] << 4) | codes[1::2]).astype(np.uint8), absmax.astype(np.float32)


def np_nest(absmax):
    n = absmax.size
    offset = np.float32(np.add.accumulate(absmax.astype(np.float64))[-1] / n)  # block order
    ng = -(-n // 256)
    v = np.zeros(ng * 256, np.float32)
    v[:n] = absmax - offset
    v = v.reshape(ng, 256)
    m = np.abs(v).max(axis=1)
    s = (v * (np.float32(1) / np.maximum(m, TINY))[:, None]).reshape(-1)[:n]
    mids = ((DYN[:-1] + DYN[1:]) / np.float32(2)).astype(np.float32)
    return offset, np.searchsorted(mids, s, side="left").astype(np.uint8), m.astype(np.float32)


def np_unnest(codes, m, offset):
    return (DYN[codes] * np.repeat(m, 256)[:codes.size]).astype(np.float32) + offset


def np_dequantize(packed, absmax, qt, bs, n):
    codes = np.stack([packed >> 4, packed & 15], axis=1).reshape(-1)[:n]
    return TABLE[qt][codes] * np.repeat(absmax, bs)[:n]


# ------------------------------------------------------------------ inputs
torch.manual_seed(0)


def llama_like(out_f, in_f, dtype):
    w = torch.randn(out_f, in_f) * 0.02
    w[:, ::97] *= 8  # outlier features, as trained Llama weights have
    return w.to(dtype)


def crafted():
    """Row 0: every block of 64 starts with 1.0 (absmax 1, so the scaled
    values are exact), then every NF4 and FP4 midpoint, the floats next to
    them, FP4's zeros from both sides.  Row 1 all zero, row 2 subnormal.
    Row 3: absmax a and two values x for which x * (1/a) and x / a fall on
    either side of an NF4 midpoint (found by search): bitsandbytes multiplies."""
    vals = [0.0, -0.0, 1e-4, -1e-4, 0.0026, -0.0026, 0.0027, -0.0027, -1.0, 1.0]
    for qt in ("nf4", "fp4"):
        for m in ranked(TABLE[qt])[1]:
            vals += [m, np.nextafter(m, np.float32(2)), np.nextafter(m, np.float32(-2))]
    row = np.zeros(256, np.float32)
    free = [i for i in range(256) if i % 64]
    assert len(vals) <= len(free)
    row[free[:len(vals)]] = vals
    row[::64] = 1.0
    sub = (torch.randn(256) * 1e-40).numpy()  # absmax below the 1e-38 clamp
    recip = np.zeros(256, np.float32)
    recip[0::64] = float.fromhex("0x1.13c502p-4")
    recip[1::64] = -float.fromhex("0x1.91bdc2p-9")
    recip[2::64] = float.fromhex("0x1.5f221ap-9")
    return torch.from_numpy(np.stack([row, np.zeros(256, np.float32), sub, recip]))


def absmax_sweep():
    """Rows of +-a_i, so every block of row i has absmax a_i; the a_i lie
    around their mean at distances from 0.01 down to a few ulps, so that the
    nested codes run through the whole dynamic map, the codes next to zero
    included (where bitsandbytes' CPU lookup collapses to 123 / 131)."""
    g = torch.Generator().manual_seed(1)
    d = 0.01 * 10.0 ** (-7 * torch.rand(256, generator=g, dtype=torch.float64))
    a = (0.05 + torch.stack([d, -d], 1).reshape(-1)).float()  # symmetric: mean 0.05
    return a[:, None] * torch.tensor([1.0, -1.0]).repeat(128)[None, :]


MAIN = {
    "q_proj": llama_like(512, 512, torch.float32),
    "gate_proj": llama_like(688, 512, torch.bfloat16),
    "down_proj": llama_like(256, 1536, torch.float16),
    # 34,816 blocks of 64: past 32,768 torch sums the mean on several threads
    "o_proj_big": llama_like(2176, 1024, torch.bfloat16),
    "crafted": crafted(),
    "absmax_sweep": absmax_sweep(),
}
ODD = {f"odd{n}": (torch.randn(n) * 0.02).to(dt) for n, dt in
       [(1, torch.float32), (3, torch.float32), (63, torch.float32), (65, torch.float16),
        (130, torch.float32), (1001, torch.float32), (4097, torch.bfloat16)]}
ODD["odd_zero_tail"] = torch.cat([torch.randn(256) * 0.02, torch.zeros(37)])
for name, group in (("main", MAIN), ("odd", ODD)):
    save_file(group, os.path.join(SCRATCH, f"{name}.safetensors"))


def run_dump(group, qt, bs):
    out = os.path.join(SCRATCH, f"{group}_{qt}_{bs}.safetensors")
    r = subprocess.run([QUANT_DUMP, os.path.join(SCRATCH, f"{group}.safetensors"), out, qt, str(bs)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: quant_dump {group} {qt} {bs}: {r.stderr.strip()}")
    return load_file(out)


# ------------------------------------------------------------------ checks
stats = {"zero_sign": 0, "codes": 0, "diff": 0, "neighbour": 0, "near_zero": 0, "llama_codes": 0, "llama_diff": 0,
         "offsets": 0, "offset_equal": 0, "offset_ulps": 0, "tail_codes": 0, "tail_div_differs": 0}
SYNTHETIC = ("crafted", "absmax_sweep")  # not weight-like: left out of the rate of differences


def classify_nested(ours, theirs, what, llama_like):
    """Differences allowed between exact-nearest 8-bit codes (ours) and
    bitsandbytes' CPU lookup: a neighbour, or, for values whose nearest
    codes are the seven around zero (124..130), code 123 or 131."""
    ours, theirs = ours.astype(np.int64), theirs.astype(np.int64)
    diff = ours != theirs
    neighbour = diff & (np.abs(ours - theirs) == 1)
    near_zero = diff & ~neighbour & (ours >= 124) & (ours <= 130) & np.isin(theirs, (123, 131))
    other = np.flatnonzero(diff & ~neighbour & ~near_zero)
    check(other.size == 0, f"{what}: 8-bit codes differ beyond the documented kinds at "
          f"{other[:5].tolist()}: ours {ours[other[:5]].tolist()}, bitsandbytes {theirs[other[:5]].tolist()}")
    stats["codes"] += ours.size
    stats["diff"] += int(diff.sum())
    stats["neighbour"] += int(neighbour.sum())
    stats["near_zero"] += int(near_zero.sum())
    if llama_like:
        stats["llama_codes"] += ours.size
        stats["llama_diff"] += int(diff.sum())


def bnb_state(c, name, t, qt, bs, dtype, nested):
    code = F.get_4bit_type(qt, device="cpu")
    kw = dict(shape=t.shape, dtype=dtype, blocksize=bs, code=code, quant_type=qt)
    if not nested:
        return F.QuantState(absmax=c[name + ".absmax"], **kw)
    state2 = F.QuantState(absmax=c[name + ".nested_absmax"], code=F.create_dynamic_map(),
                          blocksize=256, dtype=torch.float32)
    return F.QuantState(absmax=c[name + ".nested_codes"], offset=c[name + ".offset"][0],
                        state2=state2, **kw)


def check_main(qt, bs):
    c = run_dump("main", qt, bs)
    for name, t in MAIN.items():
        at = f"{name} {qt} blocksize {bs}"
        # 1. codes and absmax
        packed, st = F.quantize_4bit(t, blocksize=bs, quant_type=qt, compress_statistics=False)
        same(c[name + ".packed"], packed, f"{at}: codes vs bitsandbytes")
        same(c[name + ".absmax"], st.absmax, f"{at}: absmax vs bitsandbytes")
        np_packed, np_absmax = np_quantize(t.float().numpy(), qt, bs)
        same(c[name + ".packed"], np_packed, f"{at}: codes vs NumPy")
        same(c[name + ".absmax"], np_absmax, f"{at}: absmax vs NumPy")
        # 2. nested state
        absmax = c[name + ".absmax"].numpy()
        offset, codes, nabs = np_nest(absmax)
        same(c[name + ".offset"], np.array([offset]), f"{at}: offset vs NumPy")
        same(c[name + ".nested_codes"], codes, f"{at}: nested codes vs NumPy")
        same(c[name + ".nested_absmax"], nabs, f"{at}: nested_absmax vs NumPy")
        q_b, st2 = F.quantize_blockwise(c[name + ".absmax"] - c[name + ".offset"][0], blocksize=256)
        same(c[name + ".nested_absmax"], st2.absmax, f"{at}: nested_absmax vs bitsandbytes")
        classify_nested(c[name + ".nested_codes"].numpy(), q_b.numpy(), at, name not in SYNTHETIC)
        _, st_n = F.quantize_4bit(t, blocksize=bs, quant_type=qt, compress_statistics=True)
        ulps = abs(int(bits(st_n.offset)[0]) - int(bits(c[name + ".offset"])[0]))
        # torch rounds at each fp32 addition, in an order that depends on the
        # vector width and thread count: a sanity bound, not an identity
        check(ulps <= 4, f"{at}: offset {c[name + '.offset'][0].item()!r} vs torch's mean "
              f"{st_n.offset.item()!r}: {ulps} ulps apart")
        stats["offsets"] += 1
        stats["offset_equal"] += ulps == 0
        stats["offset_ulps"] = max(stats["offset_ulps"], ulps)
        if ulps == 0:  # bitsandbytes' whole nested state then comes from the same inputs
            same(c[name + ".nested_absmax"], st_n.state2.absmax, f"{at}: nested state vs bitsandbytes'")
            check(torch.equal(st_n.absmax, q_b), f"{at}: bitsandbytes' nested codes vs its blockwise")
        # 3. dequantized values
        packed_c = c[name + ".packed"].reshape(-1, 1)
        for suffix, dtype, nested in ((".dq_f32", torch.float32, False), (".dq_bf16", torch.bfloat16, False),
                                      (".dq_f16", torch.float16, False), (".ndq_f32", torch.float32, True),
                                      (".ndq_bf16", torch.bfloat16, True)):
            want = F.dequantize_4bit(packed_c, quant_state=bnb_state(c, name, t, qt, bs, dtype, nested))
            same_but_zero_sign(c[name + suffix], want, codes_of(c[name + ".packed"], t.numel()) == 8,
                               f"{at}: dequantized {suffix[1:]} vs bitsandbytes")
        same(c[name + ".ndq_f32"], np_dequantize(c[name + ".packed"].numpy(), np_unnest(codes, nabs, offset),
                                                 qt, bs, t.numel()), f"{at}: nested dequantized vs NumPy")
    return c


def check_tables(c):
    same(c["table.nf4"], F.get_4bit_type("nf4", device="cpu"), "NF4 table vs bitsandbytes")
    same(c["table.nf4"], NF4, "NF4 table vs the published one")
    same(c["table.fp4"], TABLE["fp4"], "FP4 table vs its bit fields")
    # get_4bit_type lists code 8 as +0.0; its dequantize kernels give -0.0 (checked above)
    check(np.array_equal(c["table.fp4"].numpy(), F.get_4bit_type("fp4", device="cpu").numpy()),
          "FP4 table values vs bitsandbytes")
    same(c["table.dynamic"], F.create_dynamic_map(), "dynamic map vs bitsandbytes")


def check_odd(qt, bs):
    c = run_dump("odd", qt, bs)
    for name, t in ODD.items():
        at = f"{name} {qt} blocksize {bs}"
        x = t.float().numpy()
        np_packed, np_absmax = np_quantize(x, qt, bs)
        same(c[name + ".packed"], np_packed, f"{at}: codes vs NumPy")
        same(c[name + ".absmax"], np_absmax, f"{at}: absmax vs NumPy")
        offset, codes, nabs = np_nest(np_absmax)
        same(c[name + ".offset"], np.array([offset]), f"{at}: offset vs NumPy")
        same(c[name + ".nested_codes"], codes, f"{at}: nested codes vs NumPy")
        same(c[name + ".nested_absmax"], nabs, f"{at}: nested_absmax vs NumPy")
        same(c[name + ".dq_f32"], np_dequantize(np_packed, np_absmax, qt, bs, x.size),
             f"{at}: dequantized vs NumPy")
        same(c[name + ".ndq_f32"], np_dequantize(np_packed, np_unnest(codes, nabs, offset), qt, bs, x.size),
             f"{at}: nested dequantized vs NumPy")
        # bitsandbytes == NumPy with bitsandbytes' tail rule: the tail rule is the only difference
        packed, st = F.quantize_4bit(t, blocksize=bs, quant_type=qt, compress_statistics=False)
        div_packed, div_absmax = np_quantize(x, qt, bs, tail="div")
        same(packed, div_packed, f"{at}: bitsandbytes codes vs NumPy with its tail rule")
        same(st.absmax, div_absmax, f"{at}: bitsandbytes absmax vs NumPy with its tail rule")
        full = (x.size // bs) * bs
        if full < x.size:
            unpack = lambda p: np.stack([p >> 4, p & 15], axis=1).reshape(-1)[full:x.size]
            stats["tail_codes"] += x.size - full
            stats["tail_div_differs"] += int((unpack(np_packed) != unpack(div_packed)).sum())


print(f"bitsandbytes {bitsandbytes.__version__}, torch {torch.__version__} "
      f"({torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()})", flush=True)
for qt in ("nf4", "fp4"):
    for bs in (64, 128, 256):
        c = check_main(qt, bs)
        check_odd(qt, bs)
check_tables(c)

s = stats
print(f"nested 8-bit codes: {s['diff']} of {s['codes']} differ from bitsandbytes' CPU lookup: "
      f"{s['neighbour']} by one code, {s['near_zero']} near zero (to 123/131); on the Llama-like "
      f"tensors {s['llama_diff']} of {s['llama_codes']} ({100 * s['llama_diff'] / s['llama_codes']:.3f}%)")
print(f"offset: {s['offset_equal']} of {s['offsets']} equal torch's fp32 mean, the rest within "
      f"{s['offset_ulps']} ulp")
print(f"odd sizes: {s['tail_div_differs']} of {s['tail_codes']} tail codes differ between x * (1/absmax) "
      f"and bitsandbytes' x / absmax")
check(s["llama_diff"] <= 0.01 * s["llama_codes"], "more than 1% of the Llama-like tensors' nested codes "
      "differ from bitsandbytes")
check(s["near_zero"] > 0, "no nested code near zero was exercised")
if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print(f"FP4 code 8 (-0): {s['zero_sign']} dequantized values are +0.0 in bitsandbytes' CPU kernel "
      "on this CPU (-0.0 in ours; the sign of zero is CPU-dependent there)")
print("ok: quant4 agrees with bitsandbytes and the NumPy re-implementation")
