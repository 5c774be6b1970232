//! `quantdoc link`: the same share link the web app makes for the same file.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use quantdoc_core::report::link::{scanned_report, share_url, LinkOptions};

use crate::open::open_model;
use crate::scan_cmd;

pub fn run(
    path: &Path,
    base_url: &str,
    no_metadata: bool,
    threads: Option<usize>,
) -> Result<ExitCode> {
    let opened = open_model(path)?;
    let sources = opened.sources();
    let sha = opened.fingerprint()?;
    let run = scan_cmd::run_scan(
        &opened.model,
        &sources,
        threads,
        scan_cmd::progress_wanted(false),
    )?;
    let mut report = scanned_report(&opened.model, sha, &run.result);
    opened.name_report(&mut report);
    let opts = LinkOptions {
        include_metadata: !no_metadata,
        ..Default::default()
    };
    let (url, omitted) = share_url(base_url, &report, &opts);
    println!("{url}");
    if let Some(o) = omitted.describe() {
        eprintln!("left out of the link: {o}");
    }
    Ok(ExitCode::SUCCESS)
}
