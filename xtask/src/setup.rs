//! `cargo xtask setup`: installs what is missing and nothing else.
//!
//! Every step checks first, so a machine with everything present is done in seconds.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::Digest;

use crate::util::{hex, on_path, output, status};

/// Pinned S3 server for the blob tests (newer versions need a newer rustc).
const S3S_FS_VERSION: &str = "0.14.1";
/// Debian's Rust with sources, for a wasm32 standard library when rustup lacks the target.
const WEB_PACKAGES: &[&str] = &["rustc-web", "cargo-web", "rust-web-src", "lld-22"];
pub const WASM_SYSROOT: &str = "/usr/lib/rustlib/wasm32-unknown-unknown/lib";
/// lld-22's linker; one program for every flavor (rustc passes `-flavor wasm`).
const DEBIAN_LLD: &str = "/usr/lib/llvm-22/bin/lld";
/// Debian's Chromium, driven by playwright-core in the browser tests and the desktop bench.
const BROWSER_PACKAGES: &[&str] = &["chromium"];
/// Local terminal sandboxes: namespaces (bubblewrap, util-linux's unshare, nsenter and
/// setpriv), home images (ext4, loop mounts), each sandbox's network (slirp4netns behind
/// nftables rules, set up with iproute2).
const SANDBOX_PACKAGES: &[&str] = &[
    "bubblewrap",
    "e2fsprogs",
    "mount",
    "util-linux",
    "slirp4netns",
    "nftables",
    "iproute2",
];
/// The programs the agent runs from those packages, each with an argument that only prints
/// its version: what setup proves runs.
const SANDBOX_PROGRAMS: &[(&str, &str)] = &[
    ("bwrap", "--version"),
    ("mkfs.ext4", "-V"),
    ("unshare", "--version"),
    ("nsenter", "--version"),
    ("setpriv", "--version"),
    ("slirp4netns", "--version"),
    ("nft", "--version"),
    ("ip", "-V"),
];

/// How to build for wasm32 on this machine.
pub enum WasmToolchain {
    /// rustup's own toolchain has the target.
    Rustup,
    /// Debian's Rust linked into rustup as `web`, with a std built once.
    DebianWeb,
}

impl WasmToolchain {
    /// How setup's messages name it.
    pub fn name(&self) -> &'static str {
        match self {
            WasmToolchain::Rustup => "rustup",
            WasmToolchain::DebianWeb => "Debian (rustc-web, linked into rustup as `web`)",
        }
    }

    /// A rustup proxy (`cargo`, `rustc`) that runs this toolchain, whatever cargo runs xtask.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_remove("RUSTC").env_remove("RUSTDOC");
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        cmd
    }

    /// Environment for cargo to use this toolchain.
    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            WasmToolchain::Rustup => vec![],
            WasmToolchain::DebianWeb => vec![("RUSTUP_TOOLCHAIN".into(), "web".into())],
        }
    }
}

/// Every Debian package setup may install (the rehearsal of a new machine removes them).
pub const APT_PACKAGES: [&[&str]; 3] = [WEB_PACKAGES, BROWSER_PACKAGES, SANDBOX_PACKAGES];
/// Every crate setup may `cargo install`.
pub const CARGO_TOOLS: [&str; 3] = ["s3s-fs", "wasm-bindgen-cli", "worker-build"];

/// Everything the two README commands need.
pub fn setup() -> Result<()> {
    let started = std::time::Instant::now();
    let wasm = wasm_toolchain()?;
    prove_wasm_link(&wasm)?;
    let [s3s, bindgen, worker_build] = CARGO_TOOLS;
    cargo_tool(s3s, S3S_FS_VERSION, &["--features", "binary"])?;
    // The CLI must match the wasm-bindgen library the web app links, exactly.
    cargo_tool(bindgen, &locked_version("wasm-bindgen")?, &[])?;
    // Builds the Worker; it must match the `worker` crate in Cargo.lock.
    cargo_tool(worker_build, &locked_version("worker")?, &[])?;
    apt_install(BROWSER_PACKAGES)?;
    apt_install(SANDBOX_PACKAGES)?;
    for (program, version) in SANDBOX_PROGRAMS {
        output(program, &[version])
            .with_context(|| format!("{program} was installed but does not run"))?;
    }
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
    link_rust_lld()?;
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

/// Debian's rustc names `rust-lld` as the wasm32 linker and looks for it in its own sysroot,
/// but no Debian package installs that name: without this link a brand-new machine fails
/// its first wasm32 link ("linker `rust-lld` not found"; shared/TOOLCHAIN.md).
fn link_rust_lld() -> Result<()> {
    let link = debian_rust_lld()?;
    // `exists` follows the link, so a dangling one is replaced too.
    if link.exists() {
        return Ok(());
    }
    if !Path::new(DEBIAN_LLD).exists() {
        bail!("{DEBIAN_LLD} is missing although lld-22 is installed: reinstall lld-22");
    }
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(&link).with_context(|| format!("removing {}", link.display()))?;
    }
    std::fs::create_dir_all(link.parent().expect("a bin directory"))?;
    std::os::unix::fs::symlink(DEBIAN_LLD, &link)
        .with_context(|| format!("linking {} to {DEBIAN_LLD}", link.display()))?;
    eprintln!(
        "setup: linked {} -> {DEBIAN_LLD} (the wasm32 linker Debian's rustc names)",
        link.display()
    );
    Ok(())
}

