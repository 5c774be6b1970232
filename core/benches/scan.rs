//! Scan benchmark: full statistics of a generated ~2 GiB mixed GGUF (Q4_K, Q6_K, Q8_0, F16)
//! with 1 and 2 threads, next to a plain sequential read of the same file and
//! `cat FILE > /dev/null`.
//!
//!   cargo bench -p quantdoc-core --features parallel --bench scan
//!
//! The file is generated once into `$QUANTDOC_CACHE` (default: `.cache/` in the checkout)
//! as `bench-scan-mixed-v2.gguf`; `QUANTDOC_SCAN_LAYERS` changes its size (13 layers ≈ 1.9 GiB).
//! Each figure is the median of `QUANTDOC_BENCH_RUNS` (default 3) runs after a warm-up.
//! `QUANTDOC_SCAN_PER_TYPE=1` instead times one tensor per type on one thread in CPU time
//! (see `per_type`).
//!
//! This is a plain harness (not criterion): one run takes about a second and criterion's
//! sampling would take minutes for no extra precision on a shared machine.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use half::f16;
use memmap2::Mmap;
use quantdoc_core::ggml::types::GgmlType;
use quantdoc_core::load::{load, Input};
use quantdoc_core::scan::{scan_model, ScanOptions};
use quantdoc_core::source::{ByteSource, SliceSource, SourceError};
use quantdoc_core::write::{
    self,
    gguf::{entry_str, entry_u32, GgufPlan, TensorEntry},
    WriteError,
};

const VOCAB: u64 = 32000;
const DIM: u64 = 4096;
const FFN: u64 = 11008;
const ALIGN: u64 = 32;

struct MapSource(Mmap);

impl ByteSource for MapSource {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        let b = self
            .borrow_at(offset, buf.len())
            .ok_or(SourceError::OutOfRange {
                offset,
                len: buf.len() as u64,
                size: self.len(),
            })?;
        buf.copy_from_slice(b);
        Ok(())
    }
    fn borrow_at(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let s = usize::try_from(offset).ok()?;
        self.0.get(s..s.checked_add(len)?)
    }
}

/// xorshift64*: fast, deterministic filler.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn fill(&mut self, b: &mut [u8]) {
        for c in b.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
    /// A finite f16 scale in [2^-12, 2^-8): what real weight blocks have.
    fn scale(&mut self) -> [u8; 2] {
        let v = (self.next() >> 40) as f32 / (1u64 << 24) as f32;
        f16::from_f32((1.0 + v) * 2f32.powi(-12 + (self.next() % 4) as i32)).to_le_bytes()
    }
}

/// Random blocks of `ty` whose scale fields are valid (random bytes there would make NaNs).
fn fill_blocks(ty: GgmlType, out: &mut [u8], rng: &mut Rng) {
    rng.fill(out);
    let ts = ty.type_size() as usize;
    match ty {
        GgmlType::F16 => {
            for c in out.chunks_exact_mut(2) {
                let v = ((rng.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0) * 0.05;
                c.copy_from_slice(&f16::from_f32(v).to_le_bytes());
            }
        }
        GgmlType::Q8_0 => out
            .chunks_exact_mut(ts)
            .for_each(|b| b[0..2].copy_from_slice(&rng.scale())),
        GgmlType::Q4_K => out.chunks_exact_mut(ts).for_each(|b| {
            b[0..2].copy_from_slice(&rng.scale());
            b[2..4].copy_from_slice(&rng.scale());
        }),
        GgmlType::Q6_K => out
            .chunks_exact_mut(ts)
            .for_each(|b| b[208..210].copy_from_slice(&rng.scale())),
        _ => unreachable!("generator has no {ty}"),
    }
}

/// (name, logical shape [rows, cols], type)
fn layout(layers: u64) -> Vec<(String, [u64; 2], GgmlType)> {
    let mut v = vec![(
        "token_embd.weight".to_string(),
        [VOCAB, DIM],
        GgmlType::Q4_K,
    )];
    for i in 0..layers {
        let p = format!("blk.{i}.");
        v.push((p.clone() + "attn_q.weight", [DIM, DIM], GgmlType::Q4_K));
        v.push((p.clone() + "attn_k.weight", [DIM, DIM], GgmlType::Q4_K));
        v.push((p.clone() + "attn_v.weight", [DIM, DIM], GgmlType::Q8_0));
        v.push((p.clone() + "attn_output.weight", [DIM, DIM], GgmlType::Q4_K));
        v.push((p.clone() + "ffn_gate.weight", [FFN, DIM], GgmlType::Q4_K));
        v.push((p.clone() + "ffn_up.weight", [FFN, DIM], GgmlType::Q4_K));
        v.push((p + "ffn_down.weight", [DIM, FFN], GgmlType::Q6_K));
    }
    v.push(("output.weight".to_string(), [VOCAB, DIM], GgmlType::F16));
    v
}

fn generate(path: &Path, layers: u64) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut w = BufWriter::with_capacity(8 << 20, File::create(&tmp)?);
    write_gguf(&mut w, &layout(layers), layers).map_err(std::io::Error::other)?;
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, path)
}

