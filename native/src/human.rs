//! Human-readable output of a report, readable in 80 columns.

use std::fmt::Write as _;

use quantdoc_core::finding::{grouped, Finding, Severity};
use quantdoc_core::meta::{truncate_chars, MetaValue};
use quantdoc_core::model::Model;
use quantdoc_core::report::Report;

use crate::style::Style;

const WIDTH: usize = 80;

pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1} K", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} M", n as f64 / 1e6),
        _ => format!("{:.2} B", n as f64 / 1e9),
    }
}

fn shape(s: &[u64]) -> String {
    format!(
        "[{}]",
        s.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Wrap text to `width`, prefixing each line with `indent`.
pub fn wrap(text: &str, indent: &str, width: usize) -> String {
    let mut out = String::new();
    let avail = width.saturating_sub(indent.chars().count()).max(20);
    for para in text.split('\n') {
        let mut line = String::new();
        for word in para.split(' ') {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > avail {
                let _ = writeln!(out, "{indent}{line}");
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        let _ = writeln!(out, "{indent}{line}");
    }
    out
}

pub fn summary(r: &Report, model: &Model, st: Style) -> String {
    let mut o = String::new();
    let s = &r.summary;
    let fmt = match model.format {
        quantdoc_core::model::Format::Gguf => format!(
            "GGUF v{} ({}-endian), alignment {}",
            r.version,
            if model.big_endian { "big" } else { "little" },
            model.alignment
        ),
        quantdoc_core::model::Format::Safetensors => "safetensors".to_string(),
    };
    let _ = writeln!(o, "{}", st.bold(&r.path));
    let _ = writeln!(o, "  Format        {fmt}");
    if r.files.len() > 1 {
        let _ = writeln!(o, "  Files         {}", r.files.len());
    }
    let _ = writeln!(
        o,
        "  Architecture  {}",
        s.architecture.as_deref().unwrap_or("(not declared)")
    );
    if let Some(n) = &s.name {
        let _ = writeln!(o, "  Name          {}", truncate_chars(n, 60));
    }
    let _ = writeln!(
        o,
        "  Parameters    {} in {} tensors",
        count(s.parameters),
        s.tensor_count
    );
    let _ = writeln!(
        o,
        "  Size          {} ({} bytes), tensor data {}",
        size(r.file_size),
        grouped(r.file_size),
        size(s.tensor_bytes)
    );
    let _ = writeln!(o, "  Bits/weight   {:.2}", s.bits_per_weight);
    let _ = writeln!(o);
    let _ = writeln!(o, "{}", st.bold("Quant types"));
    let _ = writeln!(
        o,
        "  {:<22} {:>8} {:>14} {:>12} {:>7}",
        "type", "tensors", "parameters", "bytes", "share"
    );
    for q in &s.quant_mix {
        let _ = writeln!(
            o,
            "  {:<22} {:>8} {:>14} {:>12} {:>6.1}%",
            truncate_chars(&q.encoding, 22),
            q.tensors,
            grouped(q.parameters),
            size(q.bytes),
            q.share * 100.0
        );
    }
    o
}

pub fn metadata(model: &Model, st: Style) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}",
        st.bold(&format!("Metadata ({} keys)", model.metadata.len()))
    );
    for e in &model.metadata {
        let ty = match (e.value_type, e.array_type) {
            (Some(t), Some(a)) => format!("{}[{}]", t.name(), a.name()),
            (Some(t), None) => t.name().to_string(),
            _ => String::new(),
        };
        if e.key.ends_with("chat_template") {
            if let MetaValue::String(s) = &e.value {
                let _ = writeln!(o, "  {} {} =", e.key, st.dim(&ty));
                for line in s.lines() {
                    let _ = writeln!(o, "    {} {}", st.dim("|"), sanitize(line));
                }
                continue;
            }
        }
        let head = if ty.is_empty() {
            format!("  {} = ", e.key)
        } else {
            format!("  {} {} = ", e.key, st.dim(&ty))
        };
        let room = WIDTH
            .saturating_sub(e.key.chars().count() + ty.len() + 6)
            .max(24);
        let _ = writeln!(o, "{head}{}", sanitize(&e.value.summary(room)));
    }
    o
}

/// Metadata is untrusted text: never let it drive the terminal.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() && c != '\t' { '·' } else { c })
        .collect()
}

pub fn tensors(r: &Report, st: Style) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{}", st.bold(&format!("Tensors ({})", r.tensors.len())));
    let _ = writeln!(
        o,
        "  {:<32} {:<9} {:<16} {:>10} {:>9}",
        "name", "type", "shape", "offset", "bytes"
    );
    for t in &r.tensors {
        let _ = writeln!(
            o,
            "  {:<32} {:<9} {:<16} {:>10} {:>9}",
            truncate_chars(&sanitize(&t.name), 32),
            truncate_chars(&t.dtype, 9),
            truncate_chars(&shape(&t.shape), 16),
            t.offset,
            size(t.nbytes)
        );
    }
    o
}

pub fn findings(findings: &[Finding], st: Style) -> String {
    let mut o = String::new();
    if findings.is_empty() {
        let _ = writeln!(o, "{} {}", st.bold("Findings:"), st.green("none"));
        return o;
    }
    let _ = writeln!(o, "{}", st.bold(&format!("Findings ({})", findings.len())));
    for f in findings {
        let sev = match f.severity {
            Severity::Error => st.red("error  "),
            Severity::Warning => st.yellow("warning"),
            Severity::Info => st.cyan("info   "),
        };
        let tensor = f.tensor.as_deref().map(sanitize).unwrap_or_default();
        let _ = writeln!(o, "  {sev} {} {}", st.bold(&f.code), tensor);
        o.push_str(&wrap(&sanitize(&f.message), "          ", WIDTH));
        o.push_str(&st.dim(&wrap(
            &format!("fix: {}", sanitize(&f.hint)),
            "          ",
            WIDTH,
        )));
    }
    o
}