/// Where Debian's rustc looks for `rust-lld`: `<sysroot>/lib/rustlib/<host>/bin/rust-lld`.
fn debian_rust_lld() -> Result<PathBuf> {
    let rustc = "/usr/bin/rustc";
    let sysroot = output(rustc, &["--print", "sysroot"])
        .with_context(|| format!("{rustc} --print sysroot failed (is rustc-web installed?)"))?;
    let version = output(rustc, &["-vV"]).with_context(|| format!("{rustc} -vV failed"))?;
    let host = version
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .with_context(|| format!("{rustc} -vV names no host"))?;
    Ok(Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(host.trim())
        .join("bin/rust-lld"))
}

/// Builds and links a tiny wasm32 `cdylib` (std, fat LTO, panic=abort) through the same
/// cargo, toolchain and target as the desktop and Worker builds, so a missing piece is
/// named here and not eight minutes into the first build. The proof is remembered per
/// toolchain version (a warm run only asks rustc its version).
fn prove_wasm_link(toolchain: &WasmToolchain) -> Result<()> {
    let version = toolchain_output(toolchain, "rustc", &["-vV"])
        .context("the wasm32 toolchain's rustc does not run")?;
    let key = hex(&sha2::Sha256::digest(format!("{}\n{version}", toolchain.name()))[..8]);
    let dir = crate::util::target_dir().join("setup");
    let stamp = dir.join(format!("wasm-link-{key}.ok"));
    if stamp.exists() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let krate = dir.join("wasm-link-proof");
    std::fs::create_dir_all(krate.join("src"))?;
    std::fs::write(krate.join("Cargo.toml"), PROOF_MANIFEST)?;
    std::fs::write(krate.join("src/lib.rs"), PROOF_LIB)?;
    let mut cmd = toolchain.command("cargo");
    cmd.current_dir(&krate)
        .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
        .env("CARGO_TARGET_DIR", krate.join("target"))
        .env_remove("CARGO");
    let out = cmd
        .output()
        .context("starting cargo for the wasm32 link proof")?;
    let wasm = krate.join("target/wasm32-unknown-unknown/release/wasm_link_proof.wasm");
    let linked = std::fs::read(&wasm).is_ok_and(|b| b.starts_with(b"\0asm"));
    if !out.status.success() || !linked {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!(
            "setup: the {} toolchain cannot link wasm32: {}\n--- cargo said (last lines) ---\n{}",
            toolchain.name(),
            wasm_link_diagnosis(toolchain, &stderr),
            last_lines(&stderr, 25)
        );
    }
    std::fs::write(&stamp, version)?;
    eprintln!(
        "setup: the {} toolchain links wasm32 ({:.1} s; proof kept in {})",
        toolchain.name(),
        started.elapsed().as_secs_f64(),
        stamp.display()
    );
    Ok(())
}

const PROOF_MANIFEST: &str = "[package]
name = \"wasm-link-proof\"
version = \"0.0.0\"
edition = \"2021\"
[lib]
crate-type = [\"cdylib\"]
[profile.release]
lto = \"fat\"
panic = \"abort\"
[workspace]
";

/// Uses std's allocator and formatting, so the std rlibs are linked too.
const PROOF_LIB: &str = "#[no_mangle]
pub extern \"C\" fn proof(n: u32) -> u32 {
    format!(\"{n}{n}\").len() as u32
}
";

/// Names the missing piece from a failed wasm32 link.
fn wasm_link_diagnosis(toolchain: &WasmToolchain, stderr: &str) -> String {
    if stderr.contains("linker `rust-lld` not found") {
        return match toolchain {
            WasmToolchain::DebianWeb => format!(
                "the linker `rust-lld` is missing: Debian's rustc looks for it at {} \
                 (setup links it to {DEBIAN_LLD} from lld-22)",
                debian_rust_lld().map_or_else(|e| e.to_string(), |p| p.display().to_string())
            ),
            WasmToolchain::Rustup => "the linker `rust-lld` is missing from rustup's \
                 toolchain: reinstall it (`rustup toolchain install stable`)"
                .into(),
        };
    }
    if stderr.contains("can't find crate for `std`")
        || stderr.contains("can't find crate for `core`")
    {
        return match toolchain {
            WasmToolchain::DebianWeb => format!(
                "the wasm32 standard library is missing from {WASM_SYSROOT}: remove that \
                 directory and run setup again to rebuild it"
            ),
            WasmToolchain::Rustup => "rustup's wasm32-unknown-unknown target is incomplete: \
                 `rustup target remove wasm32-unknown-unknown` and add it again"
                .into(),
        };
    }
    if stderr.contains("linking with") {
        return "the linker ran and failed (see its output below)".into();
    }
    "the build failed (see cargo's output below)".into()
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Output of a program run under the wasm32 toolchain, if it succeeded.
fn toolchain_output(toolchain: &WasmToolchain, program: &str, args: &[&str]) -> Option<String> {
    let out = toolchain.command(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
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
