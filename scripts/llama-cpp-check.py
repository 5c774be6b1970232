#!/usr/bin/env python3
"""Acceptance check of `quantdoc repair` and `quantdoc convert` against the real libraries.

Run by scripts/llama-cpp-check.sh inside its virtualenv (torch, bitsandbytes, transformers,
sentencepiece, safetensors from PyPI) with llama.cpp's convert_hf_to_gguf.py and gguf-py
from the llama-cpp-python sdist:

  1. makes a tiny random Llama with transformers and a SentencePiece tokenizer trained here
     with the sentencepiece library (tokenizer.model, tokenizer.json, tokenizer_config.json,
     chat_template.jinja, an added special and an added normal token);
  2. quantizes it to NF4 with double quantization through transformers' BitsAndBytesConfig
     (bitsandbytes on the CPU) and records bitsandbytes' own dequantize_4bit of every
     quantized weight, read back from the saved file;
  3. `quantdoc repair`: every dequantized tensor must equal bitsandbytes' values bit for
     bit, every other tensor must be unchanged, no quantization artifact may remain;
  4. convert_hf_to_gguf.py must accept the repaired checkpoint (f32 and f16);
  5. `quantdoc convert` of the NF4 checkpoint itself (f32 and f16) must give what
     convert_hf_to_gguf.py gives from the repaired one: tensor names, shapes and types,
     every tokenizer.* and llama.* key with its type and value, and the tensor data bit for
     bit (quantdoc decodes NF4 to the bf16 values bitsandbytes returns, and both round
     those to F16 the same way).

Usage: llama-cpp-check.py --quantdoc BIN --convert convert_hf_to_gguf.py --work DIR
Prints one `ok:` line per proven property; any failure raises (exit 1).
"""
import argparse
import json
import logging
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

SEED = 1234
VOCAB_PIECES = 448  # SentencePiece model size: 256 byte pieces, specials, merges
VOCAB_SIZE = 512  # config.json: added tokens and [PAD] fillers above the model's pieces
EXPECTED_BLOCK = [
    "attn_q", "attn_k", "attn_v", "attn_output",
    "ffn_gate", "ffn_up", "ffn_down", "attn_norm", "ffn_norm",
]


def ok(msg):
    print(f"ok: {msg}", flush=True)


def run(cmd, **kw):
    """Run a command; on failure show its output and raise."""
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-4000:] + p.stderr[-8000:])
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {p.returncode}")
    return p.stdout


# -- 1. the model and its tokenizer ---------------------------------------------------------


def corpus(rng):
    """Deterministic English-like text: words made of syllables, digits, punctuation."""
    syll = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "vo", "pe", "da", "qu", "ix", "or", "an",
            "el", "um", "st", "ch", "th", "br"]
    words = ["".join(rng.choice(syll) for _ in range(rng.randint(1, 4))) for _ in range(400)]
    words += ["the", "and", "of", "to", "model", "weight", "tensor", "quant", "llama", "Ünïcödé"]
    lines = []
    for _ in range(3000):
        n = rng.randint(4, 16)
        s = " ".join(rng.choice(words) for _ in range(n))
        if rng.random() < 0.3:
            s += f" {rng.randint(0, 99999)}"
        lines.append(s.capitalize() + rng.choice([".", "!", "?", ","]))
    return lines


def train_tokenizer(dir_, rng):
    import sentencepiece as spm

    model = dir_ / "spm.model"
    with open(model, "wb") as f:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(corpus(rng)),
            model_writer=f,
            model_type="bpe",
            vocab_size=VOCAB_PIECES,
            byte_fallback=True,
            character_coverage=1.0,
            split_digits=True,
            normalization_rule_name="identity",  # as Llama's tokenizer.model
            user_defined_symbols=["<sep>"],
            control_symbols=["<ctrl>"],
            unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
            num_threads=1,
            minloglevel=2,
        )
    sp = spm.SentencePieceProcessor(model_file=str(model))
    assert sp.vocab_size() == VOCAB_PIECES, sp.vocab_size()
    return model


