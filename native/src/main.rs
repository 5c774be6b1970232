//! quantdoc: a doctor for quantized model files.

mod demo;
mod dequant_cmd;
mod human;
mod open;
mod source;
mod style;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use quantdoc_core::report::{header_findings, header_fingerprint, Report};

use crate::open::{open_model, Opened};
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
    /// Write a small healthy GGUF and a broken one into DIR and check both.
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

fn report_for(opened: &Opened) -> Result<Report> {
    let fingerprint = header_fingerprint(&opened.model, &opened.sources())
        .map_err(|e| anyhow::anyhow!("{}: {e}", opened.paths[0].display()))?;
    Ok(Report::new(
        &opened.model,
        header_findings(&opened.model),
        fingerprint,
    ))
}

fn print_json(r: &Report) -> Result<()> {
    let s = serde_json::to_string_pretty(r)?;
    println!("{s}");
    Ok(())
}

fn inspect(path: PathBuf, json: bool) -> Result<ExitCode> {
    let opened = open_model(&path)?;
    let report = report_for(&opened)?;
    if json {
        print_json(&report)?;
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

fn check(path: PathBuf, json: bool, _fast: bool, _threads: Option<usize>) -> Result<ExitCode> {
    let opened = open_model(&path)?;
    let report = report_for(&opened)?;
    if json {
        print_json(&report)?;
    } else {
        let st = Style::for_stdout();
        print!("{}", human::summary(&report, &opened.model, st));
        println!();
        print!("{}", human::findings(&report.findings, st));
    }
    Ok(if report.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
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
        Command::Dequant { path, tensor, out } => dequant_cmd::run(&path, &tensor, &out),
        Command::Demo { dir } => demo::run(&dir),
    };
    result.unwrap_or_else(fail)
}
