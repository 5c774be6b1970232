//! Planted defects in a small llama GGUF written by gguf-py's GGUFWriter at test time
//! (scripts/gguf-py-fixtures.py `planted`): NaN/Inf f16 scales in a Q8_0 tensor, a Q8_0 norm,
//! an F32 tensor of whole numbers -8..7, and one layer's attn_q 100x louder than the others.
//! `quantdoc check --json` must report each with the right code, tensor and numbers, agree
//! with the core's own scan, and say nothing (warning or error) about the healthy tensors.

mod repair_support;

use std::collections::BTreeSet;

use quantdoc_core::finding::grouped;
use quantdoc_core::report::link::scanned_report;
use quantdoc_core::scan::ScanOptions;
use quantdoc_tests::MemFiles;
use repair_support::{fixtures_script, gguf_py, run, scratch};
use serde_json::Value;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// The one finding with this code and tensor.
fn finding<'a>(findings: &'a [Value], code: &str, tensor: &str) -> &'a Value {
    let hits: Vec<&Value> = findings
        .iter()
        .filter(|f| f["code"] == code && f["tensor"] == tensor)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "{code} on {tensor}: {} findings in {findings:#?}",
        hits.len()
    );
    hits[0]
}

/// The number printed right before `suffix` in `msg` ("... is 100.0012x the median ...").
fn number_before(msg: &str, suffix: &str) -> f64 {
    let end = msg
        .find(suffix)
        .unwrap_or_else(|| panic!("no {suffix:?} in {msg}"));
    let start = msg[..end].rfind(' ').map_or(0, |i| i + 1);
    msg[start..end]
        .parse()
        .unwrap_or_else(|e| panic!("{:?} in {msg}: {e}", &msg[start..end]))
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

#[test]
fn planted_defects_are_reported_with_their_numbers() {
    let test = "planted_defects_are_reported_with_their_numbers";
    let Some(py) = gguf_py(test) else {
        return;
    };
    let dir = scratch(test);
    let path = dir.join("planted.gguf");
    let p = path.to_str().unwrap();
    let facts: Value =
        serde_json::from_str(&fixtures_script(py, &["planted", p])).expect("planted facts");
    assert_eq!(facts["gguf_version"], "0.19.0");

    let out = run(&["check", p, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "error findings give exit status 1; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).expect("check --json output");
    assert_eq!(j["format"], "gguf");
    assert_eq!(j["summary"]["architecture"], "llama");
    let findings = j["findings"].as_array().unwrap().clone();
    let stats = &j["stats"];

    // NONFINITE_SCALE: exact NaN/Inf scale counts, first bad block, its element and row.
    let ns = &facts["nan_scales"];
    let tensor = ns["tensor"].as_str().unwrap();
    let f = finding(&findings, "NONFINITE_SCALE", tensor);
    assert_eq!(f["severity"], "error");
    let want = format!(
        "{tensor}: {} NaN and {} Inf block scales among {} scale fields of its Q8_0 blocks; the first bad block is #{} (elements from {}, row {})",
        u(&ns["nan_scales"]),
        u(&ns["inf_scales"]),
        grouped(u(&ns["blocks"])),
        u(&ns["first_bad_block"]),
        grouped(u(&ns["first_bad_element"])),
        u(&ns["first_bad_row"]),
    );
    let msg = f["message"].as_str().unwrap();
    assert!(msg.starts_with(&want), "{msg}\nwant: {want}");
    let sc = &stats[tensor]["scales"];
    assert_eq!(sc["nan"], ns["nan_scales"], "{sc}");
    assert_eq!(sc["inf"], ns["inf_scales"], "{sc}");
    assert_eq!(sc["first_bad_block"], ns["first_bad_block"], "{sc}");
    assert_eq!(
        u(&sc["fields"]),
        u(&ns["blocks"]),
        "one f16 scale per Q8_0 block"
    );
    assert_eq!(sc["fields_per_block"], 1);
    // ... and the values those blocks decode to, as gguf-py counted them.
    let f = finding(&findings, "NONFINITE_VALUE", tensor);
    assert_eq!(f["severity"], "error");
    let want = format!(
        "{tensor}: {} NaN and {} Inf values among {}",
        grouped(u(&ns["nan_values"])),
        grouped(u(&ns["inf_values"])),
        grouped(u(&ns["elements"]))
    );
    let msg = f["message"].as_str().unwrap();
    assert!(msg.starts_with(&want), "{msg}\nwant: {want}");
    assert_eq!(stats[tensor]["nan"], ns["nan_values"]);
    assert_eq!(stats[tensor]["inf"], ns["inf_values"]);

    // NORM_QUANTIZED: the Q8_0 norm, from the header.
    let qn = &facts["quantized_norm"];
    let tensor = qn["tensor"].as_str().unwrap();
    let f = finding(&findings, "NORM_QUANTIZED", tensor);
    assert_eq!(f["severity"], "error");
    let msg = f["message"].as_str().unwrap();
    let want = format!(
        "{tensor} is a normalization weight ({} values) stored as Q8_0",
        u(&qn["elements"])
    );
    assert!(msg.starts_with(&want), "{msg}\nwant: {want}");

    // UNSCALED_INTEGERS: whole numbers -8..7 in F32.
    let ui = &facts["unscaled_integers"];
    let tensor = ui["tensor"].as_str().unwrap();
    let f = finding(&findings, "UNSCALED_INTEGERS", tensor);
    assert_eq!(f["severity"], "error");
    let want = format!(
        "{tensor}: all {} values are whole numbers from {} to {} although it is stored as F32",
        grouped(u(&ui["elements"])),
        ui["min"],
        ui["max"]
    );
    let msg = f["message"].as_str().unwrap();
    assert!(msg.starts_with(&want), "{msg}\nwant: {want}");
    assert_eq!(stats[tensor]["integer_valued"], true);
    assert_eq!(stats[tensor]["min"].as_f64(), ui["min"].as_f64());
    assert_eq!(stats[tensor]["max"].as_f64(), ui["max"].as_f64());

    // PROJECTION_RMS_OUTLIER: the right layer, a ratio near the planted 100x, and numbers that
    // agree with the statistics of the scan.
    let po = &facts["projection_outlier"];
    let tensor = po["tensor"].as_str().unwrap();
    let family = po["family"].as_str().unwrap();
    let f = finding(&findings, "PROJECTION_RMS_OUTLIER", tensor);
    assert_eq!(f["severity"], "warning");
    let msg = f["message"].as_str().unwrap();
    let members = u(&po["members"]);
    assert!(
        msg.contains(&format!("of the {members} `{family}` tensors")),
        "{msg}"
    );
    let ratio = number_before(msg, "x the median RMS");
    let rms = number_before(msg, " is ");
    let med = number_before(msg, " of the ");
    let planted = po["ratio"].as_f64().unwrap();
    assert!(
        (ratio - planted).abs() < planted * 1e-3,
        "ratio {ratio}, planted {planted}: {msg}"
    );
    assert!((rms - po["rms"].as_f64().unwrap()).abs() < 1e-3, "{msg}");
    assert!(
        (med - po["median_rms"].as_f64().unwrap()).abs() < 1e-5,
        "{msg}"
    );
    let mut family_rms: Vec<f64> = (0..members)
        .map(|l| {
            stats[family.replace('*', &l.to_string())]["rms"]
                .as_f64()
                .unwrap()
        })
        .collect();
    let from_stats = stats[tensor]["rms"].as_f64().unwrap() / median(&mut family_rms);
    assert!(
        (ratio - from_stats).abs() < 1e-3,
        "message ratio {ratio}, stats ratio {from_stats}"
    );
    // Only the planted layer is an outlier.
    let outliers: Vec<&Value> = findings
        .iter()
        .filter(|f| f["code"] == "PROJECTION_RMS_OUTLIER")
        .collect();
    assert_eq!(outliers.len(), 1, "{outliers:#?}");

    // Nothing else: exactly the planted warnings and errors, none about healthy tensors or
    // the metadata (block_count and friends agree with the tensors).
    let serious: BTreeSet<(String, String)> = findings
        .iter()
        .filter(|f| f["severity"] != "info")
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["tensor"].as_str().unwrap_or("(none)").to_string(),
            )
        })
        .collect();
    let nan_t = facts["nan_scales"]["tensor"].as_str().unwrap();
    let expected: BTreeSet<(String, String)> = [
        ("NONFINITE_SCALE", nan_t),
        ("NONFINITE_VALUE", nan_t),
        (
            "NORM_QUANTIZED",
            facts["quantized_norm"]["tensor"].as_str().unwrap(),
        ),
        (
            "UNSCALED_INTEGERS",
            facts["unscaled_integers"]["tensor"].as_str().unwrap(),
        ),
        ("PROJECTION_RMS_OUTLIER", tensor),
    ]
    .into_iter()
    .map(|(c, t)| (c.to_string(), t.to_string()))
    .collect();
    assert_eq!(serious, expected, "{findings:#?}");
    let healthy: BTreeSet<&str> = facts["healthy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(healthy.len() >= 10);
    for f in &findings {
        if let Some(t) = f["tensor"].as_str() {
            assert!(
                !healthy.contains(t) || f["severity"] == "info",
                "healthy tensor {t} got {f:#}"
            );
        }
    }
    for t in &healthy {
        let s = &stats[*t];
        assert!(s["error"].is_null(), "{t}: {s}");
        assert_eq!((u(&s["nan"]), u(&s["inf"])), (0, 0), "{t}");
    }
    assert_eq!(j["summary"]["errors"], 4);
    assert_eq!(j["summary"]["warnings"], 1);

    // The core's own scan of the same bytes (header rules + scan + health rules) finds the
    // same findings, word for word.
    let files = MemFiles::read(std::slice::from_ref(&path));
    let model = files.load().expect("load planted.gguf");
    assert!(model.findings.is_empty(), "{:?}", model.findings);
    let scan = files.scan(&model, &ScanOptions::default()).expect("scan");
    let core = scanned_report(&model, String::new(), &scan).findings;
    let key = |code: &str, sev: &str, t: Option<&str>, m: &str| {
        format!("{code}|{sev}|{}|{m}", t.unwrap_or("-"))
    };
    let core_set: BTreeSet<String> = core
        .iter()
        .map(|f| {
            key(
                &f.code,
                f.severity.as_str(),
                f.tensor.as_deref(),
                &f.message,
            )
        })
        .collect();
    let cli_set: BTreeSet<String> = findings
        .iter()
        .map(|f| {
            key(
                f["code"].as_str().unwrap(),
                f["severity"].as_str().unwrap(),
                f["tensor"].as_str(),
                f["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(core_set, cli_set);

    // The text report names every planted code too.
    let text = run(&["check", p]);
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8_lossy(&text.stdout);
    for (code, _) in &expected {
        assert!(text.contains(code.as_str()), "{code} missing from:\n{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
