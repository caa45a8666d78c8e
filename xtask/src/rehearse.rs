//! `cargo xtask rehearse`: the README's two commands as a brand-new machine runs them, on
//! a machine where setup already ran.
//!
//! A green CI on a developer's machine can hide a missing install step, because whatever was
//! once installed by hand is still there. The rehearsal runs in a mount namespace of its own
//! (`unshare`) where `/usr`, `/etc`, `/var`, `/opt` and the home directory are overlays with
//! their writes in memory, gone with the rehearsal. (Debian 12's bubblewrap 0.8 has no
//! overlays, so the mounts are made here.) Inside, it first takes away everything setup
//! installs and everything a new machine has not downloaded yet, then runs, in a fresh clone
//! of HEAD with an empty build cache, `cargo xtask run` until the desktop answers and
//! `cargo xtask test` to the end, and reports how long each took.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::setup;
use crate::util::{on_path, output, root, status};

/// Where the rehearsal keeps its clone, build output and downloads: on disk, and outside
/// every overlaid tree so that it stays reachable by its path.
const DEFAULT_DIR: &str = "/srv/cloudos-rehearsal";
/// The machine state a new machine does not have; each becomes a throwaway overlay.
const OVERLAID: [&str; 4] = ["/usr", "/etc", "/var", "/opt"];
/// How long the first command may take to serve the desktop.
const RUN_DEADLINE: Duration = Duration::from_secs(60 * 60);
/// How long the test command may take (CI's limit).
const TEST_DEADLINE: Duration = Duration::from_secs(90 * 60);
/// Marks a directory as the rehearsal's, so that only such a directory is ever emptied.
const MARKER: &str = ".cloudos-rehearsal";

/// Starts the rehearsal: prepares its directory and re-enters xtask in a mount namespace.
pub fn rehearse() -> Result<()> {
    if output("id", &["-u"]).as_deref().map(str::trim) != Some("0") {
        bail!("the rehearsal mounts overlays and installs Debian packages in them: run it as root");
    }
    let dirty = output(
        "git",
        &["-C", &root().to_string_lossy(), "status", "--porcelain"],
    );
    if dirty.is_some_and(|d| !d.trim().is_empty()) {
        eprintln!("rehearse: uncommitted changes are not rehearsed (it clones HEAD, as CI does)");
    }
    let work = work_dir()?;
    let home = PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?);
    for (what, dir) in [
        ("CARGO_HOME", cargo_home(&home)),
        ("RUSTUP_HOME", rustup_home(&home)),
    ] {
        if !OVERLAID
            .iter()
            .map(Path::new)
            .chain([home.as_path()])
            .any(|o| dir.starts_with(o))
        {
            bail!(
                "{what} ({}) is outside the overlaid trees: the rehearsal would change it for real",
                dir.display()
            );
        }
    }
    for sub in ["registry", "tmp", "overlay"] {
        std::fs::create_dir_all(work.join(sub))?;
    }
    // /tmp is bound to this directory inside: it needs /tmp's mode.
    std::fs::set_permissions(work.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    let mut git = Command::new("git");
    git.args(["clone", "--quiet"])
        .arg(root())
        .arg(work.join("clone"));
    status(git, "git clone")?;
    eprintln!(
        "rehearse: a brand-new machine in overlays; the clone (with its target/) and downloads in {}",
        work.display()
    );
    // A private mount namespace (nothing mounted inside is seen outside) and a pid
    // namespace whose init is a shell (it reaps orphans): when the rehearsal ends, or is
    // interrupted, every process it started ends with it.
    let mut inner = Command::new("unshare");
    inner
        .args(["--mount", "--propagation", "private"])
        .args(["--pid", "--fork", "--kill-child", "--mount-proc", "--"])
        .args(["bash", "-c", "\"$0\" rehearse --inside \"$1\" & wait $!"])
        .arg(std::env::current_exe()?)
        .arg(&work)
        // The README's commands build into the clone's own target/.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTUP_TOOLCHAIN");
    status(inner, "the rehearsal")
}

