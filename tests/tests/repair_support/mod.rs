//! Helpers for the repair/convert/requantize tests: the quantdoc binary, and a virtualenv
//! with the reference Python libraries (gguf 0.19.0, numpy, safetensors) under
//! `.cache/gguf-venv` that scripts/gguf-py-check.py runs in.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The quantdoc binary of this build, built on first use (the tests crate cannot depend on
/// a binary target directly).
pub fn quantdoc() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // <target>/<profile>/deps/<test> -> <target>/<profile>
        let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
        let target = profile_dir.parent().expect("target root");
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace_root())
            .args(["build", "-q", "-p", "quantdoc", "--bin", "quantdoc"])
            .env("CARGO_TARGET_DIR", target);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p quantdoc failed");
        let bin = profile_dir.join(format!("quantdoc{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.is_file(), "{} missing after build", bin.display());
        bin
    })
}

pub fn run(args: &[&str]) -> Output {
    Command::new(quantdoc())
        .args(args)
        .output()
        .expect("run quantdoc")
}

pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "quantdoc {args:?} failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Python of the reference virtualenv, created on first use; None (after saying why) when
/// python3 or PyPI is unavailable.
pub fn gguf_py(test: &str) -> Option<&'static Path> {
    static PY: OnceLock<Option<PathBuf>> = OnceLock::new();
    let py = PY.get_or_init(make_venv);
    if py.is_none() {
        eprintln!("SKIPPED {test}: no Python virtualenv with gguf==0.19.0 (python3 -m venv or pip failed)");
    }
    py.as_deref()
}

fn make_venv() -> Option<PathBuf> {
    let cache = workspace_root().join(".cache");
    let venv = cache.join("gguf-venv");
    let python = venv.join("bin").join("python");
    let ready = |py: &Path| {
        Command::new(py)
            .args(["-c", "import gguf, numpy, safetensors; assert gguf.__version__ if hasattr(gguf,'__version__') else True"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ready(&python) {
        return Some(python);
    }
    std::fs::create_dir_all(&cache).ok()?;
    // Build beside the final name and rename, so concurrent test binaries never see a
    // half-installed environment.
    let tmp = cache.join(format!("gguf-venv.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&tmp)
        .status()
        .is_ok_and(|s| s.success());
    let tmp_py = tmp.join("bin").join("python");
    let installed = made
        && Command::new(&tmp_py)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "gguf==0.19.0",
                "numpy",
                "safetensors",
            ])
            .status()
            .is_ok_and(|s| s.success());
    if installed && std::fs::rename(&tmp, &venv).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    ready(&python).then_some(python)
}

/// Run `scripts/<name>` with `args` in `py`; panics with its stderr on failure, returns
/// its stdout.
pub fn py_script(py: &Path, name: &str, args: &[&str]) -> String {
    let script = workspace_root().join("scripts").join(name);
    let out = Command::new(py)
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run scripts/gguf-py-check.py with `args`.
pub fn check_script(py: &Path, args: &[&str]) -> String {
    py_script(py, "gguf-py-check.py", args)
}

/// Run scripts/gguf-py-fixtures.py (fresh fixtures made by gguf-py at test time) with `args`.
pub fn fixtures_script(py: &Path, args: &[&str]) -> String {
    py_script(py, "gguf-py-fixtures.py", args)
}

/// A fresh scratch directory under the target dir (kept small; removed by the test).
pub fn scratch(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .unwrap()
        .join(format!("repair-scratch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
