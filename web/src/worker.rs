//! The worker side: one coordinator worker that owns the model, and a pool of scan workers
//! it starts for a deep scan. Both roles run the same wasm binary; the first message says
//! which one a worker plays (the two message sets have distinct tags).
//!
//! Why a pool of plain workers and not wasm-bindgen-rayon: see docs/web.md ("Threads").
//! Each scan worker streams its own byte ranges of the files (JS objects cannot cross
//! threads, so reads happen where the compute happens) and scans whole tensors; the
//! coordinator hands out tensors one at a time, largest first, and merges nothing but
//! finished tensors, so no partial statistics ever cross a thread.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use js_sys::Array;
use quantdoc_core::finding::Finding;
use quantdoc_core::load::{self, Input};
use quantdoc_core::model::Model;
use quantdoc_core::report::{self, link, Report};
use quantdoc_core::scan::{self, ScanJob, ScanOptions, ScanPlan, TensorScan};
use quantdoc_core::source::ByteSource;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Blob, DedicatedWorkerGlobalScope, MessageEvent, Worker};

use crate::blob_source::BlobSource;
use crate::blob_stream::BlobRuns;
use crate::protocol::{
    self, Comparison, FromCoordinator, FromScanner, Progress, ScanCost, ToCoordinator, ToScanner,
    WorkerCost,
};
use crate::scan_local::{scan_tensor, TensorOutcome, Timing};

/// The worker script trunk emits for the `quantdoc-worker` binary.
pub const WORKER_SCRIPT: &str = "./quantdoc-worker_loader.js";

enum Role {
    Unknown,
    Coordinator(Box<Coordinator>),
    Scanner(Box<Scanner>),
}