/// Inside the namespace: overlay the machine, forget what setup installed, run the two
/// commands.
pub fn inside(work: &Path) -> Result<()> {
    // Started by `rehearse`, the parent is the shell that is process 1 of the new pid
    // namespace. Run by hand in the host's namespace, the overlays would strip the machine.
    if std::os::unix::process::parent_id() != 1 {
        bail!("`rehearse --inside` runs only inside the namespace `cargo xtask rehearse` makes");
    }
    overlay_machine(work)?;
    forget()?;
    let clone = work.join("clone");
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    eprintln!("rehearse: `cargo xtask run` (serving on {addr} through CLOUDOS_ADDR)");
    let started = Instant::now();
    let mut run = Command::new("cargo");
    run.args(["xtask", "run"])
        .current_dir(&clone)
        .env("CLOUDOS_ADDR", &addr)
        .process_group(0);
    let mut server = run.spawn().context("starting cargo xtask run")?;
    let served = wait_for_desktop(&mut server, &addr, started);
    stop_group(&mut server);
    let served = served?;
    eprintln!("rehearse: `cargo xtask run` served the desktop after {served:.0} s");

    let started = Instant::now();
    let mut test = Command::new("cargo");
    test.args(["xtask", "test"])
        .current_dir(&clone)
        .process_group(0);
    let mut test = test.spawn().context("starting cargo xtask test")?;
    let tested = loop {
        if let Some(st) = test.try_wait()? {
            break if st.success() {
                Ok(())
            } else {
                Err(anyhow::anyhow!("it exited with {st}"))
            };
        }
        if started.elapsed() > TEST_DEADLINE {
            stop_group(&mut test);
            break Err(anyhow::anyhow!(
                "it ran past {TEST_DEADLINE:?} (CI's limit)"
            ));
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    let took = started.elapsed().as_secs_f64();
    match tested {
        Ok(()) => {
            eprintln!(
                "rehearse: on a brand-new machine, `cargo xtask run` served the desktop after \
                 {served:.0} s and `cargo xtask test` passed in {took:.0} s"
            );
            Ok(())
        }
        Err(e) => bail!("`cargo xtask test` failed after {took:.0} s: {e}"),
    }
}

/// Makes the machine's state copy-on-write, with the writes in memory; the rehearsal's
/// own directory, its crate registry and `/tmp` stay on disk.
fn overlay_machine(work: &Path) -> Result<()> {
    let layers = work.join("overlay");
    mount(&["-t", "tmpfs", "rehearsal", &layers.to_string_lossy()])?;
    let home = PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?);
    let cargo_home = cargo_home(&home);
    for (i, dir) in OVERLAID
        .iter()
        .map(Path::new)
        .chain([home.as_path()])
        .enumerate()
    {
        let (upper, scratch) = (
            layers.join(format!("{i}/upper")),
            layers.join(format!("{i}/work")),
        );
        std::fs::create_dir_all(&upper)?;
        std::fs::create_dir_all(&scratch)?;
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            dir.display(),
            upper.display(),
            scratch.display()
        );
        mount(&[
            "-t",
            "overlay",
            "overlay",
            "-o",
            &options,
            &dir.to_string_lossy(),
        ])?;
    }
    std::fs::create_dir_all(cargo_home.join("registry"))?;
    for (from, to) in [
        (work.join("registry"), cargo_home.join("registry")),
        (work.join("tmp"), PathBuf::from("/tmp")),
    ] {
        mount(&["--bind", &from.to_string_lossy(), &to.to_string_lossy()])?;
    }
    Ok(())
}

fn cargo_home(home: &Path) -> PathBuf {
    std::env::var_os("CARGO_HOME").map_or_else(|| home.join(".cargo"), PathBuf::from)
}

fn rustup_home(home: &Path) -> PathBuf {
    std::env::var_os("RUSTUP_HOME").map_or_else(|| home.join(".rustup"), PathBuf::from)
}

