#!/usr/bin/env python3
"""Fresh GGUF fixtures made by gguf-py at test time (not the files in ../shared/).

Run inside a virtualenv holding gguf==0.19.0 and numpy (the integration tests create one
under .cache/gguf-venv). Subcommands:

  dequant OUTDIR     For every ggml type that the installed gguf-py can dequantize (found by
                     asking `gguf.quants.dequantize`, not from a list), random but valid blocks
                     from a fixed seed, written with gguf.GGUFWriter as raw tensors to
                     OUTDIR/dequant.gguf. Each tensor's values as gguf-py dequantizes them
                     (read back with GGUFReader) go to OUTDIR/<TYPE>.f32 (raw little-endian
                     f32) and OUTDIR/manifest.json describes everything. The integer and F64
                     types, which gguf-py does not dequantize, are added with numpy's
                     astype(float32) as the oracle and marked so.
  planted OUT.gguf   A small llama GGUF written with GGUFWriter with planted defects: NaN/Inf
                     f16 scales in a Q8_0 tensor, a Q8_0 norm, an F32 tensor of whole numbers
                     -8..7, and one attn_q 100x louder than the other layers'. Prints JSON with
                     the planted facts (counts, block indices, expected ratio) on stdout.
"""
import json
import os
import sys
from importlib import metadata

import numpy as np

SEED = 20250601
ROWS = 33
BLOCKS_PER_ROW = 3  # 99 blocks per tensor: odd, so SIMD paths that take several blocks at once have a tail
ELEMENT_ROW = 96  # row length of the one-value-per-block types

# Where each block type keeps its scale fields: (kind, byte offset in the block).
#   f16       an IEEE half
#   f16_iq1m  IQ1_M's half, split into the top nibbles of the four u16 sub-scale words at the offset
#   e8m0      MXFP4's exponent byte
#   ue4m3     NVFP4's four scale bytes (every byte is a finite scale in gguf-py: left random)
SCALE_FIELDS = {
    "Q4_0": [("f16", 0)],
    "Q4_1": [("f16", 0), ("f16", 2)],
    "Q5_0": [("f16", 0)],
    "Q5_1": [("f16", 0), ("f16", 2)],
    "Q8_0": [("f16", 0)],
    "Q8_1": [("f16", 0), ("f16", 2)],
    "Q2_K": [("f16", 80), ("f16", 82)],
    "Q3_K": [("f16", 108)],
    "Q4_K": [("f16", 0), ("f16", 2)],
    "Q5_K": [("f16", 0), ("f16", 2)],
    "Q6_K": [("f16", 208)],
    "IQ2_XXS": [("f16", 0)],
    "IQ2_XS": [("f16", 0)],
    "IQ2_S": [("f16", 0)],
    "IQ3_XXS": [("f16", 0)],
    "IQ3_S": [("f16", 0)],
    "IQ1_S": [("f16", 0)],
    "IQ1_M": [("f16_iq1m", 48)],
    "IQ4_NL": [("f16", 0)],
    "IQ4_XS": [("f16", 0)],
    "TQ1_0": [("f16", 52)],
    "TQ2_0": [("f16", 64)],
    "MXFP4": [("e8m0", 0)],
    "NVFP4": [("ue4m3", 0)],
}

# Special scale values planted in a few blocks of each block type.
F16_SPECIALS = [
    (0x7E00, "nan"),
    (0xFE2A, "-nan with payload"),
    (0x7C01, "signalling nan"),
    (0x7C00, "+inf"),
    (0xFC00, "-inf"),
    (0x0001, "smallest subnormal"),
    (0x83FF, "largest negative subnormal"),
    (0x0000, "zero"),
    (0x8000, "-zero"),
    (0x7BFF, "largest finite"),
]
E8M0_SPECIALS = [
    (0, "2^-127 (subnormal half)"),
    (1, "2^-126 (subnormal half)"),
    (2, "smallest normal"),
    (254, "2^127"),
    (255, "0xFF (NaN in OCP, 2^128 in ggml: products overflow to inf)"),
]
UE4M3_SPECIALS = [
    (0x7F, "0x7F (NaN in OCP, 0 in gguf-py)"),
    (0xFF, "0xFF (bit 7 set)"),
    (0x80, "0x80 (bit 7 set, zero)"),
    (0x00, "zero"),
    (0x7E, "largest finite"),
    (0x01, "smallest subnormal"),
]
SCALE_SPECIALS = {"f16": F16_SPECIALS, "f16_iq1m": F16_SPECIALS, "e8m0": E8M0_SPECIALS, "ue4m3": UE4M3_SPECIALS}

