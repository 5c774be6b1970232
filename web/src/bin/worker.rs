//! The worker's binary: the coordinator and the scan workers (see `quantdoc_web::worker`).

#[cfg(target_arch = "wasm32")]
fn main() {
    quantdoc_web::worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("quantdoc-worker runs in a browser worker: build it with `trunk build`");
    std::process::exit(2);
}