/// A GGUF of `tensors` filled with random valid blocks (the bench file's generator), written
/// with the core's own GGUF writer.
fn write_gguf(
    w: &mut impl Write,
    tensors: &[(String, [u64; 2], GgmlType)],
    layers: u64,
) -> Result<(), WriteError> {
    let metadata = [
        entry_str("general.architecture", "llama"),
        entry_u32("llama.block_count", layers as u32),
        entry_u32("general.alignment", ALIGN as u32),
    ];
    let entries: Vec<TensorEntry> = tensors
        .iter()
        .map(|(name, shape, ty)| TensorEntry::new(name.as_str(), shape, *ty))
        .collect();
    let plan = GgufPlan::new(3, &metadata, &entries)?;
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut buf = Vec::new();
    write::gguf::write_gguf(&plan, w, |i, t, out| {
        let ty = t.ggml_type;
        let mut left = plan.nbytes(i);
        // Whole blocks per write, ~8 MiB at a time.
        let step = (8 << 20) / ty.type_size() * ty.type_size();
        while left > 0 {
            let len = left.min(step) as usize;
            buf.resize(len, 0);
            fill_blocks(ty, &mut buf, &mut rng);
            out.write_data(&buf)?;
            left -= len as u64;
        }
        Ok(())
    })?;
    Ok(())
}