# Element specials for the float types: (bits, what).
F32_SPECIALS = [
    (0x00000000, "zero"),
    (0x80000000, "-zero"),
    (0x7F800000, "+inf"),
    (0xFF800000, "-inf"),
    (0x7FC00000, "nan"),
    (0xFFC00001, "-nan with payload"),
    (0x7F800001, "signalling nan"),
    (0x00000001, "smallest subnormal"),
    (0x807FFFFF, "largest negative subnormal"),
    (0x7F7FFFFF, "largest finite"),
]
BF16_SPECIALS = [
    (0x7F80, "+inf"),
    (0xFF80, "-inf"),
    (0x7FC0, "nan"),
    (0xFFC1, "-nan with payload"),
    (0x7F81, "signalling nan"),
    (0x0001, "smallest subnormal"),
    (0x8000, "-zero"),
    (0x7F7F, "largest finite"),
]
F64_SPECIALS = [
    (np.float64(np.inf), "+inf"),
    (np.float64(-np.inf), "-inf"),
    (np.float64(1e300), "overflows f32"),
    (np.float64(-1e300), "overflows f32 (negative)"),
    (np.float64(1e-300), "underflows to zero"),
    (np.float64(1.0 + 2.0**-24), "tie between two f32: to even (1.0)"),
    (np.float64(1.0 + 3 * 2.0**-24), "tie between two f32: to even (up)"),
    (np.float64(1.5 * 2.0**-149), "subnormal tie"),
    (np.float64(-0.0), "-zero"),
    (np.frombuffer(np.uint64(0x7FF8000000000001).tobytes(), "<f8")[0], "nan with payload"),
]


def gguf_py_dequantizes(qtype):
    """Whether the installed gguf-py dequantizes this type (asked, not assumed)."""
    from gguf import GGML_QUANT_SIZES, quants

    _, type_size = GGML_QUANT_SIZES[qtype]
    try:
        quants.dequantize(np.zeros((1, type_size), dtype=np.uint8), qtype)
    except NotImplementedError:
        return False
    return True


def sane_f16(rng, n):
    """Finite halves of either sign from 2^-14 to 1: every product stays finite."""
    mag = rng.uniform(0.5, 1.0, n) * np.exp2(rng.integers(-14, 1, n).astype(np.float64))
    sign = np.where(rng.integers(0, 2, n) == 1, -1.0, 1.0)
    return (mag * sign).astype(np.float16).view(np.uint16)


def set_u16(block, off, bits):
    block[off] = bits & 0xFF
    block[off + 1] = (bits >> 8) & 0xFF


def set_iq1m_d(block, off, bits):
    for i in range(4):
        lo = off + 2 * i
        word = int(block[lo]) | (int(block[lo + 1]) << 8)
        word = (word & 0x0FFF) | (((bits >> (4 * i)) & 0xF) << 12)
        set_u16(block, lo, word)


def set_scale(block, kind, off, bits, i=0):
    """Write a scale field of one block (see SCALE_FIELDS); NVFP4's `i`-th special goes to
    its scale byte i % 4."""
    if kind == "f16":
        set_u16(block, off, bits)
    elif kind == "f16_iq1m":
        set_iq1m_d(block, off, bits)
    elif kind == "e8m0":
        block[off] = bits
    elif kind == "ue4m3":
        block[off + i % 4] = bits
    else:
        raise AssertionError(kind)


