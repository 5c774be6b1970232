#!/usr/bin/env python3
"""Independent checks of quantdoc's writers with the reference Python libraries.

Run inside a virtualenv holding gguf==0.19.0, numpy and safetensors (the integration tests
create one under .cache/gguf-venv). Subcommands:

  quantize TYPE IN.f32 OUT.bin     gguf.quants.quantize of raw little-endian f32 values
                                   (one row per 256 values) written as raw bytes
  dump-gguf FILE.gguf              JSON: version, metadata (type + value), tensors (name,
                                   type, logical shape, sha256 of the data bytes) as read by
                                   gguf.GGUFReader
  dump-safetensors FILE...         JSON: per tensor dtype, shape and sha256 of the bytes as
                                   loaded by safetensors (numpy; BF16 without the hash, numpy
                                   has no bfloat16); plus metadata
"""
import hashlib
import json
import sys

import numpy as np


def quantize(type_name, src, dst):
    from gguf import GGMLQuantizationType, quants

    qtype = GGMLQuantizationType[type_name]
    values = np.fromfile(src, dtype="<f4")
    row = 256 if values.size % 256 == 0 else 32
    out = quants.quantize(values.reshape((-1, row)), qtype)
    np.ascontiguousarray(out).tofile(dst)


def field_value(field):
    from gguf import GGUFValueType

    types = [GGUFValueType(t).name for t in field.types]
    if not field.types:
        return types, None
    if field.types[0] == GGUFValueType.ARRAY:
        # gguf-py flattens nested arrays; keep the flat element list.
        return types, [jsonable(field.contents(i)) for i in range(len(field.data))]
    return types, jsonable(field.contents())


def jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    if isinstance(v, float) and v != v:
        return "nan"
    return v


def dump_gguf(path):
    from gguf import GGUFReader

    r = GGUFReader(path)
    meta = []
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        types, value = field_value(field)
        meta.append({"key": name, "types": types, "value": value})
    tensors = []
    for t in r.tensors:
        data = np.ascontiguousarray(t.data)
        tensors.append(
            {
                "name": t.name,
                "type": t.tensor_type.name,
                "shape": [int(d) for d in reversed(t.shape.tolist())],
                "offset": int(t.data_offset),
                "n_bytes": int(t.n_bytes),
                "sha256": hashlib.sha256(data.tobytes()).hexdigest(),
            }
        )
    version = int(r.fields["GGUF.version"].parts[-1][0])
    json.dump({"version": version, "alignment": r.alignment, "metadata": meta, "tensors": tensors}, sys.stdout)


def dump_safetensors(paths):
    from safetensors import safe_open

    out = {"tensors": {}, "metadata": {}}
    for p in paths:
        with safe_open(p, framework="numpy") as f:
            out["metadata"].update(f.metadata() or {})
            for name in f.keys():
                sl = f.get_slice(name)
                entry = {"dtype": sl.get_dtype(), "shape": list(sl.get_shape()), "file": p}
                # numpy has no bfloat16: those tensors are checked for dtype and shape only.
                if entry["dtype"] != "BF16":
                    arr = np.ascontiguousarray(f.get_tensor(name))
                    entry["sha256"] = hashlib.sha256(arr.tobytes()).hexdigest()
                out["tensors"][name] = entry
    json.dump(out, sys.stdout)


def main(argv):
    if len(argv) >= 2 and argv[1] == "quantize" and len(argv) == 5:
        quantize(argv[2], argv[3], argv[4])
    elif len(argv) == 3 and argv[1] == "dump-gguf":
        dump_gguf(argv[2])
    elif len(argv) >= 3 and argv[1] == "dump-safetensors":
        dump_safetensors(argv[2:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
