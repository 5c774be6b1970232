//! The page: a Yew component that only renders and forwards. Every byte of the file and
//! every line of the core runs in the coordinator worker (see `worker.rs`).

use quantdoc_core::finding::{Finding, Severity};
use quantdoc_core::report::Report;
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Blob, DragEvent, File, FileList, HtmlInputElement, MessageEvent, Worker};
use yew::prelude::*;

use crate::dropped;
use crate::format::{self, SortKey, TableQuery};
use crate::protocol::{
    self, Comparison, FromCoordinator, Progress, ScanCost, ToCoordinator, WorkerCost,
};
use crate::worker::{pack, unpack, WORKER_SCRIPT};

const PAGE_ROWS: usize = 100;

pub enum Msg {
    Worker(String),
    /// Files to open, each with the path the core sees.
    Files(Vec<(File, String)>),
    /// A dropped folder could not be read.
    DropFailed(String),
    DragOver(bool),
    StartScan,
    Cancel,
    Threads(u32),
    CopyLink,
    IncludeMetadata(bool),
    Query(TableQuery),
    Page(usize),
    Select(Option<usize>),
}

enum Scan {
    Idle,
    Running(Progress),
    Done {
        bytes: u64,
        millis: f64,
        threads: u32,
        cost: ScanCost,
    },
    Cancelled(Progress),
    Failed(String),
}

pub struct App {
    worker: Worker,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    worker_ready: bool,
    /// Messages waiting for the worker to start listening.
    outbox: Vec<JsValue>,
    loading: Option<String>,
    error: Option<String>,
    report: Option<Report>,
    load_millis: Option<f64>,
    /// Per tensor of `report`, in order.
    stats: Vec<Option<Value>>,
    scan_errors: Vec<Option<String>>,
    scan: Scan,
    /// Opened from a share link: what the link left out.
    shared: Option<Option<String>>,
    /// The link's header fingerprint, kept when a file is dropped to compare.
    link_sha: Option<String>,
    comparison: Option<Comparison>,
    link: Option<(String, Option<String>)>,
    include_metadata: bool,
    threads: u32,
    query: TableQuery,
    page: usize,
    selected: Option<usize>,
    dragging: bool,
    detail_ref: NodeRef,
    focus_detail: bool,
}

fn window() -> web_sys::Window {
    web_sys::window().expect("the page has a window")
}

/// The value of `?name=value` in the page URL.
fn url_param(name: &str) -> Option<String> {
    let search = window().location().search().unwrap_or_default();
    search
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| Some(kv.strip_prefix(name)?.strip_prefix('=')?.to_string()))
}

/// `?threads=N` in the page URL, else the machine's core count.
fn default_threads() -> u32 {
    url_param("threads")
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or_else(|| window().navigator().hardware_concurrency() as u32)
        .clamp(1, 16)
}

fn is_model_file(name: &str) -> bool {
    name.ends_with(".gguf") || name.ends_with(".safetensors") || name.ends_with(".json")
}

fn file_path(f: &File) -> String {
    let rel = js_sys::Reflect::get(f, &JsValue::from_str("webkitRelativePath"))
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default();
    if rel.is_empty() {
        f.name()
    } else {
        rel
    }
}

fn files_of(list: Option<FileList>) -> Vec<(File, String)> {
    let Some(list) = list else { return Vec::new() };
    (0..list.length())
        .filter_map(|i| list.get(i))
        .map(|f| {
            let path = file_path(&f);
            (f, path)
        })
        .collect()
}

impl App {
    fn send(&mut self, msg: &ToCoordinator, files: &[Blob]) {
        let text = protocol::to_text(msg);
        let value = if files.is_empty() {
            JsValue::from_str(&text)
        } else {
            pack(&text, files)
        };
        if self.worker_ready {
            let _ = self.worker.post_message(&value);
        } else {
            self.outbox.push(value);
        }
    }

    fn set_report(&mut self, report: Report) {
        let n = report.tensors.len();
        self.stats = report
            .tensors
            .iter()
            .map(|t| report.stats.get(&t.name).cloned())
            .collect();
        self.scan_errors = vec![None; n];
        self.report = Some(report);
        self.selected = None;
        self.page = 0;
        self.link = None;
    }