def write_spm_fixture(dir_):
    """The Rust unit tests' oracle: a tokenizer.model trained here and its pieces as the
    protobuf library itself decodes them (sentencepiece's own sentencepiece_model_pb2)."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    dir_ = Path(dir_)
    dir_.mkdir(parents=True, exist_ok=True)
    model = train_tokenizer(dir_, random.Random(SEED))
    target = dir_ / "llama-bpe.model"
    model.replace(target)
    m = pb.ModelProto()
    m.ParseFromString(target.read_bytes())
    pieces = [[p.piece, float(np.float32(p.score)), int(p.type)] for p in m.pieces]
    (dir_ / "llama-bpe.pieces.json").write_text(json.dumps(pieces, ensure_ascii=False) + "\n")
    print(f"wrote {target} ({target.stat().st_size} bytes, {len(pieces)} pieces)")


def make_checkpoint(work):
    """A random Llama in bf16 with its tokenizer; returns (dense_dir, tokenizer_files)."""
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaTokenizerFast

    rng = random.Random(SEED)
    torch.manual_seed(SEED)
    tokdir = work / "tokenizer"
    tokdir.mkdir()
    spm_model = train_tokenizer(tokdir, rng)
    tok = LlamaTokenizerFast(vocab_file=str(spm_model), legacy=True, from_slow=True,
                             add_bos_token=True, add_eos_token=False)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_end|>"]})
    tok.add_tokens(["<think>"])
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}<|im_end|>{% endfor %}"
    tok.save_pretrained(tokdir / "saved")
    tok_files = sorted((tokdir / "saved").iterdir())
    names = [p.name for p in tok_files]
    assert "tokenizer.model" in names and "tokenizer.json" in names, names

    cfg = LlamaConfig(
        vocab_size=VOCAB_SIZE, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
        bos_token_id=1, eos_token_id=2,
    )
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:  # not all ones: norms must be carried, not assumed
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    model = model.to(torch.bfloat16)
    dense = work / "dense"
    model.save_pretrained(dense)
    return dense, tok_files


# -- 2. NF4 with bitsandbytes ----------------------------------------------------------------


def quantize_nf4(dense, tok_files, work):
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    q = AutoModelForCausalLM.from_pretrained(
        dense,
        quantization_config=BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        ),
        device_map="cpu", dtype=torch.bfloat16,
    )
    nf4 = work / "nf4"
    q.save_pretrained(nf4)
    for f in tok_files:
        shutil.copy(f, nf4 / f.name)
    return nf4


def load_st(path):
    from safetensors.torch import load_file

    out = {}
    for f in sorted(Path(path).glob("*.safetensors")):
        out.update(load_file(f))
    return out


def bnb_dequantize(nf4):
    """bitsandbytes' own dequantization of every NF4 weight of the saved checkpoint."""
    import bitsandbytes.functional as F

    raw = load_st(nf4)
    marker = ".quant_state.bitsandbytes__nf4"
    bases = sorted(k[: -len(marker)] for k in raw if k.endswith(marker))
    assert len(bases) == 14, bases  # 7 linear layers x 2 blocks; lm_head stays dense
    deq = {}
    for base in bases:
        parts = {k[len(base) + 1:]: v for k, v in raw.items() if k.startswith(base + ".")}
        assert parts.keys() >= {"absmax", "quant_map", "nested_absmax", "nested_quant_map"}, parts.keys()
        qs = F.QuantState.from_dict(parts, device=torch.device("cpu"))
        assert qs.quant_type == "nf4" and qs.nested, base
        deq[base] = F.dequantize_4bit(raw[base], qs)
    artifacts = {k for k in raw if any(k.startswith(b + ".") for b in bases)}
    dense = {k: v for k, v in raw.items() if k not in deq and k not in artifacts}
    return deq, dense


# -- 3. quantdoc repair ----------------------------------------------------------------------


def bits(t):
    """The exact bit pattern of a tensor, for comparisons where NaN and -0.0 matter."""
    return t.contiguous().view(torch.int16 if t.element_size() == 2 else torch.int32)


