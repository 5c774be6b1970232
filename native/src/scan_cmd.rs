//! The deep scan on the command line: a rayon pool of `--threads` threads over the mapped
//! files, a progress bar on a terminal, the statistics table and the health findings.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use quantdoc_core::finding::Finding;
use quantdoc_core::model::Model;
use quantdoc_core::report::Report;
use quantdoc_core::rules::health;
use quantdoc_core::scan::{scan_model, ScanOptions, ScanProgress, ScanResult};
use quantdoc_core::source::ByteSource;
use quantdoc_core::stats::TensorStats;

use crate::human;
use crate::open::open_model;
use crate::style::Style;

/// A finished scan with what it cost.
pub struct ScanRun {
    pub result: ScanResult,
    pub elapsed: Duration,
    /// Bytes of tensor data read.
    pub bytes: u64,
    pub threads: usize,
}

/// Whether to draw a progress bar: only for people (stderr is a terminal), never with JSON.
pub fn progress_wanted(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// Scan every tensor of `model` on `threads` threads (default: all cores).
/// `sources[i]` backs `model.files[i]`.
pub fn run_scan<S: ByteSource + Sync + ?Sized>(
    model: &Model,
    sources: &[&S],
    threads: Option<usize>,
    show_progress: bool,
) -> Result<ScanRun> {
    let threads = threads
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start the scan threads")?;
    let bar = show_progress.then(|| {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} scanning [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .expect("valid progress template")
            .progress_chars("=> "),
        );
        b
    });
    let mut on_progress = |p: ScanProgress| {
        if let Some(b) = &bar {
            b.set_length(p.bytes_total);
            b.set_position(p.bytes_done);
        }
    };
    let cancel = AtomicBool::new(false);
    let start = Instant::now();
    let options = ScanOptions::default();
    let result = pool.install(|| scan_model(model, sources, &options, &mut on_progress, &cancel));
    let elapsed = start.elapsed();
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let result = result.map_err(|e| anyhow::anyhow!("{e}"))?;
    let bytes = quantdoc_core::scan::plan(model, &options).total_bytes;
    Ok(ScanRun {
        result,
        elapsed,
        bytes,
        threads,
    })
}

/// Findings of the health rules over a scan (the header rules run separately).
pub fn health_findings(model: &Model, result: &ScanResult) -> Vec<Finding> {
    health::check(model, result)
}

/// Put every tensor's statistics (or why it has none) into `report.stats`, keyed by name.
pub fn attach_stats(report: &mut Report, result: &ScanResult) -> Result<()> {
    for t in &result.tensors {
        let v = match (&t.stats, &t.error) {
            (Some(s), _) => serde_json::to_value(s)?,
            (None, e) => serde_json::json!({ "error": e.clone().unwrap_or_default() }),
        };
        report.stats.insert(t.name.clone(), v);
    }
    Ok(())
}

/// A number in at most `w` characters: five significant digits, or scientific notation.
fn num(x: Option<f64>, w: usize) -> String {
    let Some(x) = x else { return "-".into() };
    if x == 0.0 {
        return "0".into();
    }
    let a = x.abs();
    if (1e-3..1e5).contains(&a) {
        let decimals = (4 - a.log10().floor() as i32).clamp(0, 6) as usize;
        let plain = format!("{x:.decimals$}");
        if plain.len() <= w {
            return plain;
        }
    }
    format!("{x:.2e}")
}

fn shorten(name: &str, w: usize) -> String {
    let n = name.chars().count();
    if n <= w {
        name.to_string()
    } else {
        let tail: String = name.chars().skip(n - (w - 1)).collect();
        format!("…{tail}")
    }
}

fn bad_cell(s: &TensorStats) -> String {
    let bad_scales = s.scales.as_ref().map_or(0, |sc| sc.nan + sc.inf);
    match (s.nan + s.inf, bad_scales) {
        (0, 0) => "-".into(),
        (v, 0) => human::count(v),
        (v, sc) => format!("{}/{}s", human::count(v), human::count(sc)),
    }
}