    fn on_worker(&mut self, ctx: &Context<Self>, text: &str) {
        let msg = match protocol::parse::<FromCoordinator>(text) {
            Ok(m) => m,
            Err(e) => {
                self.error = Some(e);
                return;
            }
        };
        match msg {
            FromCoordinator::Ready => {
                self.worker_ready = true;
                for m in std::mem::take(&mut self.outbox) {
                    let _ = self.worker.post_message(&m);
                }
            }
            FromCoordinator::Loaded { report, millis } => {
                self.loading = None;
                self.error = None;
                self.load_millis = Some(millis);
                self.comparison = None;
                // The receiver's own file replaces the shared view; `link_sha` stays for
                // the comparison banner.
                self.shared = None;
                self.set_report(*report);
                ctx.link().send_message(Msg::StartScan);
            }
            FromCoordinator::LoadFailed { message } => {
                self.loading = None;
                self.error = Some(message);
            }
            FromCoordinator::Progress(p) => {
                if matches!(self.scan, Scan::Running(_)) {
                    self.scan = Scan::Running(p);
                }
            }
            FromCoordinator::TensorScanned {
                index,
                stats,
                error,
            } => {
                if let Some(s) = self.stats.get_mut(index) {
                    *s = stats;
                }
                if let Some(e) = self.scan_errors.get_mut(index) {
                    *e = error;
                }
            }
            FromCoordinator::Findings { findings } => {
                if let Some(r) = &mut self.report {
                    r.set_findings(findings);
                }
            }
            FromCoordinator::ScanDone {
                bytes,
                millis,
                threads,
                cost,
            } => {
                self.scan = Scan::Done {
                    bytes,
                    millis,
                    threads,
                    cost,
                }
            }
            FromCoordinator::ScanCancelled => {
                if let Scan::Running(p) = &self.scan {
                    self.scan = Scan::Cancelled(p.clone());
                }
            }
            FromCoordinator::ScanFailed { message } => self.scan = Scan::Failed(message),
            FromCoordinator::Link { url, omitted } => {
                // Best effort (needs focus and permission): the link is also shown in a
                // field to copy by hand.
                let _ = window().navigator().clipboard().write_text(&url);
                self.link = Some((url, omitted));
            }
            FromCoordinator::LinkOpened { report, omitted } => {
                self.link_sha = Some(report.header_sha256.clone());
                self.set_report(*report);
                self.shared = Some(omitted);
                self.scan = Scan::Idle;
            }
            FromCoordinator::LinkFailed { message } => self.error = Some(message),
            FromCoordinator::Compared(c) => self.comparison = Some(c),
        }
    }
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let worker = Worker::new(WORKER_SCRIPT).expect("the worker script is part of the page");
        let link = ctx.link().clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let (text, _) = unpack(&ev.data());
            link.send_message(Msg::Worker(text));
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let mut app = App {
            worker,
            _on_message: on_message,
            worker_ready: false,
            outbox: Vec::new(),
            loading: None,
            error: None,
            report: None,
            load_millis: None,
            stats: Vec::new(),
            scan_errors: Vec::new(),
            scan: Scan::Idle,
            shared: None,
            link_sha: None,
            comparison: None,
            link: None,
            include_metadata: true,
            threads: default_threads(),
            query: TableQuery::default(),
            page: 0,
            selected: None,
            dragging: false,
            detail_ref: NodeRef::default(),
            focus_detail: false,
        };
        let hash = window().location().hash().unwrap_or_default();
        if hash.starts_with("#qd") {
            app.send(&ToCoordinator::OpenLink { fragment: hash }, &[]);
        }
        app
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Worker(text) => self.on_worker(ctx, &text),
            Msg::Files(files) => {
                self.dragging = false;
                let mut chosen: Vec<(File, String)> = files
                    .iter()
                    .filter(|(f, path)| {
                        is_model_file(&f.name()) && !dropped::in_hidden_folder(path)
                    })
                    .cloned()
                    .collect();
                if chosen.is_empty() {
                    // Let the core say what is wrong with the file.
                    chosen = files;
                }
                if chosen.is_empty() {
                    return true;
                }
                let paths: Vec<String> = chosen.iter().map(|(_, p)| p.clone()).collect();
                self.loading = Some(paths.join(", "));
                self.error = None;
                self.scan = Scan::Idle;
                let blobs: Vec<Blob> = chosen.into_iter().map(|(f, _)| f.into()).collect();
                self.send(&ToCoordinator::Load { paths }, &blobs);
            }
            Msg::DropFailed(message) => {
                self.dragging = false;
                self.loading = None;
                self.error = Some(message);
            }
            Msg::DragOver(on) => self.dragging = on,
            Msg::StartScan => {
                if self.report.is_some() && self.shared.is_none() {
                    self.scan = Scan::Running(Progress {
                        done_bytes: 0,
                        total_bytes: 0,
                        tensors_done: 0,
                        tensors_total: self.stats.len(),
                        millis: 0.0,
                    });
                    let threads = self.threads;
                    self.send(&ToCoordinator::Scan { threads }, &[]);
                }
            }
            Msg::Cancel => self.send(&ToCoordinator::Cancel, &[]),
            Msg::Threads(n) => self.threads = n.clamp(1, 16),
            Msg::CopyLink => {
                let loc = window().location();
                let base = format!(
                    "{}{}",
                    loc.origin().unwrap_or_default(),
                    loc.pathname().unwrap_or_default()
                );
                let include_metadata = self.include_metadata;
                self.send(
                    &ToCoordinator::MakeLink {
                        base_url: base,
                        include_metadata,
                    },
                    &[],
                );
            }
            Msg::IncludeMetadata(on) => {
                self.include_metadata = on;
                self.link = None;
            }
            Msg::Query(q) => {
                self.query = q;
                self.page = 0;
            }
            Msg::Page(p) => self.page = p,
            Msg::Select(i) => {
                self.selected = i;
                self.focus_detail = i.is_some();
            }
        }
        true
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first: bool) {
        if std::mem::take(&mut self.focus_detail) {
            if let Some(el) = self.detail_ref.cast::<web_sys::HtmlElement>() {
                let _ = el.focus();
                el.scroll_into_view();
            }
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        html! {
            <>
            <header class="top">
                <h1>{"quantdoc"}</h1>
                <p class="tagline">{"Diagnose quantized model files in your browser. Nothing leaves this page."}</p>
            </header>
            <main>
                { self.view_drop(ctx) }
                { self.view_banners() }
                { match &self.report { Some(r) => self.view_report(ctx, r), None => html!{} } }
            </main>
            </>
        }
    }
}

