//! Messages between the page, the coordinator worker and the scan workers.
//!
//! Every message is a JSON string, optionally followed by the `File` objects it concerns
//! (files cannot be serialized, but they can be posted: the browser shares them, it does
//! not copy their bytes).

use quantdoc_core::finding::Finding;
use quantdoc_core::report::Report;
use quantdoc_core::scan::TensorScan;
use serde::{Deserialize, Serialize};

/// Page → coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToCoordinator {
    /// Read the headers of the attached files (one `File` per path, in order).
    Load {
        paths: Vec<String>,
    },
    /// Scan every tensor of the loaded model with this many scan workers.
    Scan {
        threads: u32,
    },
    Cancel,
    /// Encode the current report as a share link.
    MakeLink {
        base_url: String,
        include_metadata: bool,
    },
    /// Decode a share link (the page's fragment).
    OpenLink {
        fragment: String,
    },
}

/// Coordinator → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromCoordinator {
    /// The worker's wasm is running and listening: messages sent before this are lost.
    Ready,
    /// The header was read: the report without statistics (metadata arrays collapsed).
    Loaded {
        report: Box<Report>,
        millis: f64,
    },
    LoadFailed {
        message: String,
    },
    Progress(Progress),
    /// One tensor finished scanning (statistics as JSON, or why there are none).
    TensorScanned {
        index: usize,
        stats: Option<serde_json::Value>,
        error: Option<String>,
    },
    /// All findings known now (header findings plus those from statistics so far).
    Findings {
        findings: Vec<Finding>,
    },
    ScanDone {
        bytes: u64,
        millis: f64,
        threads: u32,
        /// What the scan workers spent: memory, and time waiting for bytes against time
        /// computing.
        cost: ScanCost,
    },
    ScanCancelled,
    ScanFailed {
        message: String,
    },
    Link {
        url: String,
        omitted: Option<String>,
    },
    LinkOpened {
        report: Box<Report>,
        omitted: Option<String>,
    },
    LinkFailed {
        message: String,
    },
    /// A loaded file against the report a link carried.
    Compared(Comparison),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub done_bytes: u64,
    pub total_bytes: u64,
    pub tensors_done: usize,
    pub tensors_total: usize,
    pub millis: f64,
}

/// What a scan cost. Memory is the wasm memory each worker holds at the end (a wasm
/// memory never shrinks, so this is its peak).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanCost {
    pub coordinator_wasm_bytes: u64,
    /// One per scan worker.
    pub scanners: Vec<WorkerCost>,
}

/// One scan worker's share of a scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerCost {
    pub wasm_bytes: u64,
    /// Tensor bytes it scanned.
    pub bytes: u64,
    /// Time spent waiting for the file's bytes.
    pub read_ms: f64,
    /// Time spent computing statistics (`scan::process`).
    pub compute_ms: f64,
}

impl ScanCost {
    pub fn wasm_bytes(&self) -> u64 {
        self.coordinator_wasm_bytes + self.scanners.iter().map(|w| w.wasm_bytes).sum::<u64>()
    }

    /// Bytes per second of compute alone, summed over the workers, in MB/s: what the scan
    /// would reach if reading cost nothing.
    pub fn compute_mb_s(&self) -> Option<f64> {
        let timed = || self.scanners.iter().filter(|w| w.compute_ms > 0.0);
        (timed().next().is_some())
            .then(|| timed().map(|w| w.bytes as f64 / w.compute_ms / 1e3).sum())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Header fingerprints match: the same file (as far as its header says).
    pub same_header: bool,
    /// After a scan: tensors whose statistics differ from the link's.
    pub differing: Option<Vec<String>>,
    /// Tensors the link carried statistics for.
    pub compared: usize,
}

/// Coordinator → scan worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToScanner {
    /// Load the attached files (the same as the coordinator's).
    Init { paths: Vec<String> },
    /// Scan all jobs of one tensor.
    Tensor { index: usize },
}

/// Scan worker → coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromScanner {
    /// The worker's wasm is running and listening (sent by every worker at start).
    Ready,
    /// The files are loaded; tensors may be sent.
    Loaded,
    Failed {
        message: String,
    },
    /// Bytes read since the last progress message.
    Progress {
        bytes: u64,
    },
    Done {
        index: usize,
        scan: Box<TensorScan>,
        /// This worker's wasm memory after the tensor, and the tensor's read and compute
        /// time.
        wasm_bytes: u64,
        read_ms: f64,
        compute_ms: f64,
    },
}

/// Messages are tagged JSON; a malformed one is a bug in this app, reported as text.
pub fn parse<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("bad message {text:.80}: {e}"))
}

pub fn to_text<T: Serialize>(msg: &T) -> String {
    serde_json::to_string(msg).expect("messages are plain data")
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn messages_round_trip_as_tagged_json() {
        let m = ToCoordinator::MakeLink {
            base_url: "http://127.0.0.1:8080/".into(),
            include_metadata: false,
        };
        let t = to_text(&m);
        assert!(t.contains("\"type\":\"make_link\""), "{t}");
        assert_eq!(parse::<ToCoordinator>(&t).unwrap(), m);
        let p = FromCoordinator::Progress(Progress {
            done_bytes: 5,
            total_bytes: 10,
            tensors_done: 1,
            tensors_total: 2,
            millis: 3.5,
        });
        assert_eq!(parse::<FromCoordinator>(&to_text(&p)).unwrap(), p);
    }

    #[test]
    fn scan_cost_sums_compute_rates() {
        let w = |bytes, compute_ms| WorkerCost {
            wasm_bytes: 1 << 20,
            bytes,
            read_ms: 1.0,
            compute_ms,
        };
        let c = ScanCost {
            coordinator_wasm_bytes: 1 << 20,
            scanners: vec![w(1_000_000, 2.0), w(3_000_000, 3.0)],
        };
        assert_eq!(c.wasm_bytes(), 3 << 20);
        assert_eq!(c.compute_mb_s(), Some(1500.0));
        assert_eq!(ScanCost::default().compute_mb_s(), None);
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        assert!(parse::<ToScanner>("{\"type\":\"nope\"}").is_err());
        assert!(parse::<FromScanner>("not json").is_err());
    }
}
