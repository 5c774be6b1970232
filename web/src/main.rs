//! The page's binary: mounts the Yew app.

#[cfg(target_arch = "wasm32")]
fn main() {
    yew::Renderer::<quantdoc_web::app::App>::new().render();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("quantdoc-web runs in a browser: build it with `trunk build` (see docs/web.md)");
    std::process::exit(2);
}
