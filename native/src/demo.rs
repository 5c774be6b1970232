//! `quantdoc demo`: make a small healthy GGUF and broken variants of it, then check them,
//! so a newcomer sees real findings without downloading a model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use half::f16;
use quantdoc_core::gguf::rawbuilder::{RawGgufBuilder, RawValue};
use quantdoc_core::meta::GgufValueType;

const F32: u32 = 0;
const F16: u32 = 1;
const Q4_0: u32 = 2;
const Q8_0: u32 = 8;

/// A temporary name next to `out`, so the final rename stays on one file system.
pub fn temp_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    out.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Deterministic pseudo-random normals (xorshift + Box–Muller), so the demo is reproducible.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 + 0.5) / (1u64 << 24) as f32
    }
    fn normal(&mut self, std: f32) -> f32 {
        let (u, v) = (self.next_f32(), self.next_f32());
        std * (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

fn q8_0(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for block in values.chunks(32) {
        let amax = block.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        out.extend(block.iter().map(|v| (v * id).round() as i8 as u8));
    }
    out
}

/// Q4_0 blocks; with `with_scale = false` the f16 scale is left out (the seed's broken file).
fn q4_0(values: &[f32], with_scale: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for block in values.chunks(32) {
        let max = block
            .iter()
            .fold(0f32, |a, &v| if v.abs() > a.abs() { v } else { a });
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        if with_scale {
            out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        }
        let q = |v: f32| ((v * id + 8.5) as i32).clamp(0, 15) as u8;
        for j in 0..16 {
            out.push(q(block[j]) | (q(block[j + 16]) << 4));
        }
    }
    out
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter()
        .flat_map(|x| f16::from_f32(*x).to_le_bytes())
        .collect()
}

const HIDDEN: u64 = 64;
const FFN: u64 = 128;
const VOCAB: u64 = 32;
const LAYERS: u64 = 2;

/// A tiny llama-shaped model. `broken` picks a defect to plant.
fn model(broken: Option<&str>) -> RawGgufBuilder {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut normal = |n: u64, std: f32| (0..n).map(|_| rng.normal(std)).collect::<Vec<f32>>();
    let tokens: Vec<RawValue> = (0..VOCAB)
        .map(|i| RawValue::Str(format!("tok{i}")))
        .collect();
    let mut b = RawGgufBuilder::new()
        .kv("general.architecture", RawValue::Str("llama".into()))
        .kv("general.name", RawValue::Str("quantdoc demo".into()))
        .kv("llama.block_count", RawValue::U32(LAYERS as u32))
        .kv("llama.embedding_length", RawValue::U32(HIDDEN as u32))
        .kv("llama.feed_forward_length", RawValue::U32(FFN as u32))
        .kv("llama.attention.head_count", RawValue::U32(4))
        .kv("llama.context_length", RawValue::U32(128))
        .kv("tokenizer.ggml.model", RawValue::Str("llama".into()))
        .kv(
            "tokenizer.ggml.tokens",
            RawValue::Array(GgufValueType::String, tokens),
        )
        .tensor(
            "token_embd.weight",
            &[VOCAB, HIDDEN],
            F16,
            f16_bytes(&normal(VOCAB * HIDDEN, 0.02)),
        );
    for l in 0..LAYERS {
        let norm: Vec<f32> = (0..HIDDEN).map(|i| 1.0 + 0.01 * (i % 7) as f32).collect();
        b = b
            .tensor(
                &format!("blk.{l}.attn_norm.weight"),
                &[HIDDEN],
                F32,
                f32_bytes(&norm),
            )
            .tensor(
                &format!("blk.{l}.attn_q.weight"),
                &[HIDDEN, HIDDEN],
                Q8_0,
                q8_0(&normal(HIDDEN * HIDDEN, 0.05)),
            )
            .tensor(
                &format!("blk.{l}.ffn_norm.weight"),
                &[HIDDEN],
                F32,
                f32_bytes(&norm),
            )
            .tensor(
                &format!("blk.{l}.ffn_down.weight"),
                &[HIDDEN, FFN],
                Q4_0,
                q4_0(&normal(HIDDEN * FFN, 0.05), true),
            );
    }
    b = b.tensor(
        "output_norm.weight",
        &[HIDDEN],
        F32,
        f32_bytes(&vec![1.0; HIDDEN as usize]),
    );
    match broken {
        Some("q4_0-no-scales") => {
            // Re-write one Q4_0 tensor the way the seed's converter did: codes without scales,
            // laid out densely so every later tensor moves up.
            let i = b
                .tensors
                .iter()
                .position(|t| t.name == "blk.1.ffn_down.weight")
                .unwrap();
            b.tensors[i].data = q4_0(&normal(HIDDEN * FFN, 0.05), false);
        }
        Some("quantized-norm") => {
            let i = b
                .tensors
                .iter()
                .position(|t| t.name == "blk.0.attn_norm.weight")
                .unwrap();
            b.tensors[i].type_id = Q8_0;
            b.tensors[i].data = q8_0(&vec![0.018; HIDDEN as usize]);
        }
        _ => {}
    }
    b
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    std::fs::write(&tmp, bytes).with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))
}

pub fn run(dir: &Path) -> Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let healthy = model(None).build();
    let mut truncated = healthy.clone();
    truncated.truncate(healthy.len() - 1000);
    let files = [
        ("healthy.gguf", healthy.clone()),
        (
            "broken-q4_0-no-scales.gguf",
            model(Some("q4_0-no-scales")).build(),
        ),
        (
            "broken-quantized-norm.gguf",
            model(Some("quantized-norm")).build(),
        ),
        ("broken-truncated.gguf", truncated),
    ];
    let exe = std::env::current_exe()?;
    for (name, bytes) in &files {
        let path = dir.join(name);
        write(&path, bytes)?;
        println!("\n$ quantdoc check {}", path.display());
        let status = std::process::Command::new(&exe)
            .arg("check")
            .arg(&path)
            .status()
            .context("running quantdoc check")?;
        println!("(exit status {})", status.code().unwrap_or(-1));
    }
    println!(
        "\nDemo files are in {}. Try `quantdoc inspect {}`.",
        dir.display(),
        dir.join("healthy.gguf").display()
    );
    Ok(ExitCode::SUCCESS)
}