impl App {
    fn view_drop(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let on_files = link.callback(|e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let files = files_of(input.files());
            input.set_value("");
            Msg::Files(files)
        });
        let on_folder = on_files.clone();
        let ondrop = {
            let drop_link = link.clone();
            link.callback(move |e: DragEvent| {
                e.prevent_default();
                let Some(dt) = e.data_transfer() else {
                    return Msg::DragOver(false);
                };
                // A dropped folder is an entry to read, not a file: read the entries (only
                // possible during the event), then the files under them.
                let entries = dropped::take_entries(&dt);
                if entries.is_empty() {
                    return Msg::Files(files_of(dt.files()));
                }
                let link = drop_link.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    link.send_message(match dropped::files_of_entries(entries).await {
                        Ok(files) => Msg::Files(files),
                        Err(e) => Msg::DropFailed(e),
                    });
                });
                Msg::DragOver(false)
            })
        };
        let ondragover = link.callback(|e: DragEvent| {
            e.prevent_default();
            Msg::DragOver(true)
        });
        let ondragleave = link.callback(|_: DragEvent| Msg::DragOver(false));
        let class = classes!("drop", self.dragging.then_some("dragging"));
        html! {
            <section id="drop" {class} {ondrop} {ondragover} {ondragleave} aria-label="Open a model file">
                <p><strong>{"Drop a .gguf file here"}</strong>{" (or the .safetensors shards and config.json of a checkpoint, or its folder)"}</p>
                <div class="pickers">
                    <label class="button" for="file-input">{"Choose files…"}</label>
                    <input id="file-input" type="file" multiple=true onchange={on_files}
                        accept=".gguf,.safetensors,.json" />
                    <label class="button" for="folder-input">{"Choose a folder…"}</label>
                    <input id="folder-input" type="file" webkitdirectory=true onchange={on_folder} />
                    <label class="threads">{"Scan threads "}
                        <select id="threads" onchange={link.callback(|e: Event| {
                            let s: web_sys::HtmlSelectElement = e.target_unchecked_into();
                            Msg::Threads(s.value().parse().unwrap_or(1))
                        })}>
                            { for [1u32, 2, 4, 8].iter().map(|&n| html!{
                                <option value={n.to_string()} selected={n == self.threads}>{n}</option>
                            }) }
                        </select>
                    </label>
                </div>
                { match &self.loading {
                    Some(p) => html!{ <p class="status" role="status">{format!("Reading {p}…")}</p> },
                    None => html!{},
                } }
            </section>
        }
    }

    fn view_banners(&self) -> Html {
        html! {
            <>
            { match &self.error {
                Some(e) => html!{ <div class="banner error" id="error" role="alert">
                    <strong>{"This file cannot be read: "}</strong>{e}</div> },
                None => html!{},
            } }
            { match &self.shared {
                Some(omitted) => html!{ <div class="banner info" id="shared-banner" role="status">
                    <strong>{"Shared report (read-only). "}</strong>
                    {"This report was opened from a link; the file itself is not here. Drop your copy of the file to compare."}
                    { match omitted { Some(o) => html!{ <p id="omitted">{o}</p> }, None => html!{} } }
                </div> },
                None => html!{},
            } }
            { match (&self.comparison, &self.link_sha) {
                (Some(c), Some(_)) => {
                    let header = if c.same_header {
                        "Same file: the header fingerprint matches the shared report."
                    } else {
                        "Different file: the header fingerprint does not match the shared report."
                    };
                    html!{ <div class={classes!("banner", if c.same_header {"ok"} else {"warn"})} id="comparison" role="status">
                        <p>{header}</p>
                        { match &c.differing {
                            None => html!{ <p>{"Tensor statistics are compared when the scan finishes."}</p> },
                            Some(d) if d.is_empty() => html!{ <p id="differing">{format!("All {} tensors with statistics in the link match.", c.compared)}</p> },
                            Some(d) => html!{ <p id="differing">{format!("{} of {} tensors differ: {}", d.len(), c.compared, d.join(", "))}</p> },
                        } }
                    </div> }
                }
                _ => html!{},
            } }
            </>
        }
    }

    fn view_report(&self, ctx: &Context<Self>, r: &Report) -> Html {
        html! {
            <>
            { self.view_summary(r) }
            { self.view_scan(ctx) }
            { self.view_findings(ctx, r) }
            { self.view_detail(ctx, r) }
            { self.view_tensors(ctx, r) }
            { self.view_metadata(r) }
            { self.view_share(ctx) }
            </>
        }
    }

    fn view_summary(&self, r: &Report) -> Html {
        let s = &r.summary;
        let files = r
            .files
            .iter()
            .map(|f| f.path.clone())
            .collect::<Vec<_>>()
            .join(", ");
        html! {
            <section id="summary" class="card" aria-labelledby="summary-h">
                <h2 id="summary-h">{"Summary"}</h2>
                <dl class="facts">
                    <dt>{"File"}</dt><dd>{files}</dd>
                    <dt>{"Format"}</dt><dd id="format">{format!("{} v{}", r.format, r.version)}</dd>
                    <dt>{"Architecture"}</dt><dd id="architecture">{s.architecture.clone().unwrap_or_else(|| "—".into())}</dd>
                    { match &s.name { Some(n) => html!{<><dt>{"Name"}</dt><dd>{n}</dd></>}, None => html!{} } }
                    <dt>{"Parameters"}</dt><dd id="parameters">{format::count(s.parameters)}</dd>
                    <dt>{"Tensors"}</dt><dd>{s.tensor_count}</dd>
                    <dt>{"Size"}</dt><dd id="size">{format::bytes(r.file_size)}</dd>
                    <dt>{"Bits per weight"}</dt><dd id="bpw">{format!("{:.2}", s.bits_per_weight)}</dd>
                    { match self.load_millis { Some(ms) if self.shared.is_none() => html!{<><dt>{"Header read in"}</dt><dd>{format!("{ms:.0} ms")}</dd></>}, _ => html!{} } }
                </dl>
                <table class="mix" id="quant-mix">
                    <caption>{"Quant-type mix"}</caption>
                    <thead><tr><th scope="col">{"Type"}</th><th scope="col">{"Tensors"}</th><th scope="col">{"Parameters"}</th><th scope="col">{"Bytes"}</th><th scope="col">{"Share"}</th></tr></thead>
                    <tbody>
                    { for s.quant_mix.iter().map(|q| html!{
                        <tr><td>{&q.encoding}</td><td>{q.tensors}</td><td>{format::count(q.parameters)}</td>
                        <td>{format::bytes(q.bytes)}</td><td>{format!("{:.1} %", q.share * 100.0)}</td></tr>
                    }) }
                    </tbody>
                </table>
            </section>
        }
    }

    fn view_scan(&self, ctx: &Context<Self>) -> Html {
        if self.shared.is_some() {
            return html! {};
        }
        let bar = |p: &Progress| {
            let rate = format::rate_mb_s(p.done_bytes, p.millis)
                .map(|r| format!("{r:.0} MB/s"))
                .unwrap_or_default();
            let left = format::time_left(p.done_bytes, p.total_bytes, p.millis)
                .map(|t| format!(", {t} left"))
                .unwrap_or_default();
            html! {
                <>
                <progress id="scan-progress" max={p.total_bytes.max(1).to_string()} value={p.done_bytes.to_string()}
                    aria-label="Scan progress"></progress>
                <p class="status" id="scan-status" role="status">
                    {format!("{} of {} · {} of {} tensors · {rate}{left}",
                        format::bytes(p.done_bytes), format::bytes(p.total_bytes), p.tensors_done, p.tensors_total)}
                </p>
                </>
            }
        };
        let body = match &self.scan {
            Scan::Idle => html! {
                <button id="scan-start" onclick={ctx.link().callback(|_| Msg::StartScan)}>{"Start deep scan"}</button>
            },
            Scan::Running(p) => html! {
                <>
                { bar(p) }
                <button id="scan-cancel" onclick={ctx.link().callback(|_| Msg::Cancel)}>{"Cancel scan"}</button>
                </>
            },
            Scan::Done {
                bytes,
                millis,
                threads,
                cost,
            } => {
                let list = |f: &dyn Fn(&WorkerCost) -> String| {
                    cost.scanners.iter().map(f).collect::<Vec<_>>().join(",")
                };
                html! {
                <>
                <p class="status done" id="scan-done" role="status"
                    data-coordinator-wasm-bytes={cost.coordinator_wasm_bytes.to_string()}
                    data-scanner-wasm-bytes={list(&|w| w.wasm_bytes.to_string())}
                    data-scanner-bytes={list(&|w| w.bytes.to_string())}
                    data-scanner-read-ms={list(&|w| format!("{:.1}", w.read_ms))}
                    data-scanner-compute-ms={list(&|w| format!("{:.1}", w.compute_ms))}>
                    {format!("Scan complete: {} in {:.2} s ({:.1} MB/s, {} thread{}).", format::bytes(*bytes), millis / 1e3,
                        format::rate_mb_s(*bytes, *millis).unwrap_or(0.0), threads, if *threads == 1 {""} else {"s"})}
                    { match cost.compute_mb_s() {
                        Some(c) => format!(" Compute alone: {c:.0} MB/s; worker memory (wasm): {}.", format::bytes(cost.wasm_bytes())),
                        None => format!(" Worker memory (wasm): {}.", format::bytes(cost.wasm_bytes())),
                    } }
                </p>
                <button id="scan-start" onclick={ctx.link().callback(|_| Msg::StartScan)}>{"Scan again"}</button>
                </>
                }
            }
            Scan::Cancelled(p) => html! {
                <>
                <p class="status" id="scan-cancelled" role="status">
                    {format!("Scan cancelled after {} of {}.", format::bytes(p.done_bytes), format::bytes(p.total_bytes))}
                </p>
                <button id="scan-start" onclick={ctx.link().callback(|_| Msg::StartScan)}>{"Restart scan"}</button>
                </>
            },
            Scan::Failed(m) => html! {
                <p class="status error" id="scan-failed" role="alert">{format!("The scan failed: {m}")}</p>
            },
        };
        html! {
            <section id="scan" class="card" aria-labelledby="scan-h">
                <h2 id="scan-h">{"Deep scan"}</h2>
                { body }
            </section>
        }
    }

    fn view_findings(&self, ctx: &Context<Self>, r: &Report) -> Html {
        let index_of = |name: &str| r.tensors.iter().position(|t| t.name == name);
        let group = |sev: Severity, title: &str| {
            let items: Vec<&Finding> = r.findings.iter().filter(|f| f.severity == sev).collect();
            if items.is_empty() {
                return html! {};
            }
            html! {
                <div class={classes!("group", sev.as_str())}>
                    <h3>{format!("{title} ({})", items.len())}</h3>
                    <ul>
                    { for items.into_iter().map(|f| {
                        let tensor = f.tensor.as_ref().map(|t| {
                            let i = index_of(t);
                            let name = t.clone();
                            match i {
                                Some(i) => html!{ <button class="link" onclick={ctx.link().callback(move |_| Msg::Select(Some(i)))}
                                    aria-label={format!("Show tensor {name}")}>{t}</button> },
                                None => html!{ <code>{t}</code> },
                            }
                        });
                        html!{
                            <li class="finding" data-code={f.code.clone()}>
                                <p><span class={classes!("sev", f.severity.as_str())}>{f.severity.as_str()}</span>
                                   {" "}<code class="code">{&f.code}</code>
                                   { match tensor { Some(t) => html!{<>{" · "}{t}</>}, None => html!{} } }</p>
                                <p class="evidence">{&f.message}</p>
                                <p class="hint">{"Fix: "}{&f.hint}</p>
                            </li>
                        }
                    }) }
                    </ul>
                </div>
            }
        };
        html! {
            <section id="findings" class="card" aria-labelledby="findings-h">
                <h2 id="findings-h">{format!("Findings ({})", r.findings.len())}</h2>
                { if r.findings.is_empty() { html!{ <p>{"No findings."}</p> } } else { html!{} } }
                { group(Severity::Error, "Errors") }
                { group(Severity::Warning, "Warnings") }
                { group(Severity::Info, "Notes") }
            </section>
        }
    }

    fn view_tensors(&self, ctx: &Context<Self>, r: &Report) -> Html {
        let rows = format::table_rows(&r.tensors, &self.stats, &self.query);
        let pages = rows.len().div_ceil(PAGE_ROWS).max(1);
        let page = self.page.min(pages - 1);
        let q = self.query.clone();
        let on_name = {
            let q = q.clone();
            ctx.link().callback(move |e: InputEvent| {
                let i: HtmlInputElement = e.target_unchecked_into();
                Msg::Query(TableQuery {
                    name: i.value(),
                    ..q.clone()
                })
            })
        };
        let on_type = {
            let q = q.clone();
            ctx.link().callback(move |e: Event| {
                let s: web_sys::HtmlSelectElement = e.target_unchecked_into();
                Msg::Query(TableQuery {
                    dtype: s.value(),
                    ..q.clone()
                })
            })
        };
        let header = |key: SortKey, label: &str| {
            let q = q.clone();
            let active = q.sort == key;
            let arrow = match (active, q.descending) {
                (true, false) => " ▲",
                (true, true) => " ▼",
                _ => "",
            };
            let sort = if active {
                if q.descending {
                    "descending"
                } else {
                    "ascending"
                }
            } else {
                "none"
            };
            html! {
                <th scope="col" aria-sort={sort}>
                    <button class="sort" onclick={ctx.link().callback(move |_| Msg::Query(TableQuery {
                        sort: key, descending: active && !q.descending, ..q.clone() }))}>{format!("{label}{arrow}")}</button>
                </th>
            }
        };
        html! {
            <section id="tensors" class="card" aria-labelledby="tensors-h">
                <h2 id="tensors-h">{format!("Tensors ({})", r.tensors.len())}</h2>
                <div class="filters">
                    <label>{"Name "}<input id="tensor-filter" type="search" value={q.name.clone()} oninput={on_name} placeholder="filter by name" /></label>
                    <label>{"Type "}<select id="type-filter" onchange={on_type}>
                        <option value="" selected={q.dtype.is_empty()}>{"all"}</option>
                        { for format::dtypes(&r.tensors).into_iter().map(|d| html!{ <option value={d.clone()} selected={q.dtype == d}>{d.clone()}</option> }) }
                    </select></label>
                    <span class="count">{format!("{} shown", rows.len())}</span>
                </div>
                <div class="table-wrap">
                <table class="tensors">
                    <thead><tr>
                        { header(SortKey::Index, "#") }
                        { header(SortKey::Name, "Name") }
                        { header(SortKey::Type, "Type") }
                        <th scope="col">{"Shape"}</th>
                        { header(SortKey::Bytes, "Size") }
                        { header(SortKey::Std, "Std") }
                        { header(SortKey::Nan, "NaN/Inf") }
                    </tr></thead>
                    <tbody>
                    { for rows.iter().skip(page * PAGE_ROWS).take(PAGE_ROWS).map(|&i| {
                        let t = &r.tensors[i];
                        let s = self.stats.get(i).and_then(|s| s.as_ref());
                        let bad = s.map(|s| s["nan"].as_u64().unwrap_or(0) + s["inf"].as_u64().unwrap_or(0)).unwrap_or(0);
                        let status = match (s, self.scan_errors.get(i).and_then(|e| e.as_ref())) {
                            (Some(_), _) => bad.to_string(),
                            (None, Some(_)) => "error".to_string(),
                            (None, None) => "…".to_string(),
                        };
                        html!{
                            <tr class={classes!((Some(i) == self.selected).then_some("selected"), (bad > 0).then_some("bad"))}>
                                <td class="num">{i}</td>
                                <td><button class="link" onclick={ctx.link().callback(move |_| Msg::Select(Some(i)))}>{&t.name}</button></td>
                                <td>{&t.dtype}</td>
                                <td>{format::shape(&t.shape)}</td>
                                <td class="num">{format::bytes(t.nbytes)}</td>
                                <td class="num">{format::num(s.and_then(|s| s.get("std")))}</td>
                                <td class="num">{status}</td>
                            </tr>
                        }
                    }) }
                    </tbody>
                </table>
                </div>
                { if pages > 1 { html!{
                    <nav class="pager" aria-label="Tensor pages">
                        <button disabled={page == 0} onclick={ctx.link().callback(move |_| Msg::Page(page.saturating_sub(1)))}>{"← Previous"}</button>
                        <span>{format!("Page {} of {pages}", page + 1)}</span>
                        <button disabled={page + 1 >= pages} onclick={ctx.link().callback(move |_| Msg::Page(page + 1))}>{"Next →"}</button>
                    </nav>
                } } else { html!{} } }
            </section>
        }
    }

    fn view_detail(&self, ctx: &Context<Self>, r: &Report) -> Html {
        let Some(i) = self.selected else {
            return html! {};
        };
        let Some(t) = r.tensors.get(i) else {
            return html! {};
        };
        let s = self.stats.get(i).and_then(|s| s.as_ref());
        let err = self.scan_errors.get(i).and_then(|e| e.as_ref());
        let related: Vec<&Finding> = r
            .findings
            .iter()
            .filter(|f| f.tensor.as_deref() == Some(&t.name))
            .collect();
        let row = |k: &str, v: String| html! { <><dt>{k.to_string()}</dt><dd>{v}</dd></> };
        html! {
            <section id="detail" class="card" aria-labelledby="detail-h">
                <h2 id="detail-h" tabindex="-1" ref={self.detail_ref.clone()}>{format!("Tensor {}", t.name)}</h2>
                <button class="close" onclick={ctx.link().callback(|_| Msg::Select(None))} aria-label="Close tensor detail">{"Close"}</button>
                <dl class="facts">
                    { row("Type", t.dtype.clone()) }
                    { row("Encoding", t.encoding.clone()) }
                    { row("Shape", format::shape(&t.shape)) }
                    { row("Stored bytes", format::bytes(t.nbytes)) }
                    { if self.shared.is_none() { row("Offset", t.offset.to_string()) } else { html!{} } }
                </dl>
                { for related.iter().map(|f| html!{ <p class={classes!("sev-line", f.severity.as_str())}>
                    <code>{&f.code}</code>{": "}{&f.message}</p> }) }
                { match (s, err) {
                    (Some(s), _) => html!{ <>
                        <dl class="facts stats" id="detail-stats">
                            { for ["elements", "finite", "nan", "inf", "zeros", "min", "max", "mean", "std", "rms", "abs_max"].iter()
                                .filter(|k| s.get(**k).is_some())
                                .map(|k| stat_row(k, &s[*k])) }
                            { match s.get("content_hash").and_then(Value::as_str) { Some(h) => row("content hash", h.to_string()), None => html!{} } }
                        </dl>
                        { histogram(s) }
                        { scales(s) }
                        { rows(s) }
                    </> },
                    (None, Some(e)) => html!{ <p class="status error">{format!("No statistics: {e}")}</p> },
                    (None, None) => html!{ <p class="status">{"Statistics appear when the scan reaches this tensor."}</p> },
                } }
            </section>
        }
    }

    fn view_metadata(&self, r: &Report) -> Html {
        if r.metadata.is_empty() {
            return html! {};
        }
        let (long, short): (Vec<_>, Vec<_>) = r
            .metadata
            .iter()
            .partition(|(_, v)| format::is_long_text(v));
        html! {
            <section id="metadata" class="card" aria-labelledby="metadata-h">
                <h2 id="metadata-h">{format!("Metadata ({})", r.metadata.len())}</h2>
                <div class="table-wrap">
                <table class="meta">
                    <thead><tr><th scope="col">{"Key"}</th><th scope="col">{"Value"}</th></tr></thead>
                    <tbody>
                    { for short.iter().map(|(k, v)| html!{ <tr><td><code>{k.as_str()}</code></td><td class="value">{format::meta_value(v)}</td></tr> }) }
                    </tbody>
                </table>
                </div>
                { for long.iter().map(|(k, v)| html!{
                    <details class="long-text">
                        <summary><code>{k.as_str()}</code>{format!(" ({} characters)", v.as_str().map(|s| s.chars().count()).unwrap_or(0))}</summary>
                        <pre>{v.as_str().unwrap_or_default()}</pre>
                    </details>
                }) }
            </section>
        }
    }

    fn view_share(&self, ctx: &Context<Self>) -> Html {
        if self.shared.is_some() {
            return html! {};
        }
        let on_toggle = ctx.link().callback(|e: Event| {
            let i: HtmlInputElement = e.target_unchecked_into();
            Msg::IncludeMetadata(i.checked())
        });
        html! {
            <section id="share" class="card" aria-labelledby="share-h">
                <h2 id="share-h">{"Share"}</h2>
                <p>{"The link holds the report in its #fragment, which browsers never send to a server."}</p>
                <label><input id="include-metadata" type="checkbox" checked={self.include_metadata} onchange={on_toggle} />{" Include metadata values"}</label>
                {" "}<button id="copy-link" onclick={ctx.link().callback(|_| Msg::CopyLink)}>{"Copy link"}</button>
                { match &self.link {
                    Some((url, omitted)) => html!{ <>
                        <p><label for="share-link">{format!("Link ({} characters, copied):", url.len())}</label></p>
                        <input id="share-link" class="link-text" readonly=true value={url.clone()} />
                        { match omitted { Some(o) => html!{ <p class="status">{o}</p> }, None => html!{} } }
                    </> },
                    None => html!{},
                } }
            </section>
        }
    }
}