/// The rehearsal's directory, emptied: an absolute path outside every overlaid tree, not
/// an ancestor of the repository or the home, and emptied only if an earlier rehearsal
/// marked it.
fn work_dir() -> Result<PathBuf> {
    let asked = std::env::var_os("CLOUDOS_REHEARSAL_DIR")
        .map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from);
    if !asked.is_absolute() {
        bail!("CLOUDOS_REHEARSAL_DIR must be an absolute path");
    }
    let parent = asked
        .parent()
        .context("CLOUDOS_REHEARSAL_DIR cannot be /")?;
    let name = asked
        .file_name()
        .context("CLOUDOS_REHEARSAL_DIR has no name")?;
    let work = std::fs::canonicalize(parent)
        .with_context(|| format!("{} does not exist", parent.display()))?
        .join(name);
    let home = std::fs::canonicalize(std::env::var_os("HOME").context("HOME is not set")?)?;
    let repo = std::fs::canonicalize(root())?;
    if OVERLAID.iter().any(|d| work.starts_with(d))
        || work.starts_with(&home)
        || work.starts_with("/tmp")
        || repo.starts_with(&work)
        || home.starts_with(&work)
    {
        bail!(
            "{} cannot hold a rehearsal: choose a directory outside {OVERLAID:?}, /tmp, the \
             home and the repository (CLOUDOS_REHEARSAL_DIR)",
            work.display()
        );
    }
    if work.symlink_metadata().is_ok() {
        if !work.join(MARKER).exists() {
            bail!(
                "{} exists and is not an earlier rehearsal's (no {MARKER}): remove it yourself",
                work.display()
            );
        }
        std::fs::remove_dir_all(&work).with_context(|| format!("emptying {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;
    std::fs::write(
        work.join(MARKER),
        "made by cargo xtask rehearse; emptied by the next one\n",
    )?;
    Ok(work)
}

fn mount(args: &[&str]) -> Result<()> {
    let mut cmd = Command::new("mount");
    cmd.args(args);
    status(cmd, &format!("mount {}", args.join(" ")))
}

/// Takes away, inside the overlay, what a brand-new machine does not have.
fn forget() -> Result<()> {
    // Packages a new Debian machine always has (priority required or important) stay.
    let installed: Vec<&str> = setup::APT_PACKAGES
        .iter()
        .flat_map(|group| group.iter().copied())
        .filter(|p| {
            output("dpkg-query", &["-W", "-f=${Status} ${Priority}", p]).is_some_and(|s| {
                s.contains("install ok installed")
                    && !s.ends_with("required")
                    && !s.ends_with("important")
            })
        })
        .collect();
    if !installed.is_empty() {
        // No service is stopped or started by package scripts: /run and the init system
        // are the host's.
        std::fs::write("/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n")?;
        std::fs::set_permissions(
            "/usr/sbin/policy-rc.d",
            std::fs::Permissions::from_mode(0o755),
        )?;
        // What these packages pulled in goes too, but nothing else: of the packages apt
        // could autoremove afterwards, only their (recursive) dependencies.
        let depends = output(
            "apt-cache",
            &[
                &[
                    "depends",
                    "--recurse",
                    "--no-recommends",
                    "--no-suggests",
                    "--no-conflicts",
                    "--no-breaks",
                    "--no-replaces",
                    "--no-enhances",
                ][..],
                &installed[..],
            ]
            .concat(),
        )
        .unwrap_or_default();
        let depends: std::collections::HashSet<&str> = depends
            .lines()
            .filter(|l| !l.starts_with(' '))
            .map(str::trim)
            .collect();
        apt(&[&["purge"][..], &installed[..]].concat())?;
        let removable = output("apt-get", &["-s", "autoremove"]).unwrap_or_default();
        let pulled_in: Vec<&str> = removable
            .lines()
            .filter_map(|l| l.strip_prefix("Remv ")?.split_whitespace().next())
            .filter(|p| depends.contains(p))
            .collect();
        if !pulled_in.is_empty() {
            apt(&[&["purge"][..], &pulled_in[..]].concat())?;
        }
        eprintln!(
            "rehearse: removed {} and what they pulled in ({} packages)",
            installed.join(" "),
            pulled_in.len()
        );
    }
    // What setup adds to Debian's Rust outside any package: the wasm32 std and rust-lld.
    remove_all(
        Path::new(setup::WASM_SYSROOT)
            .parent()
            .expect("a target directory"),
    )?;
    for host in std::fs::read_dir("/usr/lib/rustlib")
        .into_iter()
        .flatten()
        .flatten()
    {
        let link = host.path().join("bin/rust-lld");
        if link
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            std::fs::remove_file(&link)?;
        }
    }
    // The package lists and archives a new machine has not downloaded yet.
    for dir in ["/var/lib/apt/lists", "/var/cache/apt/archives"] {
        for entry in std::fs::read_dir(dir)?.flatten() {
            if entry.file_type()?.is_file() && entry.file_name() != "lock" {
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    let toolchains = output("rustup", &["toolchain", "list"]).unwrap_or_default();
    if toolchains
        .lines()
        .any(|l| l.split_whitespace().next() == Some("web"))
    {
        let mut cmd = Command::new("rustup");
        cmd.args(["toolchain", "uninstall", "web"]);
        status(cmd, "rustup toolchain uninstall web")?;
    }
    let targets = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if targets
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        let mut cmd = Command::new("rustup");
        cmd.args(["target", "remove", "wasm32-unknown-unknown"]);
        status(cmd, "rustup target remove wasm32-unknown-unknown")?;
    }
    let listed = output("cargo", &["install", "--list"]).unwrap_or_default();
    for tool in setup::CARGO_TOOLS {
        if listed.lines().any(|l| l.starts_with(&format!("{tool} v"))) {
            let mut cmd = Command::new("cargo");
            cmd.args(["uninstall", "--quiet", tool]);
            status(cmd, &format!("cargo uninstall {tool}"))?;
        }
    }
    // Download caches a new machine has not filled yet (the crate registry is bound empty).
    let home = PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?);
    for cache in [
        home.join(".npm"),
        home.join(".cache"),
        cargo_home(&home).join("git"),
    ] {
        remove_all(&cache)?;
    }
    for (what, gone) in [
        ("chromium", !on_path("chromium")),
        ("bwrap", !on_path("bwrap")),
        ("wasm-bindgen", !setup::cargo_bin("wasm-bindgen").exists()),
        ("the wasm32 std", !Path::new(setup::WASM_SYSROOT).exists()),
    ] {
        if !gone {
            bail!("{what} is still present after forgetting: the rehearsal would not be fresh");
        }
    }
    eprintln!("rehearse: the overlay now looks like a brand-new machine");
    Ok(())
}

/// `apt-get -y -qq ARGS`, non-interactive.
fn apt(args: &[&str]) -> Result<()> {
    let mut cmd = Command::new("apt-get");
    cmd.args(["-y", "-qq"])
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive");
    status(cmd, &format!("apt-get {}", args.join(" ")))
}

fn remove_all(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until the server answers `/healthz` and serves the desktop's `index.html`.
fn wait_for_desktop(server: &mut Child, addr: &str, started: Instant) -> Result<f64> {
    loop {
        if let Some(st) = server.try_wait()? {
            bail!("`cargo xtask run` ended ({st}) before serving the desktop");
        }
        if get(addr, "/healthz").is_some_and(|r| r.starts_with("HTTP/1.1 200"))
            && get(addr, "/").is_some_and(|r| r.contains("<html"))
        {
            return Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > RUN_DEADLINE {
            bail!("`cargo xtask run` did not serve the desktop within {RUN_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// One plain HTTP/1.1 GET; the whole response as text.
fn get(addr: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    Some(String::from_utf8_lossy(&response).into_owned())
}

/// Stops a child started in its own process group, with everything it started.
fn stop_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    // procps' kill takes a negative process group id only after `--`.
    let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    let _ = child.wait();
}