def check_repair(quantdoc, nf4, work, deq, dense):
    out = work / "repaired"
    said = run([quantdoc, "repair", nf4, "-o", out])
    assert "verified" in said, said
    got = load_st(out)
    assert set(got) == set(deq) | set(dense), sorted(set(got) ^ (set(deq) | set(dense)))
    for name, want in deq.items():
        g = got[name]
        assert g.dtype == want.dtype, (name, g.dtype, want.dtype)
        assert g.shape == want.shape, (name, g.shape, want.shape)
        assert torch.equal(bits(g), bits(want)), f"{name}: differs from bnb.dequantize_4bit"
    for name, want in dense.items():
        assert torch.equal(bits(got[name]), bits(want)) and got[name].dtype == want.dtype, name
    cfg = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in cfg, cfg
    for f in ["tokenizer.model", "tokenizer.json", "tokenizer_config.json"]:
        assert (out / f).read_bytes() == (nf4 / f).read_bytes(), f
    ok(f"quantdoc repair: {len(deq)} NF4 (double-quant) weights equal bitsandbytes' "
       f"dequantize_4bit bit for bit ({next(iter(deq.values())).dtype}), "
       f"{len(dense)} other tensors unchanged, no quantization artifact or config left")
    return out


# -- 4./5. GGUF comparisons ------------------------------------------------------------------


def read_gguf(path):
    from gguf import GGUFReader, GGUFValueType

    r = GGUFReader(path)
    meta = {}
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        types = [GGUFValueType(t).name for t in field.types]
        if field.types and field.types[0] == GGUFValueType.ARRAY:
            value = [field.contents(i) for i in range(len(field.data))]
        else:
            value = field.contents()
        meta[name] = (types, value)
    tensors = {}
    for t in r.tensors:
        tensors[t.name] = {
            "type": t.tensor_type.name,
            "shape": [int(d) for d in t.shape],
            "data": np.array(t.data),
        }
    return meta, tensors


def expected_names():
    names = {"token_embd.weight", "output_norm.weight", "output.weight"}
    for b in range(2):
        names |= {f"blk.{b}.{t}.weight" for t in EXPECTED_BLOCK}
    return names


def same_value(a, b):
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return np.float32(a).tobytes() == np.float32(b).tobytes()
    return a == b


def compare_metadata(ours, ref, outtype):
    def chosen(m):
        return {k: v for k, v in m.items()
                if k.startswith(("tokenizer.", "llama.")) or k in ("general.architecture", "general.file_type")}

    o, r = chosen(ours), chosen(ref)
    missing, extra = sorted(set(r) - set(o)), sorted(set(o) - set(r))
    assert not missing and not extra, f"{outtype}: keys only in llama.cpp's {missing}, only in quantdoc's {extra}"
    for k in sorted(r):
        assert o[k][0] == r[k][0], f"{outtype}: {k} types {o[k][0]} vs llama.cpp {r[k][0]}"
        if not same_value(o[k][1], r[k][1]):
            ov, rv = o[k][1], r[k][1]
            if isinstance(rv, list):
                i = next(i for i, (x, y) in enumerate(zip(ov, rv)) if not same_value(x, y)) if len(ov) == len(rv) else None
                raise AssertionError(f"{outtype}: {k} differs (len {len(ov)} vs {len(rv)}, first at {i}: "
                                     f"{ov[i] if i is not None else ''!r} vs {rv[i] if i is not None else ''!r})")
            raise AssertionError(f"{outtype}: {k} = {ov!r}, llama.cpp wrote {rv!r}")
    tok = r["tokenizer.ggml.tokens"][1]
    types = r["tokenizer.ggml.token_type"][1]
    return len([k for k in r if k.startswith("tokenizer.")]), len([k for k in r if k.startswith("llama.")]), len(tok), sorted(set(types))