/// The statistics table, 80 columns wide: one line per tensor.
pub fn stats_table(model: &Model, result: &ScanResult, st: Style) -> String {
    let mut out = String::new();
    out.push_str(&st.bold(&format!(
        "{:<27} {:<7} {:>9} {:>9} {:>9} {:>6} {:>6}",
        "tensor", "type", "rms", "abs max", "row rms~", "zero%", "bad"
    )));
    out.push('\n');
    let mut failed = Vec::new();
    for (t, scan) in model.tensors.iter().zip(&result.tensors) {
        let name = shorten(&t.name, 27);
        let ty = shorten(&t.encoding.label(), 7);
        match &scan.stats {
            Some(s) => {
                let zero = if s.elements == 0 {
                    "-".into()
                } else {
                    format!("{:.1}", s.zero_fraction * 100.0)
                };
                let line = format!(
                    "{name:<27} {ty:<7} {:>9} {:>9} {:>9} {:>6} {:>6}",
                    num(s.rms, 9),
                    num(s.abs_max.map(f64::from), 9),
                    num(s.rows.as_ref().map(|r| r.median as f64), 9),
                    zero,
                    bad_cell(s)
                );
                out.push_str(&if s.nan + s.inf > 0 {
                    st.red(&line)
                } else {
                    line
                });
            }
            None => {
                out.push_str(&st.dim(&format!("{name:<27} {ty:<7} {:>9}", "not scanned")));
                failed.push((&t.name, scan.error.clone().unwrap_or_default()));
            }
        }
        out.push('\n');
    }
    out.push_str(
        &st.dim("row rms~: median RMS over rows; bad: NaN/Inf values (/ bad block scales)"),
    );
    out.push('\n');
    for (name, why) in failed {
        out.push_str(&human::wrap(
            &format!("{name}: not scanned: {why}"),
            "  ",
            80,
        ));
    }
    out
}

/// `quantdoc scan PATH [--json] [--threads N]`: header rules, the deep scan, the health
/// rules. Exit status as `check`: 1 when any finding is an error.
pub fn run(path: &Path, json: bool, threads: Option<usize>) -> Result<ExitCode> {
    let opened = open_model(path)?;
    let sources = opened.sources();
    let mut report = opened.header_report()?;
    let run = run_scan(&opened.model, &sources, threads, progress_wanted(json))?;
    let mut findings = report.findings.clone();
    findings.extend(health_findings(&opened.model, &run.result));
    report.set_findings(findings);
    if json {
        attach_stats(&mut report, &run.result)?;
        opened.print_json(&report)?;
    } else {
        let st = Style::for_stdout();
        print!("{}", human::summary(&report, &opened.model, st));
        println!();
        print!("{}", stats_table(&opened.model, &run.result, st));
        let secs = run.elapsed.as_secs_f64().max(1e-9);
        println!(
            "{}",
            st.dim(&format!(
                "scanned {} in {:.2} s ({:.2} GB/s, {:.2} G values/s, {} threads)",
                human::size(run.bytes),
                secs,
                run.bytes as f64 / secs / 1e9,
                opened.model.parameter_count() as f64 / secs / 1e9,
                run.threads
            ))
        );
        println!();
        print!("{}", human::findings(&report.findings, st));
    }
    Ok(if report.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_fit_their_columns() {
        assert_eq!(num(Some(0.04123), 9), "0.041230");
        assert_eq!(num(Some(380.25), 9), "380.25");
        assert_eq!(num(Some(2.5), 9), "2.5000");
        assert_eq!(num(Some(123456.0), 9), "1.23e5");
        assert_eq!(num(Some(1e-5), 9), "1.00e-5");
        assert_eq!(num(None, 9), "-");
        for x in [1e-30, -3e25, 9999.9999, 0.001] {
            assert!(num(Some(x), 9).len() <= 9, "{x}");
        }
        assert_eq!(
            shorten("model.layers.10.mlp.down_proj.weight", 12),
            "…proj.weight"
        );
        assert_eq!(shorten("a", 12), "a");
    }
}