def block_tensor(name, rng):
    """Random blocks for a block type, scale fields sane except in the planted blocks."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    qtype = GGMLQuantizationType[name]
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    if name not in SCALE_FIELDS:
        raise SystemExit(
            f"gguf-py dequantizes {name} but scripts/gguf-py-fixtures.py does not know where its "
            "scale fields are: add it to SCALE_FIELDS"
        )
    n_blocks = ROWS * BLOCKS_PER_ROW
    blocks = rng.integers(0, 256, (n_blocks, type_size), dtype=np.uint8)
    fields = SCALE_FIELDS[name]
    for kind, off in fields:
        if kind in ("f16", "f16_iq1m"):
            halves = sane_f16(rng, n_blocks)
            for b in range(n_blocks):
                set_scale(blocks[b], kind, off, int(halves[b]))
        elif kind == "e8m0":
            blocks[:, off] = rng.integers(110, 141, n_blocks, dtype=np.uint8)
        elif kind != "ue4m3":  # NVFP4's random scale bytes are all finite: left as they are
            raise AssertionError(kind)
    special = []
    for fi, (kind, off) in enumerate(fields):
        table = SCALE_SPECIALS[kind]
        for i, (bits, what) in enumerate(table):
            b = 1 + 4 * i + 2 * fi
            set_scale(blocks[b], kind, off, bits, i)
            special.append({"block": b, "field": fi, "bits": hex(bits), "what": what})
        # The last block too: a tail that SIMD paths decode on their own.
        last = n_blocks - 1
        bits, what = table[0]
        set_scale(blocks[last], kind, off, bits)
        special.append({"block": last, "field": fi, "bits": hex(bits), "what": what})
    raw = blocks.reshape(ROWS, BLOCKS_PER_ROW * type_size)
    return qtype, raw, special, BLOCKS_PER_ROW * block_size


def finite_bits(bits, exp_mask, exp_shift):
    """Random bit patterns with an all-ones exponent (inf/nan) moved one exponent down."""
    exp = (bits & exp_mask) >> exp_shift
    top = exp_mask >> exp_shift
    return np.where(exp == top, bits - (1 << exp_shift), bits).astype(bits.dtype)


def element_tensor(name, rng):
    """Values for the one-value-per-block types: random finite values plus specials."""
    n = ROWS * ELEMENT_ROW
    positions = lambda k: [5 + 7 * i for i in range(k)]  # noqa: E731
    special = []
    if name == "F32":
        vals = (rng.standard_normal(n) * np.exp2(rng.integers(-20, 20, n).astype(np.float64))).astype("<f4")
        bits = vals.view("<u4")
        for p, (b, what) in zip(positions(len(F32_SPECIALS)), F32_SPECIALS):
            bits[p] = b
            special.append({"element": p, "bits": hex(b), "what": what})
        arr = bits.view("<f4")
    elif name == "F16":
        bits = finite_bits(rng.integers(0, 1 << 16, n, dtype=np.uint16), 0x7C00, 10)
        for p, (b, what) in zip(positions(len(F16_SPECIALS)), F16_SPECIALS):
            bits[p] = b
            special.append({"element": p, "bits": hex(b), "what": what})
        arr = bits.astype("<u2").view("<f2")
    elif name == "BF16":
        bits = finite_bits(rng.integers(0, 1 << 16, n, dtype=np.uint16), 0x7F80, 7)
        for p, (b, what) in zip(positions(len(BF16_SPECIALS)), BF16_SPECIALS):
            bits[p] = b
            special.append({"element": p, "bits": hex(b), "what": what})
        arr = bits.astype("<u2")
    elif name == "F64":
        arr = (rng.standard_normal(n) * np.exp2(rng.integers(-40, 40, n).astype(np.float64))).astype("<f8")
        for p, (v, what) in zip(positions(len(F64_SPECIALS)), F64_SPECIALS):
            arr[p] = v
            special.append({"element": p, "bits": hex(int(np.float64(v).view(np.uint64))), "what": what})
    elif name in ("I8", "I16", "I32", "I64"):
        dt = np.dtype({"I8": "<i1", "I16": "<i2", "I32": "<i4", "I64": "<i8"}[name])
        info = np.iinfo(dt)
        arr = rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)
        extra = [(info.min, "min"), (info.max, "max"), (0, "zero"), (-1, "-1")]
        if dt.itemsize >= 4:
            # Past 2^24 f32 rounds: ties go to even.
            extra += [(2**24 + 1, "2^24+1 (tie, down)"), (2**24 + 3, "2^24+3 (tie, up)"), (-(2**24) - 1, "-(2^24+1)")]
        for p, (v, what) in zip(positions(len(extra)), extra):
            arr[p] = v
            special.append({"element": p, "value": int(v), "what": what})
    else:
        raise SystemExit(f"gguf-py dequantizes {name}, an element type this script does not build")
    return arr.reshape(ROWS, ELEMENT_ROW), special


def dequant(outdir):
    import gguf
    from gguf import GGMLQuantizationType, GGML_QUANT_SIZES, GGUFReader, GGUFWriter, quants

    os.makedirs(outdir, exist_ok=True)
    by_gguf_py = [t.name for t in GGMLQuantizationType if gguf_py_dequantizes(t)]
    numpy_oracle = [n for n in ("F64", "I8", "I16", "I32", "I64") if n not in by_gguf_py]
    not_dequantized = [t.name for t in GGMLQuantizationType if t.name not in by_gguf_py and t.name not in numpy_oracle]

    path = os.path.join(outdir, "dequant.gguf")
    w = GGUFWriter(path, "llama")
    w.add_name("quantdoc gguf-py dequant fixtures")
    entries = []
    written = {}
    for name in by_gguf_py + numpy_oracle:
        qtype = GGMLQuantizationType[name]
        rng = np.random.default_rng([SEED, int(qtype)])
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        tname = f"dequant.{name}"
        if block_size == 1:
            arr, special = element_tensor(name, rng)
            if name in ("F32", "F16") or name in numpy_oracle:
                # Typed numpy arrays: GGUFWriter picks the ggml type itself.
                w.add_tensor(tname, arr)
            else:
                w.add_tensor(tname, arr.view(np.uint8), raw_dtype=qtype)
            raw = np.ascontiguousarray(arr).view(np.uint8).reshape(ROWS, -1)
            cols = ELEMENT_ROW
        else:
            qtype, raw, special, cols = block_tensor(name, rng)
            w.add_tensor(tname, raw, raw_dtype=qtype)
        written[tname] = raw.tobytes()
        entries.append(
            {
                "name": tname,
                "type": name,
                "shape": [ROWS, cols],
                "block_size": block_size,
                "type_size": type_size,
                "expected": f"{name}.f32",
                "oracle": "numpy.astype(float32)" if name in numpy_oracle else "gguf.quants.dequantize",
                "special": special,
            }
        )
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # The oracle reads the file back, so it judges the bytes quantdoc will read.
    reader = GGUFReader(path)
    read = {t.name: t for t in reader.tensors}
    with np.errstate(all="ignore"):
        for e in entries:
            t = read[e["name"]]
            assert t.tensor_type.name == e["type"], (e["name"], t.tensor_type.name)
            data = np.ascontiguousarray(t.data)
            assert data.tobytes() == written[e["name"]], f"{e['name']}: GGUFReader reads other bytes"
            e["offset"] = int(t.data_offset)
            e["n_bytes"] = int(t.n_bytes)
            if e["oracle"] == "gguf.quants.dequantize":
                values = quants.dequantize(data.view(np.uint8).reshape(ROWS, -1), t.tensor_type)
            else:
                values = data.astype(np.float32)
            values = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
            assert values.size == e["shape"][0] * e["shape"][1], e["name"]
            values.astype("<f4").tofile(os.path.join(outdir, e["expected"]))
            e["nan"] = int(np.isnan(values).sum())
            e["inf"] = int(np.isinf(values).sum())

    manifest = {
        "gguf": "dequant.gguf",
        "seed": SEED,
        "gguf_version": metadata.version("gguf"),
        "numpy_version": np.__version__,
        "gguf_module": os.path.dirname(gguf.__file__),
        "gguf_py_dequantizes": by_gguf_py,
        "numpy_oracle": numpy_oracle,
        "not_dequantized_by_gguf_py": not_dequantized,
        "tensors": entries,
    }
    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps({"tensors": len(entries), "gguf_py_dequantizes": len(by_gguf_py)}))


def normalized(rng, shape, rms):
    """Gaussian values scaled to the given RMS exactly (in f64)."""
    x = rng.standard_normal(shape)
    return x * (rms / np.sqrt(np.mean(x * x)))


def planted(out):
    from gguf import GGMLQuantizationType, GGUFWriter, quants

    rng = np.random.default_rng([SEED, 4242])
    n_layers, dim, ff, vocab = 4, 64, 128, 96
    w = GGUFWriter(out, "llama")
    w.add_name("quantdoc planted defects")
    w.add_block_count(n_layers)
    w.add_context_length(256)
    w.add_embedding_length(dim)
    w.add_feed_forward_length(ff)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_rope_dimension_count(dim // 4)
    w.add_layer_norm_rms_eps(1e-5)

    facts = {"healthy": []}

    def healthy(name, arr, raw_dtype=None):
        w.add_tensor(name, arr, raw_dtype=raw_dtype)
        facts["healthy"].append(name)

    healthy("token_embd.weight", normalized(rng, (vocab, dim), 0.05).astype(np.float16))
    q_rms = 0.02
    outlier_layer, outlier_factor = 2, 100.0
    for layer in range(n_layers):
        norm = 1.0 + 0.1 * rng.standard_normal(dim)
        name = f"blk.{layer}.attn_norm.weight"
        if layer == 0:
            # Planted: a norm quantized to Q8_0 by gguf-py (NORM_QUANTIZED); its values stay
            # healthy (RMS about 1), so only the storage type is wrong.
            q = quants.quantize(norm.astype(np.float32), GGMLQuantizationType.Q8_0)
            w.add_tensor(name, q, raw_dtype=GGMLQuantizationType.Q8_0)
            facts["quantized_norm"] = {"tensor": name, "type": "Q8_0", "elements": dim}
        else:
            healthy(name, norm.astype(np.float32))
        rms = q_rms * (outlier_factor if layer == outlier_layer else 1.0)
        name = f"blk.{layer}.attn_q.weight"
        arr = normalized(rng, (dim, dim), rms).astype(np.float32)
        if layer == outlier_layer:
            w.add_tensor(name, arr)
        else:
            healthy(name, arr)
        healthy(f"blk.{layer}.ffn_norm.weight", (1.0 + 0.1 * rng.standard_normal(dim)).astype(np.float32))

    # Planted: NaN and Inf f16 scales in a Q8_0 tensor quantized by gguf-py.
    kname = "blk.1.attn_k.weight"
    kvals = normalized(rng, (dim, dim), 0.03).astype(np.float32)
    kq = np.array(quants.quantize(kvals, GGMLQuantizationType.Q8_0), copy=True)
    blocks = kq.reshape(-1, 34)
    nan_blocks, inf_blocks = [37, 38, 90], [101]
    for b in nan_blocks:
        blocks[b, 0:2] = np.frombuffer(np.uint16(0x7E00).tobytes(), np.uint8)
    for b in inf_blocks:
        blocks[b, 0:2] = np.frombuffer(np.uint16(0x7C00).tobytes(), np.uint8)
    w.add_tensor(kname, kq, raw_dtype=GGMLQuantizationType.Q8_0)
    with np.errstate(all="ignore"):
        deq = quants.dequantize(kq, GGMLQuantizationType.Q8_0)
    first = min(nan_blocks + inf_blocks)
    facts["nan_scales"] = {
        "tensor": kname,
        "type": "Q8_0",
        "blocks": blocks.shape[0],
        "nan_scales": len(nan_blocks),
        "inf_scales": len(inf_blocks),
        "first_bad_block": first,
        "first_bad_element": first * 32,
        "first_bad_row": first * 32 // dim,
        "nan_values": int(np.isnan(deq).sum()),
        "inf_values": int(np.isinf(deq).sum()),
        "elements": int(deq.size),
    }

    # Planted: 4-bit codes -8..7 stored as F32 without their scales.
    iname = "blk.3.ffn_gate.weight"
    codes = rng.integers(-8, 8, (ff, dim)).astype(np.float32)
    codes[0, 0], codes[0, 1] = -8, 7
    w.add_tensor(iname, codes)
    facts["unscaled_integers"] = {"tensor": iname, "elements": int(codes.size), "min": -8, "max": 7}

    facts["projection_outlier"] = {
        "tensor": f"blk.{outlier_layer}.attn_q.weight",
        "family": "blk.*.attn_q.weight",
        "members": n_layers,
        "rms": q_rms * outlier_factor,
        "median_rms": q_rms,
        "ratio": outlier_factor,
    }

    healthy("output_norm.weight", (1.0 + 0.1 * rng.standard_normal(dim)).astype(np.float32))
    out_w = quants.quantize(normalized(rng, (vocab, dim), 0.04).astype(np.float32), GGMLQuantizationType.Q8_0)
    healthy("output.weight", out_w, raw_dtype=GGMLQuantizationType.Q8_0)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    facts["gguf_version"] = metadata.version("gguf")
    json.dump(facts, sys.stdout, indent=1)


def main(argv):
    if len(argv) == 3 and argv[1] == "dequant":
        dequant(argv[2])
    elif len(argv) == 3 and argv[1] == "planted":
        planted(argv[2])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
