//! `cargo xtask setup`: installs what is missing and nothing else.
//!
//! Every step checks first, so a machine with everything present is done in seconds.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::util::{on_path, output, status};

/// Pinned S3 server for the blob tests (newer versions need a newer rustc).
const S3S_FS_VERSION: &str = "0.14.1";
/// Debian's Rust with sources, for a wasm32 standard library when rustup lacks the target.
const WEB_PACKAGES: &[&str] = &["rustc-web", "cargo-web", "rust-web-src", "lld-22"];
const WASM_SYSROOT: &str = "/usr/lib/rustlib/wasm32-unknown-unknown/lib";
/// Debian's Chromium, driven by playwright-core in the browser tests and the desktop bench.
const BROWSER_PACKAGES: &[&str] = &["chromium"];
/// Local terminal sandboxes: namespaces (bubblewrap), home images (ext4, loop mounts).
const SANDBOX_PACKAGES: &[&str] = &["bubblewrap", "e2fsprogs", "mount"];

/// How to build for wasm32 on this machine.
pub enum WasmToolchain {
    /// rustup's own toolchain has the target.
    Rustup,
    /// Debian's Rust linked into rustup as `web`, with a std built once.
    DebianWeb,
}

impl WasmToolchain {
    /// Environment for cargo to use this toolchain.
    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            WasmToolchain::Rustup => vec![],
            WasmToolchain::DebianWeb => vec![("RUSTUP_TOOLCHAIN".into(), "web".into())],
        }
    }
}

/// Everything the two README commands need.
pub fn setup() -> Result<()> {
    let started = std::time::Instant::now();
    wasm_toolchain()?;
    cargo_tool("s3s-fs", S3S_FS_VERSION, &["--features", "binary"])?;
    // The CLI must match the wasm-bindgen library the web app links, exactly.
    cargo_tool("wasm-bindgen-cli", &locked_version("wasm-bindgen")?, &[])?;
    // Builds the Worker; it must match the `worker` crate in Cargo.lock.
    cargo_tool("worker-build", &locked_version("worker")?, &[])?;
    apt_install(BROWSER_PACKAGES)?;
    apt_install(SANDBOX_PACKAGES)?;
    npm_packages()?;
    eprintln!(
        "setup: everything is present ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Makes sure a wasm32 toolchain exists and says which.
pub fn wasm_toolchain() -> Result<WasmToolchain> {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if installed
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        return Ok(WasmToolchain::Rustup);
    }
    // rustup's servers are not among the registries this project may download from, so
    // setup never runs `rustup target add`; a developer who did so takes the branch above.
    apt_install(WEB_PACKAGES)?;
    if !has_wasm_std() {
        build_wasm_std()?;
    }
    let toolchains = output("rustup", &["toolchain", "list"]).unwrap_or_default();
    if !toolchains
        .lines()
        .any(|l| l.split_whitespace().next() == Some("web"))
    {
        let mut cmd = Command::new("rustup");
        cmd.args(["toolchain", "link", "web", "/usr"]);
        status(cmd, "rustup toolchain link web /usr")?;
    }
    Ok(WasmToolchain::DebianWeb)
}

fn has_wasm_std() -> bool {
    std::fs::read_dir(WASM_SYSROOT)
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
        })
        .unwrap_or(false)
}

/// Builds std for wasm32 from Debian's Rust sources, with bitcode so LTO works
/// (shared/TOOLCHAIN.md), and installs it into Debian's sysroot.
fn build_wasm_std() -> Result<()> {
    eprintln!("setup: building the wasm32 standard library once (about a minute)");
    let dir = std::env::temp_dir().join("cloudos-wasm-std");
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"wasmstdseed\"\nversion = \"0.0.0\"\nedition = \"2021\"\n[lib]\ncrate-type = [\"rlib\"]\n[profile.release]\nlto = \"fat\"\n[workspace]\n",
    )?;
    std::fs::write(dir.join("src/lib.rs"), "pub fn seed() -> u32 { 1 }\n")?;
    let mut cmd = Command::new("/usr/bin/cargo");
    cmd.current_dir(&dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "-Zbuild-std=std,panic_abort",
        ])
        .env("RUSTC", "/usr/bin/rustc")
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTFLAGS", "-C embed-bitcode=yes")
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO");
    status(cmd, "building the wasm32 std")?;
    let deps = dir.join("target/wasm32-unknown-unknown/release/deps");
    std::fs::create_dir_all(WASM_SYSROOT)?;
    for entry in std::fs::read_dir(&deps)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name.starts_with("lib") && name.ends_with(".rlib") && !name.starts_with("libwasmstdseed")
        {
            std::fs::copy(&path, Path::new(WASM_SYSROOT).join(&name))
                .with_context(|| format!("installing {name}"))?;
        }
    }
    if !has_wasm_std() {
        bail!("the wasm32 std build produced no libstd");
    }
    Ok(())
}

/// Installs Debian packages that are not installed yet.
pub fn apt_install(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            output("dpkg-query", &["-W", "-f=${Status}", p])
                .is_none_or(|s| !s.contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !on_path("apt-get") {
        bail!(
            "these packages are missing and there is no apt-get: {}",
            missing.join(" ")
        );
    }
    eprintln!("setup: apt-get install {}", missing.join(" "));
    let mut update = Command::new("apt-get");
    update.args(["update", "-qq"]);
    status(update, "apt-get update")?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    status(install, "apt-get install")
}

/// Installs the npm packages of the committed lockfile when `node_modules` is older than it
/// (no lockfile yet: the Worker and desktop issues bring the first packages).
fn npm_packages() -> Result<()> {
    let root = crate::util::root();
    let lock = root.join("package-lock.json");
    if !lock.exists() {
        return Ok(());
    }
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let installed = modified(&root.join("node_modules/.package-lock.json"));
    if installed.is_some() && installed >= modified(&lock) {
        return Ok(());
    }
    eprintln!("setup: npm ci");
    let mut cmd = Command::new("npm");
    cmd.args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&root);
    status(cmd, "npm ci")
}

/// The version of `package` in Cargo.lock.
fn locked_version(package: &str) -> Result<String> {
    let lock = std::fs::read_to_string(crate::util::root().join("Cargo.lock"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{package}\"") {
            if let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = \"")) {
                return Ok(v.trim_end_matches('"').to_owned());
            }
        }
    }
    bail!("{package} is not in Cargo.lock")
}

/// The `wasm-bindgen` binary that setup installs.
pub fn wasm_bindgen_bin() -> std::path::PathBuf {
    cargo_bin("wasm-bindgen")
}

/// A binary `cargo install` put in `$CARGO_HOME/bin`.
pub fn cargo_bin(name: &str) -> std::path::PathBuf {
    let home = std::env::var_os("CARGO_HOME").map_or_else(
        || std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"),
        std::path::PathBuf::from,
    );
    home.join("bin").join(name)
}

/// Installs a pinned cargo binary when it is missing or another version.
fn cargo_tool(name: &str, version: &str, extra: &[&str]) -> Result<()> {
    let listed = output("cargo", &["install", "--list"]).unwrap_or_default();
    if listed
        .lines()
        .any(|l| l.starts_with(&format!("{name} v{version}:")))
    {
        return Ok(());
    }
    eprintln!("setup: cargo install {name} {version}");
    let mut cmd = Command::new("cargo");
    cmd.args(["install", name, "--version", version])
        .args(extra)
        .env_remove("CARGO_TARGET_DIR");
    status(cmd, &format!("cargo install {name}"))
}
