//! `POST /exec`: runs one command in the sandbox (no PTY) for "Run in terminal" and the
//! copilot, with a timeout and capped output, whole or streamed.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudos_proto::terminal::{ExecEvent, ExecRequest, ExecResponse};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::isolation::Isolation;

/// Output kept per stream.
pub const OUTPUT_CAP: usize = 1024 * 1024;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// Why a command could not run.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("argv must name a program")]
    EmptyArgv,
    #[error("{0:?} cannot be an environment variable (empty, or with '=' or NUL)")]
    BadEnv(String),
    #[error("starting the command: {0}")]
    Spawn(String),
}

/// Which stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// A program to run, and variables a process can be given.
fn check(req: &ExecRequest) -> Result<(), ExecError> {
    if req.argv.first().is_none_or(|a| a.is_empty()) {
        return Err(ExecError::EmptyArgv);
    }
    let bad = |k: &String, v: &String| k.is_empty() || k.contains(['=', '\0']) || v.contains('\0');
    if let Some((k, _)) = req.env.iter().find(|(k, v)| bad(k, v)) {
        return Err(ExecError::BadEnv(k.clone()));
    }
    Ok(())
}

fn timeout_of(req: &ExecRequest) -> Duration {
    req.timeout_secs
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT)
        .min(MAX_TIMEOUT)
}

fn spawn(iso: &Isolation, req: &ExecRequest) -> Result<tokio::process::Child, ExecError> {
    check(req)?;
    let argv = iso.wrap_with_env(&req.argv, req.cwd.as_deref(), &req.env);
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]).env_clear().envs(iso.base_env());
    if !iso.bwrap {
        cmd.envs(req.env.iter().map(|(k, v)| (k, v)));
    }
    cmd.stdin(if req.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    if !iso.bwrap && req.cwd.is_none() {
        cmd.current_dir(&iso.home);
    }
    let mut child = cmd.spawn().map_err(|e| ExecError::Spawn(e.to_string()))?;
    if let (Some(input), Some(mut stdin)) = (req.stdin.clone(), child.stdin.take()) {
        tokio::spawn(async move {
            let _ = stdin.write_all(input.as_bytes()).await;
        });
    }
    Ok(child)
}

/// Reads a pipe into chunks that end on a character boundary (events carry text, so a
/// character split between two reads would otherwise become two U+FFFD).
fn pump(
    mut r: impl AsyncRead + Unpin + Send + 'static,
    which: Stream,
    tx: mpsc::Sender<(Stream, Vec<u8>)>,
) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut carry = Vec::new();
        loop {
            let n = match r.read(&mut buf).await {
                Ok(n) if n > 0 => n,
                // The end: what is left is sent as it is (lossy if it never completed).
                _ => {
                    if !carry.is_empty() {
                        let _ = tx.send((which, carry)).await;
                    }
                    return;
                }
            };
            let mut chunk = std::mem::take(&mut carry);
            chunk.extend_from_slice(&buf[..n]);
            carry = split_incomplete_utf8(&mut chunk);
            if !chunk.is_empty() && tx.send((which, chunk)).await.is_err() {
                return;
            }
        }
    });
}

