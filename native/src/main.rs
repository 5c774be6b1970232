//! quantdoc: a doctor for quantized model files.

mod convert_cmd;
mod demo;
mod dequant_cmd;
mod human;
mod json_out;
mod link_cmd;
mod meta_cmd;
mod open;
mod repair_cmd;
mod requantize_cmd;
mod scan_cmd;
mod source;
mod style;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::open::open_model;
use crate::style::Style;

#[derive(Parser)]
#[command(
    name = "quantdoc",
    version,
    about = "A doctor for quantized model files (GGUF, safetensors)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read only the header: summary, metadata, tensor table, header findings.
    Inspect {
        /// A .gguf file (any shard of a split set), a .safetensors file, an index, or a directory.
        path: PathBuf,
        /// Print the report as JSON (see docs/json.md).
        #[arg(long)]
        json: bool,
    },
    /// Run every rule. Exit status: 0 no error finding, 1 an error finding, 2 cannot run.
    Check {
        path: PathBuf,
        #[arg(long)]
        json: bool,
        /// Header rules only: skip the scan of the tensor data.
        #[arg(long)]
        fast: bool,
        /// Threads for the scan (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Scan every tensor's data: statistics table, health findings (exit status as `check`).
    Scan {
        path: PathBuf,
        #[arg(long)]
        json: bool,
        /// Threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Print a share link: the report, compressed in the URL fragment (never sent anywhere).
    Link {
        path: PathBuf,
        /// Where the quantdoc web app is served.
        #[arg(long, default_value = quantdoc_core::report::link::DEFAULT_BASE_URL)]
        base_url: String,
        /// Leave every metadata value out of the link.
        #[arg(long)]
        no_metadata: bool,
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Write one tensor as raw little-endian f32, row-major.
    Dequant {
        path: PathBuf,
        /// Name of the (logical) tensor.
        #[arg(long)]
        tensor: String,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Repair a GGUF file (re-lay tensors, F32 norms, drop identical duplicates, fix
    /// block_count) or turn a Hugging Face quantized checkpoint into clean float weights.
    Repair(repair_cmd::Args),
    /// Edit GGUF metadata (typed), copying tensor data byte for byte.
    Meta(meta_cmd::Args),
    /// Re-encode a GGUF file's tensors to another type (never norms or 1-D tensors).
    Requantize(requantize_cmd::Args),
    /// Convert a Hugging Face checkpoint (also bnb/MLX/... quantized) to GGUF.
    Convert(convert_cmd::Args),
    /// Write a small healthy GGUF and broken variants into DIR and check each.
    Demo {
        #[arg(default_value = "quantdoc-demo")]
        dir: PathBuf,
    },
}

/// Errors that stop a command print one line and exit with status 2.
fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("quantdoc: {e:#}");
    ExitCode::from(2)
}

fn inspect(path: PathBuf, json: bool) -> Result<ExitCode> {
    let opened = open_model(&path)?;
    let report = opened.header_report()?;
    if json {
        opened.print_json(&report)?;
    } else {
        let st = Style::for_stdout();
        print!("{}", human::summary(&report, &opened.model, st));
        println!();
        print!("{}", human::metadata(&opened.model, st));
        println!();
        print!("{}", human::tensors(&report, st));
        println!();
        print!("{}", human::findings(&report.findings, st));
    }
    Ok(ExitCode::SUCCESS)
}

fn check(path: PathBuf, json: bool, fast: bool, threads: Option<usize>) -> Result<ExitCode> {
    let opened = open_model(&path)?;
    let mut report = opened.header_report()?;
    let mut scan = None;
    if !fast {
        let sources = opened.sources();
        let run = scan_cmd::run_scan(
            &opened.model,
            &sources,
            threads,
            scan_cmd::progress_wanted(json),
        )?;
        let mut findings = report.findings.clone();
        findings.extend(scan_cmd::health_findings(&opened.model, &run.result));
        report.set_findings(findings);
        scan = Some(run);
    }
    if json {
        if let Some(run) = &scan {
            scan_cmd::attach_stats(&mut report, &run.result)?;
        }
        opened.print_json(&report)?;
    } else {
        let st = Style::for_stdout();
        print!("{}", human::summary(&report, &opened.model, st));
        println!();
        if let Some(run) = &scan {
            println!(
                "{}",
                st.dim(&format!(
                    "scanned {} tensors ({}) in {:.2} s",
                    run.result.tensors.len(),
                    human::size(run.bytes),
                    run.elapsed.as_secs_f64()
                ))
            );
        } else {
            println!(
                "{}",
                st.dim("header rules only (--fast): tensor data not scanned")
            );
        }
        println!();
        print!("{}", human::findings(&report.findings, st));
    }
    Ok(if report.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Inspect { path, json } => inspect(path, json),
        Command::Check {
            path,
            json,
            fast,
            threads,
        } => check(path, json, fast, threads),
        Command::Scan {
            path,
            json,
            threads,
        } => scan_cmd::run(&path, json, threads),
        Command::Link {
            path,
            base_url,
            no_metadata,
            threads,
        } => link_cmd::run(&path, &base_url, no_metadata, threads),
        Command::Dequant { path, tensor, out } => dequant_cmd::run(&path, &tensor, &out),
        Command::Repair(a) => repair_cmd::run(a).map(exit_code),
        Command::Meta(a) => meta_cmd::run(a).map(exit_code),
        Command::Requantize(a) => requantize_cmd::run(a).map(exit_code),
        Command::Convert(a) => convert_cmd::run(a).map(exit_code),
        Command::Demo { dir } => demo::run(&dir),
    };
    result.unwrap_or_else(fail)
}
