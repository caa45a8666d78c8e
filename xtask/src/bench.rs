//! `cargo xtask bench …`: release builds measured side by side, written to BENCHMARKS.md.

use std::process::Command;

use anyhow::{Context, Result};

use crate::util::{build_release_server, root, status, target_dir};

/// The files benchmark: the server's upload/download against raw disk reads of the same
/// bytes in the same run, bulk creates, and listing a large folder.
pub fn files() -> Result<()> {
    // nginx (sendfile) is the peer for serving a file over HTTP on this machine.
    crate::setup::apt_install(&["nginx-light"])?;
    let server = build_release_server(&["-p", "cloudos-tests", "--bin", "bench-files"])?;
    let release = target_dir().join("release");
    let report = root().join("target").join("bench-files.md");
    std::fs::create_dir_all(report.parent().expect("has a parent"))?;
    let mut cmd = Command::new(release.join("bench-files"));
    cmd.env("CLOUDOS_BIN", server)
        .arg(&report)
        .current_dir(root());
    status(cmd, "bench-files")?;
    let section = std::fs::read_to_string(&report).context("reading the benchmark report")?;
    write_section("files", &section)?;
    println!("{section}");
    Ok(())
}

/// Replaces (or appends) the `<!-- bench:NAME -->` section of BENCHMARKS.md.
fn write_section(name: &str, body: &str) -> Result<()> {
    let path = root().join("BENCHMARKS.md");
    let current = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n\nWritten by `cargo xtask bench …`; each section is replaced by its latest run.\n".into());
    let start = format!("<!-- bench:{name} -->");
    let end = format!("<!-- /bench:{name} -->");
    let block = format!("{start}\n{}\n{end}", body.trim());
    let next = match (current.find(&start), current.find(&end)) {
        (Some(s), Some(e)) => format!("{}{}{}", &current[..s], block, &current[e + end.len()..]),
        _ => format!("{}\n{}\n", current.trim_end(), block),
    };
    std::fs::write(&path, next)?;
    Ok(())
}