fn cache_dir() -> PathBuf {
    std::env::var_os("QUANTDOC_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache"))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time_runs(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

/// CPU time of the calling thread.
#[cfg(unix)]
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Without a thread CPU clock, wall time stands in.
#[cfg(not(unix))]
fn thread_cpu() -> Duration {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// `QUANTDOC_SCAN_PER_TYPE=1`: the full-statistics scan of one tensor per type (random valid
/// blocks, rows of 4096, `QUANTDOC_SCAN_PER_TYPE_VALUES` values, default 32 Mi) on one
/// thread, timed by that thread's CPU clock: the machine is shared and noisy, and CPU time
/// (min of `QUANTDOC_BENCH_RUNS`, default 7, after a warm-up) is what one core costs.
/// `QUANTDOC_BENCH_TYPES` (comma-separated type names) restricts the types.
/// Block types with a code-domain path are also run with `ScanOptions::from_codes` off.
fn per_type() {
    let values: u64 = std::env::var("QUANTDOC_SCAN_PER_TYPE_VALUES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32 << 20);
    let runs: usize = std::env::var("QUANTDOC_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
        .max(1);
    let rows = (values / DIM).max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    println!(
        "one thread, {} values per type (rows of {DIM}), min of {runs} runs after a warm-up",
        rows * DIM
    );
    println!(
        "{:<16} {:>10} {:>16} {:>10} {:>12}",
        "type", "CPU s", "G values/CPU-s", "wall s", "G values/s"
    );
    // `QUANTDOC_BENCH_TYPES=Q4_K,F16` times only these (e.g. under a profiler).
    let only = std::env::var("QUANTDOC_BENCH_TYPES").ok();
    for ty in [
        GgmlType::Q4_K,
        GgmlType::Q6_K,
        GgmlType::Q8_0,
        GgmlType::F16,
    ] {
        if only
            .as_ref()
            .is_some_and(|o| !o.split(',').any(|t| t == ty.name()))
        {
            continue;
        }
        let mut bytes = Vec::new();
        write_gguf(&mut bytes, &[("t.weight".to_string(), [rows, DIM], ty)], 1).unwrap();
        let src = SliceSource::new(bytes);
        let model = load(&[Input {
            path: format!("{ty}.gguf"),
            source: &src,
        }])
        .expect("load the generated tensor");
        let n = model.parameter_count() as f64;
        for (label, opts) in variants(ty) {
            // `QUANTDOC_SCAN_DECODE=0` skips the decode-path rows (e.g. under a profiler).
            if label == " (decode)" && std::env::var("QUANTDOC_SCAN_DECODE").is_ok_and(|v| v == "0")
            {
                continue;
            }
            let mut best_cpu = Duration::MAX;
            let mut best_wall = Duration::MAX;
            for run in 0..=runs {
                let (cpu, wall) = pool.install(|| {
                    let (c, w) = (thread_cpu(), Instant::now());
                    let r =
                        scan_model(&model, &[&src], &opts, &mut |_| {}, &AtomicBool::new(false))
                            .unwrap();
                    let d = (thread_cpu() - c, w.elapsed());
                    assert!(r.tensors[0].stats.is_some(), "tensor scanned");
                    std::hint::black_box(r);
                    d
                });
                if run > 0 {
                    best_cpu = best_cpu.min(cpu);
                    best_wall = best_wall.min(wall);
                }
            }
            println!(
                "{:<16} {:>10.4} {:>16.3} {:>10.4} {:>12.3}",
                format!("{ty}{label}"),
                best_cpu.as_secs_f64(),
                n / best_cpu.as_secs_f64() / 1e9,
                best_wall.as_secs_f64(),
                n / best_wall.as_secs_f64() / 1e9
            );
        }
    }
}

/// Scan options to time for `ty`: the default, and the decode path where a code-domain
/// path exists.
fn variants(ty: GgmlType) -> Vec<(&'static str, ScanOptions)> {
    let mut v = vec![("", ScanOptions::default())];
    if quantdoc_core::stats::codes::supported(ty) {
        v[0].0 = " (codes)";
        v.push((
            " (decode)",
            ScanOptions {
                from_codes: false,
                ..ScanOptions::default()
            },
        ));
    }
    v
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: only run for real.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if std::env::var("QUANTDOC_SCAN_PER_TYPE").is_ok_and(|v| v == "1") {
        per_type();
        return;
    }
    let layers: u64 = std::env::var("QUANTDOC_SCAN_LAYERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(13);
    let runs: usize = std::env::var("QUANTDOC_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).expect("create cache dir");
    let path = dir.join(if layers == 13 {
        "bench-scan-mixed-v2.gguf".to_string()
    } else {
        format!("bench-scan-mixed-v2-{layers}.gguf")
    });
    if !path.is_file() {
        let t = Instant::now();
        generate(&path, layers).expect("generate the bench file");
        eprintln!(
            "generated {} in {:.1} s",
            path.display(),
            t.elapsed().as_secs_f64()
        );
    }
    let size = std::fs::metadata(&path).unwrap().len();

    let cat = time_runs(runs, || {
        let st = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("cat '{}' > /dev/null", path.display()))
            .status()
            .expect("run cat");
        assert!(st.success());
    });

    let mut sink = 0u64;
    let read = time_runs(runs, || {
        let mut f = File::open(&path).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            // Touch every byte so the read cannot be skipped.
            sink ^= buf[..n]
                .chunks_exact(8)
                .fold(0u64, |a, c| a ^ u64::from_le_bytes(c.try_into().unwrap()));
        }
    });

    let file = File::open(&path).unwrap();
    // SAFETY: a read-only map of a file this benchmark owns.
    let map = unsafe { Mmap::map(&file) }.expect("mmap");
    let src = MapSource(map);
    let model = load(&[Input {
        path: path.display().to_string(),
        source: &src,
    }])
    .expect("load the bench file");
    let values = model.parameter_count();
    let opts = ScanOptions::default();
    let scan_with = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        time_runs(runs, || {
            let r = pool
                .install(|| {
                    scan_model(&model, &[&src], &opts, &mut |_| {}, &AtomicBool::new(false))
                })
                .unwrap();
            assert!(
                r.tensors.iter().all(|t| t.stats.is_some()),
                "every tensor scanned"
            );
        })
    };
    let scan1 = scan_with(1);
    let scan2 = scan_with(2);

    let gbs = |d: Duration| size as f64 / d.as_secs_f64() / 1e9;
    let gvs = |d: Duration| values as f64 / d.as_secs_f64() / 1e9;
    println!(
        "file: {} ({} bytes = {:.2} GiB, {} tensors, {:.3} G values), median of {runs} runs",
        path.display(),
        size,
        size as f64 / (1u64 << 30) as f64,
        model.tensors.len(),
        values as f64 / 1e9
    );
    println!(
        "{:<38} {:>9} {:>9} {:>12}",
        "measure", "seconds", "GB/s", "G values/s"
    );
    println!(
        "{:<38} {:>9.3} {:>9.2} {:>12}",
        "cat FILE > /dev/null",
        cat.as_secs_f64(),
        gbs(cat),
        "-"
    );
    println!(
        "{:<38} {:>9.3} {:>9.2} {:>12}",
        "read() 1 MiB buffer + touch",
        read.as_secs_f64(),
        gbs(read),
        "-"
    );
    for (name, d) in [
        ("scan, full statistics, 1 thread", scan1),
        ("scan, full statistics, 2 threads", scan2),
    ] {
        println!(
            "{:<38} {:>9.3} {:>9.2} {:>12.2}",
            name,
            d.as_secs_f64(),
            gbs(d),
            gvs(d)
        );
    }
    std::hint::black_box(sink);
}