def compare_tensors(ours, ref, outtype):
    """Names, shapes, types, and values bit for bit: quantdoc decodes NF4 to the bf16
    bitsandbytes returns, as llama.cpp reads them from the repaired checkpoint, and both
    round those values the same way (to F16 round-to-nearest-even; F32 exactly)."""
    assert set(ours) == set(ref) == expected_names(), (sorted(ours), sorted(ref))
    for name in sorted(ref):
        o, r = ours[name], ref[name]
        assert o["shape"] == r["shape"], f"{outtype}: {name} shape {o['shape']} vs {r['shape']}"
        assert o["type"] == r["type"], f"{outtype}: {name} type {o['type']} vs llama.cpp {r['type']}"
        ob, rb = o["data"].tobytes(), r["data"].tobytes()
        if ob != rb:
            ov = o["data"].astype(np.float32).ravel()
            rv = r["data"].astype(np.float32).ravel()
            i = int(np.flatnonzero(ov.view(np.uint32) != rv.view(np.uint32))[0])
            raise AssertionError(f"{outtype}: {name} value {i}: quantdoc {ov[i]!r}, llama.cpp {rv[i]!r}")


def check_convert(quantdoc, convert_py, nf4, repaired, work):
    for outtype in ["f32", "f16"]:
        ref_path = work / f"llama-cpp-{outtype}.gguf"
        run([sys.executable, convert_py, repaired, "--outfile", ref_path, "--outtype", outtype])
        ref_meta, ref_t = read_gguf(ref_path)
        assert set(ref_t) == expected_names(), sorted(ref_t)
        ok(f"convert_hf_to_gguf.py accepted quantdoc's repaired checkpoint (--outtype {outtype}): "
           f"{len(ref_t)} tensors with the expected names, read back by gguf-py")

        ours_path = work / f"quantdoc-{outtype}.gguf"
        said = run([quantdoc, "convert", nf4, "-o", ours_path, "--outtype", outtype])
        assert "verified" in said, said
        our_meta, our_t = read_gguf(ours_path)
        n_tok, n_arch, n_vocab, types = compare_metadata(our_meta, ref_meta, outtype)
        compare_tensors(our_t, ref_t, outtype)
        ok(f"quantdoc convert of the NF4 checkpoint (--outtype {outtype}) = convert_hf_to_gguf.py's GGUF: "
           f"{len(our_t)} tensor names/shapes/types; {n_tok} tokenizer.* keys (vocabulary of {n_vocab}, "
           f"token types {types}) and {n_arch} llama.* keys with equal types and values; "
           f"every tensor's data bit-equal")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spm-fixture", metavar="DIR",
                    help="only write the SentencePiece fixture of the Rust tests into DIR")
    ap.add_argument("--quantdoc")
    ap.add_argument("--convert")
    ap.add_argument("--work")
    a = ap.parse_args()
    if a.spm_fixture:
        write_spm_fixture(a.spm_fixture)
        return
    if not (a.quantdoc and a.convert and a.work):
        ap.error("--quantdoc, --convert and --work are required")
    # Read GGUFs with the gguf-py that ships with this convert_hf_to_gguf.py.
    sys.path.insert(0, str(Path(a.convert).parent / "gguf-py"))
    work = Path(a.work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    # bitsandbytes warns at import that an optional CPU matmul kernel package is missing;
    # the check only quantizes and dequantizes.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    import bitsandbytes
    import transformers

    print(f"torch {torch.__version__}, bitsandbytes {bitsandbytes.__version__}, "
          f"transformers {transformers.__version__}", flush=True)
    dense, tok_files = make_checkpoint(work)
    nf4 = quantize_nf4(dense, tok_files, work)
    deq, dense_t = bnb_dequantize(nf4)
    ok(f"made a random Llama (2 blocks, hidden 128) with a SentencePiece tokenizer trained by "
       f"sentencepiece, quantized to NF4 with double quantization by bitsandbytes {bitsandbytes.__version__}")
    repaired = check_repair(a.quantdoc, nf4, work, deq, dense_t)
    check_convert(a.quantdoc, a.convert, nf4, repaired, work)
    shutil.rmtree(work)
    print("llama.cpp acceptance check passed", flush=True)


if __name__ == "__main__":
    main()