/// A statistic as a person reads it: floats shortened, an absent value as "none".
fn shown_value(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_f64() => format::num(Some(v)),
        Value::Null => "none".to_string(),
        v => v.to_string(),
    }
}

/// A statistic, shown short, with its exact value in `data-value` (for tests and copying).
fn stat_row(key: &str, v: &Value) -> Html {
    let shown = shown_value(v);
    html! { <><dt>{key.to_string()}</dt><dd data-key={key.to_string()} data-value={v.to_string()}>{shown}</dd></> }
}

fn histogram(s: &Value) -> Html {
    let Some(h) = s.get("histogram") else {
        return html! {};
    };
    let Some(counts) = h.get("counts").and_then(Value::as_array) else {
        return html! {};
    };
    let counts: Vec<u64> = counts.iter().map(|c| c.as_u64().unwrap_or(0)).collect();
    let min_exp = h.get("min_exp").and_then(Value::as_i64).unwrap_or(-40) as i32;
    // Bin 0 (zeros and |x| < 2^min_exp) sits 40 octaves below typical weights: it is
    // counted in the caption instead of stretching the axis.
    let tiny = counts.first().copied().unwrap_or(0);
    let (Some(lo), Some(hi)) = (
        counts.iter().skip(1).position(|&c| c > 0).map(|i| i + 1),
        counts.iter().rposition(|&c| c > 0).filter(|&i| i > 0),
    ) else {
        return html! { <p>{format!("No nonzero finite values ({tiny} zero or tiny).")}</p> };
    };
    let bins = &counts[lo..=hi];
    let peak = bins.iter().copied().max().unwrap_or(1).max(1) as f64;
    let (w, hgt) = (600.0, 160.0);
    let bw = w / bins.len() as f64;
    let edge = |i: usize| {
        if i == 0 {
            "0".to_string()
        } else {
            format!("2^{}", min_exp + i as i32 - 1)
        }
    };
    html! {
        <figure class="hist">
            <svg viewBox={format!("0 0 {w} {}", hgt + 20.0)} role="img"
                aria-label={format!("Histogram of |x| on a log2 scale, from {} to {}", edge(lo), edge(hi + 1))}>
                { for bins.iter().enumerate().map(|(k, &c)| {
                    // Square-root heights keep small bins visible next to the peak.
                    let bh = (c as f64 / peak).sqrt() * hgt;
                    html!{ <rect x={format!("{:.1}", k as f64 * bw + 1.0)} y={format!("{:.1}", hgt - bh)}
                        width={format!("{:.1}", (bw - 2.0).max(1.0))} height={format!("{bh:.1}")}>
                        <title>{format!("{} ≤ |x| < {}: {c}", edge(lo + k), edge(lo + k + 1))}</title>
                    </rect> }
                }) }
                <text x="0" y={format!("{}", hgt + 16.0)}>{edge(lo)}</text>
                <text x={format!("{w}")} y={format!("{}", hgt + 16.0)} text-anchor="end">{edge(hi + 1)}</text>
            </svg>
            <figcaption>{format!("Histogram of |x| (log2 bins, square-root heights); {tiny} values are zero or below {}.", edge(1))}</figcaption>
        </figure>
    }
}

fn scales(s: &Value) -> Html {
    let Some(sc) = s.get("scales").filter(|v| v.is_object()) else {
        return html! {};
    };
    let Some(m) = sc.as_object() else {
        return html! {};
    };
    html! {
        <div class="scales">
            <h3>{"Block scales"}</h3>
            <dl class="facts">
                { for m.iter().map(|(k, v)| html!{ <><dt>{k.replace('_', " ")}</dt><dd>{shown_value(v)}</dd></> }) }
            </dl>
        </div>
    }
}

fn rows(s: &Value) -> Html {
    let Some(m) = s.get("rows").and_then(Value::as_object) else {
        return html! {};
    };
    html! {
        <div class="rows">
            <h3>{"Row RMS"}</h3>
            <dl class="facts">
                { for m.iter().map(|(k, v)| html!{ <><dt>{k.replace('_', " ")}</dt><dd>{shown_value(v)}</dd></> }) }
            </dl>
        </div>
    }
}