thread_local! {
    static ROLE: RefCell<Role> = const { RefCell::new(Role::Unknown) };
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn now() -> f64 {
    scope().performance().map(|p| p.now()).unwrap_or(0.0)
}

fn post_text(text: &str) {
    // Posting a string to our own parent cannot fail.
    let _ = scope().post_message(&JsValue::from_str(text));
}

fn post<T: serde::Serialize>(msg: &T) {
    post_text(&protocol::to_text(msg));
}

/// Split a message into its JSON text and its attached files.
pub fn unpack(data: &JsValue) -> (String, Vec<Blob>) {
    if let Some(s) = data.as_string() {
        return (s, Vec::new());
    }
    let arr: Array = data.clone().unchecked_into();
    let text = arr.get(0).as_string().unwrap_or_default();
    let files = arr
        .get(1)
        .dyn_into::<Array>()
        .map(|a| a.iter().map(JsValue::unchecked_into).collect())
        .unwrap_or_default();
    (text, files)
}

/// A message with files attached: `[json, [File, ...]]`.
pub fn pack(text: &str, files: &[Blob]) -> JsValue {
    let a = Array::new();
    a.push(&JsValue::from_str(text));
    a.push(&files.iter().collect::<Array>());
    a.into()
}

/// Entry point of the worker binary.
pub fn start() {
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|ev: MessageEvent| {
        let (text, files) = unpack(&ev.data());
        handle(&text, files);
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    post_text("{\"type\":\"ready\"}");
}

fn handle(text: &str, files: Vec<Blob>) {
    if let Ok(m) = protocol::parse::<ToCoordinator>(text) {
        ROLE.with(|r| {
            let mut r = r.borrow_mut();
            if !matches!(*r, Role::Coordinator(_)) {
                *r = Role::Coordinator(Box::default());
            }
            if let Role::Coordinator(c) = &mut *r {
                c.handle(m, files);
            }
        });
        return;
    }
    match protocol::parse::<ToScanner>(text) {
        Ok(ToScanner::Init { paths }) => {
            let s = Scanner::new(&paths, files);
            ROLE.with(|r| *r.borrow_mut() = Role::Scanner(Box::new(s)));
        }
        Ok(ToScanner::Tensor { index }) => ROLE.with(|r| {
            if let Role::Scanner(s) = &mut *r.borrow_mut() {
                s.scan(index);
            }
        }),
        Err(e) => post(&FromScanner::Failed { message: e }),
    }
}

/// Open the files as byte sources and load the model from them.
fn open(paths: &[String], files: Vec<Blob>) -> Result<(Vec<BlobSource>, Model), String> {
    if paths.len() != files.len() {
        return Err(format!("{} paths but {} files", paths.len(), files.len()));
    }
    let sources = files
        .into_iter()
        .map(BlobSource::new)
        .collect::<Result<Vec<_>, _>>()?;
    let inputs: Vec<Input<'_>> = paths
        .iter()
        .zip(&sources)
        .map(|(p, s)| Input {
            path: p.clone(),
            source: s as &dyn ByteSource,
        })
        .collect();
    let model = load::load(&inputs).map_err(|e| e.to_string())?;
    Ok((sources, model))
}

/// `model.files[i]` names one of the inputs: the input (source, blob, ...) of each of the
/// model's files, in the model's order, found by path.
fn sources_for<'a, T>(model: &Model, paths: &[String], sources: &'a [T]) -> Vec<&'a T> {
    model
        .files
        .iter()
        .filter_map(|f| paths.iter().position(|p| *p == f.path).map(|i| &sources[i]))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Scan worker

/// Bytes of this worker's wasm memory (it only ever grows).
pub fn wasm_memory_bytes() -> u64 {
    core::arch::wasm32::memory_size::<0>() as u64 * 65536
}

struct Loaded {
    model: Model,
    /// One per entry of `model.files`.
    files: Vec<Blob>,
    plan: ScanPlan,
}

struct Scanner {
    loaded: Result<Rc<Loaded>, String>,
}

impl Scanner {
    fn new(paths: &[String], files: Vec<Blob>) -> Self {
        let loaded = open(paths, files.clone()).map(|(_, model)| {
            let plan = scan::plan(&model, &ScanOptions::default());
            let files = sources_for(&model, paths, &files)
                .into_iter()
                .cloned()
                .collect();
            Rc::new(Loaded { model, files, plan })
        });
        match &loaded {
            Ok(_) => post(&FromScanner::Loaded),
            Err(e) => post(&FromScanner::Failed { message: e.clone() }),
        }
        Scanner { loaded }
    }

    /// Scan one tensor; its bytes arrive asynchronously, so this returns at once and the
    /// result is posted when the tensor is done (the coordinator sends one at a time).
    fn scan(&mut self, index: usize) {
        let l = match &self.loaded {
            Ok(l) => Rc::clone(l),
            Err(e) => {
                post(&FromScanner::Failed { message: e.clone() });
                return;
            }
        };
        wasm_bindgen_futures::spawn_local(async move {
            let (model, plan) = (&l.model, &l.plan);
            // Jobs are in tensor order: this tensor's are a contiguous run.
            let first: usize = plan.jobs_per_tensor.iter().take(index).sum();
            let count = plan.jobs_per_tensor.get(index).copied().unwrap_or(0);
            let jobs: Vec<&ScanJob> = plan.jobs.iter().skip(first).take(count).collect();
            let plan_error = plan
                .errors
                .iter()
                .find(|(i, _)| *i == index)
                .map(|(_, e)| e.clone());
            let mut timing = Timing::new(now);
            let mut progress = |bytes| post(&FromScanner::Progress { bytes });
            let mut reader = BlobRuns::new(l.files.clone());
            let outcome = scan_tensor(
                model,
                &mut reader,
                index,
                &jobs,
                plan_error,
                &plan.options,
                &mut progress,
                &mut timing,
            )
            .await;
            drop(reader);
            let name = model.tensors.get(index).map(|t| t.name.clone());
            let scan = match outcome {
                TensorOutcome::Stats(s) => TensorScan {
                    name: name.unwrap_or_default(),
                    stats: Some(*s),
                    error: None,
                },
                TensorOutcome::Error(e) => TensorScan {
                    name: name.unwrap_or_default(),
                    stats: None,
                    error: Some(e),
                },
            };
            post(&FromScanner::Done {
                index,
                scan: Box::new(scan),
                wasm_bytes: wasm_memory_bytes(),
                read_ms: timing.read_ms,
                compute_ms: timing.compute_ms,
            });
        });
    }
}

// ---------------------------------------------------------------------------------------
// Coordinator

#[derive(Default)]
struct Coordinator {
    paths: Vec<String>,
    files: Vec<Blob>,
    loaded: Option<(Model, Report)>,
    /// The report of the link this page was opened with, for comparison.
    shared: Option<Report>,
    run: Option<ScanRun>,
    /// Bumped for every scan so messages of a cancelled scan's workers are ignored.
    generation: u32,
}

struct ScanRun {
    generation: u32,
    threads: u32,
    workers: Vec<PoolWorker>,
    queue: VecDeque<usize>,
    results: Vec<Option<TensorScan>>,
    tensors_done: usize,
    done_bytes: u64,
    total_bytes: u64,
    started: f64,
    last_progress: f64,
    /// What each scan worker reported.
    costs: Vec<WorkerCost>,
}

struct PoolWorker {
    worker: Worker,
    ready: bool,
    busy: bool,
    // Kept alive as long as the worker is.
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl Coordinator {
    fn handle(&mut self, m: ToCoordinator, files: Vec<Blob>) {
        match m {
            ToCoordinator::Load { paths } => self.load(paths, files),
            ToCoordinator::Scan { threads } => self.start_scan(threads),
            ToCoordinator::Cancel => {
                if self.stop_scan() {
                    post(&FromCoordinator::ScanCancelled);
                }
            }
            ToCoordinator::MakeLink {
                base_url,
                include_metadata,
            } => match &self.loaded {
                Some((_, report)) => {
                    let (url, omitted) = link::share_url(
                        &base_url,
                        report,
                        &link::LinkOptions {
                            include_metadata,
                            ..Default::default()
                        },
                    );
                    post(&FromCoordinator::Link {
                        url,
                        omitted: omitted.describe(),
                    });
                }
                None => post(&FromCoordinator::LinkFailed {
                    message: "load a file first".into(),
                }),
            },
            ToCoordinator::OpenLink { fragment } => match link::decode(&fragment) {
                Ok(shared) => {
                    self.shared = Some(shared.report.clone());
                    post(&FromCoordinator::LinkOpened {
                        report: Box::new(shared.report),
                        omitted: shared.omitted.describe(),
                    });
                }
                Err(e) => post(&FromCoordinator::LinkFailed {
                    message: e.to_string(),
                }),
            },
        }
    }

    fn load(&mut self, paths: Vec<String>, files: Vec<Blob>) {
        self.stop_scan();
        self.loaded = None;
        let t0 = now();
        let result = open(&paths, files.clone()).and_then(|(sources, model)| {
            let srcs = sources_for(&model, &paths, &sources);
            let sha = report::header_fingerprint(&model, &srcs)
                .map_err(|e| format!("reading the header: {e}"))?;
            let findings = report::header_findings(&model);
            let report = Report::new(&model, findings, sha);
            Ok((model, report))
        });
        match result {
            Ok((model, report)) => {
                let mut shown = report.clone();
                shown.metadata = link::collapse_metadata(&report.metadata);
                self.paths = paths;
                self.files = files;
                self.loaded = Some((model, report));
                post(&FromCoordinator::Loaded {
                    report: Box::new(shown),
                    millis: now() - t0,
                });
                self.compare(None);
            }
            Err(message) => post(&FromCoordinator::LoadFailed { message }),
        }
    }

    /// Tell the page how the loaded file compares with the opened link, if there is one.
    fn compare(&self, scanned: Option<&[Option<TensorScan>]>) {
        let (Some(shared), Some((_, report))) = (&self.shared, &self.loaded) else {
            return;
        };
        let differing = scanned.map(|results| {
            let local: serde_json::Map<String, serde_json::Value> = results
                .iter()
                .flatten()
                .filter_map(|t| {
                    Some((
                        t.name.clone(),
                        serde_json::to_value(t.stats.as_ref()?).ok()?,
                    ))
                })
                .collect();
            link::differing_tensors(&shared.stats, &local)
        });
        post(&FromCoordinator::Compared(Comparison {
            same_header: shared.header_sha256 == report.header_sha256,
            differing,
            compared: shared.stats.len(),
        }));
    }

    fn stop_scan(&mut self) -> bool {
        match self.run.take() {
            Some(run) => {
                for w in &run.workers {
                    w.worker.terminate();
                }
                true
            }
            None => false,
        }
    }

    fn start_scan(&mut self, threads: u32) {
        self.stop_scan();
        let Some((model, _)) = &self.loaded else {
            post(&FromCoordinator::ScanFailed {
                message: "load a file first".into(),
            });
            return;
        };
        let threads = threads.clamp(1, 16);
        self.generation += 1;
        let plan = scan::plan(model, &ScanOptions::default());
        let mut bytes_per_tensor = vec![0u64; model.tensors.len()];
        for j in &plan.jobs {
            bytes_per_tensor[j.tensor] += j.bytes();
        }
        // Largest first, so the last tensors to finish are small ones.
        let mut order: Vec<usize> = (0..model.tensors.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(bytes_per_tensor[i]));
        let mut run = ScanRun {
            generation: self.generation,
            threads,
            workers: Vec::new(),
            queue: order.into(),
            results: vec![None; model.tensors.len()],
            tensors_done: 0,
            done_bytes: 0,
            total_bytes: plan.total_bytes,
            started: now(),
            last_progress: 0.0,
            costs: vec![WorkerCost::default(); threads as usize],
        };
        for id in 0..threads as usize {
            match spawn_scanner(self.generation, id) {
                Ok((worker, on_message)) => {
                    run.workers.push(PoolWorker {
                        worker,
                        ready: false,
                        busy: false,
                        _on_message: on_message,
                    });
                }
                Err(e) => {
                    post(&FromCoordinator::ScanFailed { message: e });
                    return;
                }
            }
        }
        post(&FromCoordinator::Progress(run.progress(now())));
        self.run = Some(run);
    }

    fn on_scanner(&mut self, generation: u32, id: usize, msg: FromScanner) {
        let Some(run) = self.run.as_mut().filter(|r| r.generation == generation) else {
            return;
        };
        match msg {
            FromScanner::Ready => {
                let init = protocol::to_text(&ToScanner::Init {
                    paths: self.paths.clone(),
                });
                let _ = run.workers[id]
                    .worker
                    .post_message(&pack(&init, &self.files));
            }
            FromScanner::Loaded => {
                run.workers[id].ready = true;
                run.dispatch(id);
            }
            FromScanner::Failed { message } => {
                self.stop_scan();
                post(&FromCoordinator::ScanFailed { message });
            }
            FromScanner::Progress { bytes } => {
                run.done_bytes += bytes;
                run.costs[id].bytes += bytes;
                let t = now();
                if t - run.last_progress > 100.0 {
                    run.last_progress = t;
                    post(&FromCoordinator::Progress(run.progress(t)));
                }
            }
            FromScanner::Done {
                index,
                scan,
                wasm_bytes,
                read_ms,
                compute_ms,
            } => {
                run.workers[id].busy = false;
                let c = &mut run.costs[id];
                c.wasm_bytes = c.wasm_bytes.max(wasm_bytes);
                c.read_ms += read_ms;
                c.compute_ms += compute_ms;
                run.tensors_done += 1;
                post(&FromCoordinator::TensorScanned {
                    index,
                    stats: scan
                        .stats
                        .as_ref()
                        .and_then(|s| serde_json::to_value(s).ok()),
                    error: scan.error.clone(),
                });
                if let Some(slot) = run.results.get_mut(index) {
                    *slot = Some(*scan);
                }
                run.dispatch(id);
                let finished = run.tensors_done == run.results.len();
                post(&FromCoordinator::Progress(run.progress(now())));
                if finished {
                    self.finish_scan();
                }
            }
        }
    }

    fn finish_scan(&mut self) {
        let Some(run) = self.run.take() else { return };
        for w in &run.workers {
            w.worker.terminate();
        }
        let millis = now() - run.started;
        if let Some((model, report)) = &mut self.loaded {
            let results = scan::ScanResult {
                tensors: run.results.iter().flatten().cloned().collect(),
            };
            *report = link::scanned_report(model, report.header_sha256.clone(), &results);
            let findings = report.findings.clone();
            post(&FromCoordinator::Findings { findings });
        }
        post(&FromCoordinator::ScanDone {
            bytes: run.done_bytes,
            millis,
            threads: run.threads,
            cost: ScanCost {
                coordinator_wasm_bytes: wasm_memory_bytes(),
                scanners: run.costs.clone(),
            },
        });
        self.compare(Some(&run.results));
    }
}

impl ScanRun {
    fn progress(&self, t: f64) -> Progress {
        Progress {
            done_bytes: self.done_bytes,
            total_bytes: self.total_bytes,
            tensors_done: self.tensors_done,
            tensors_total: self.results.len(),
            millis: t - self.started,
        }
    }

    /// Give worker `id` the next tensor, if it is idle.
    fn dispatch(&mut self, id: usize) {
        let w = &mut self.workers[id];
        if !w.ready || w.busy {
            return;
        }
        if let Some(index) = self.queue.pop_front() {
            w.busy = true;
            let _ =
                w.worker
                    .post_message(&JsValue::from_str(&protocol::to_text(&ToScanner::Tensor {
                        index,
                    })));
        }
    }
}

type OnMessage = Closure<dyn FnMut(MessageEvent)>;

fn spawn_scanner(generation: u32, id: usize) -> Result<(Worker, OnMessage), String> {
    let worker =
        Worker::new(WORKER_SCRIPT).map_err(|e| format!("cannot start a scan worker: {e:?}"))?;
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        let (text, _) = unpack(&ev.data());
        let msg = protocol::parse::<FromScanner>(&text)
            .unwrap_or_else(|message| FromScanner::Failed { message });
        ROLE.with(|r| {
            if let Role::Coordinator(c) = &mut *r.borrow_mut() {
                c.on_scanner(generation, id, msg);
            }
        });
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    Ok((worker, on_message))
}

/// Findings shown before any scan: those of the parser and the header rules.
pub fn header_findings(model: &Model) -> Vec<Finding> {
    report::header_findings(model)
}