/// Takes an unfinished UTF-8 sequence off the end of `data` and returns it.
fn split_incomplete_utf8(data: &mut Vec<u8>) -> Vec<u8> {
    let len = data.len();
    // A sequence is at most 4 bytes: look back at most 3 for its first byte.
    for back in 1..=len.min(3) {
        let b = data[len - back];
        if b & 0xC0 == 0x80 {
            continue;
        }
        let needs = match b {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        if needs > back {
            return data.split_off(len - back);
        }
        break;
    }
    Vec::new()
}

/// Runs the command, sending its output to `events` as it comes and `Exit` last. A reader
/// that is slower than the command slows the command (pipes fill up); one that is gone ends it.
async fn drive(iso: &Isolation, req: &ExecRequest, events: mpsc::Sender<ExecEvent>) {
    let started = Instant::now();
    let mut child = match spawn(iso, req) {
        Ok(c) => c,
        Err(e) => {
            let _ = events
                .send(ExecEvent::Stderr {
                    data: e.to_string(),
                })
                .await;
            return;
        }
    };
    let (tx, mut rx) = mpsc::channel(64);
    pump(child.stdout.take().expect("piped"), Stream::Out, tx.clone());
    pump(child.stderr.take().expect("piped"), Stream::Err, tx);
    let deadline = tokio::time::Instant::now() + timeout_of(req);
    let mut timed_out = false;
    // Read until both pipes close (or time runs out), then reap.
    loop {
        let chunk = tokio::select! {
            chunk = rx.recv() => chunk,
            _ = tokio::time::sleep_until(deadline) => {
                timed_out = true;
                break;
            }
        };
        let Some((which, data)) = chunk else { break };
        let data = String::from_utf8_lossy(&data).into_owned();
        let ev = match which {
            Stream::Out => ExecEvent::Stdout { data },
            Stream::Err => ExecEvent::Stderr { data },
        };
        match tokio::time::timeout_at(deadline, events.send(ev)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break,
            Err(_) => {
                timed_out = true;
                break;
            }
        }
    }
    if timed_out || events.is_closed() {
        let _ = child.start_kill();
    }
    let status = child.wait().await.ok();
    let exit_code = if timed_out {
        None
    } else {
        status.and_then(|s| s.code())
    };
    let _ = events
        .send(ExecEvent::Exit {
            exit_code,
            timed_out,
            duration_ms: started.elapsed().as_millis() as u64,
        })
        .await;
}

/// Runs the command and sends its output as events while it runs, ending with `Exit`.
pub fn stream(
    iso: Arc<Isolation>,
    req: ExecRequest,
) -> Result<mpsc::Receiver<ExecEvent>, ExecError> {
    check(&req)?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move { drive(&iso, &req, tx).await });
    Ok(rx)
}

/// Runs the command to the end and returns its output (each stream capped).
pub async fn run(iso: Arc<Isolation>, req: ExecRequest) -> Result<ExecResponse, ExecError> {
    let mut events = stream(iso, req)?;
    let (mut out, mut err, mut truncated) = (Vec::new(), Vec::new(), false);
    let mut keep = |buf: &mut Vec<u8>, data: String| {
        let room = OUTPUT_CAP.saturating_sub(buf.len());
        truncated |= data.len() > room;
        buf.extend_from_slice(&data.as_bytes()[..data.len().min(room)]);
    };
    while let Some(ev) = events.recv().await {
        match ev {
            ExecEvent::Stdout { data } => keep(&mut out, data),
            ExecEvent::Stderr { data } => keep(&mut err, data),
            ExecEvent::Exit {
                exit_code,
                timed_out,
                duration_ms,
            } => {
                return Ok(ExecResponse {
                    exit_code,
                    stdout: String::from_utf8_lossy(&out).into_owned(),
                    stderr: String::from_utf8_lossy(&err).into_owned(),
                    timed_out,
                    truncated,
                    duration_ms,
                })
            }
        }
    }
    Err(ExecError::Spawn(String::from_utf8_lossy(&err).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::split_incomplete_utf8;

    #[test]
    fn a_character_split_between_reads_waits_for_its_rest() {
        let text = "a€😀".as_bytes();
        for cut in 0..=text.len() {
            let mut first = text[..cut].to_vec();
            let mut rest = split_incomplete_utf8(&mut first);
            assert!(std::str::from_utf8(&first).is_ok(), "cut at {cut}");
            rest.extend_from_slice(&text[cut..]);
            first.extend_from_slice(&rest);
            assert_eq!(first, text);
        }
        let mut ascii = b"plain".to_vec();
        assert!(split_incomplete_utf8(&mut ascii).is_empty());
        assert_eq!(ascii, b"plain");
    }
}
