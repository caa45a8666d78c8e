//! The terminal benchmark run by `cargo xtask bench terminal` (release build): Cloud OS
//! (`cloudos serve` relaying to `cloudos-agent`, bubblewrap and cgroups on) beside terminado
//! (Jupyter's PTY-over-WebSocket server) on loopback, with the same client. Writes a Markdown
//! section to the path given as the first argument.
//!
//! Env: CLOUDOS_BIN, CLOUDOS_AGENT_BIN (release builds), TERMINADO_PYTHON (a Python with
//! terminado), TERMINADO_SERVER (the script that serves it).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cloudos_proto::terminal::Sandbox;
use cloudos_tests::bench::percentile;
use cloudos_tests::{ServerOptions, TestServer};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const ECHO_ROUNDS: usize = 400;
const THROUGHPUT_BYTES: u64 = 100 * 1024 * 1024;
const IDLE_SESSIONS: usize = 20;
const COLD_STARTS: usize = 8;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Which server a client talks to: the two protocols differ only in framing.
#[derive(Clone, Copy, PartialEq)]
enum Proto {
    /// Binary frames both ways; JSON control as text.
    CloudOs,
    /// `["stdin", text]` / `["stdout", text]` JSON text frames.
    Terminado,
}

struct Term {
    ws: Socket,
    proto: Proto,
    /// Output bytes received so far.
    received: u64,
}

impl Term {
    async fn connect(url: &str, proto: Proto) -> Result<Term> {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .with_context(|| format!("connecting {url}"))?;
        Ok(Term {
            ws,
            proto,
            received: 0,
        })
    }

    async fn send(&mut self, keys: &str) -> Result<()> {
        let msg = match self.proto {
            Proto::CloudOs => Message::Binary(keys.as_bytes().to_vec().into()),
            Proto::Terminado => Message::Text(json!(["stdin", keys]).to_string().into()),
        };
        self.ws.send(msg).await?;
        Ok(())
    }

    /// The next chunk of terminal output.
    async fn output(&mut self) -> Result<bytes::Bytes> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(120), self.ws.next())
                .await
                .context("no output within 120 s")?
                .context("the socket closed")??;
            match (self.proto, msg) {
                (Proto::CloudOs, Message::Binary(b)) => {
                    self.received += b.len() as u64;
                    return Ok(b);
                }
                (Proto::Terminado, Message::Text(t)) => {
                    let v: serde_json::Value = serde_json::from_str(&t)?;
                    if v[0] == "stdout" {
                        let s = bytes::Bytes::from(v[1].as_str().unwrap_or_default().to_owned());
                        self.received += s.len() as u64;
                        return Ok(s);
                    }
                }
                _ => {}
            }
        }
    }

    /// Reads until `needle` arrives (searching only what is new, so the client stays cheap
    /// beside the servers it measures).
    async fn until(&mut self, needle: &[u8]) -> Result<()> {
        let finder = memchr::memmem::Finder::new(needle);
        let mut tail: Vec<u8> = Vec::new();
        loop {
            let chunk = self.output().await?;
            // The needle may straddle chunks: keep the last needle-length bytes.
            tail.extend_from_slice(&chunk[..chunk.len().min(needle.len())]);
            if finder.find(&tail).is_some() || finder.find(&chunk).is_some() {
                return Ok(());
            }
            let keep = needle.len().min(chunk.len());
            tail.clear();
            tail.extend_from_slice(&chunk[chunk.len() - keep..]);
        }
    }
}

/// Waits until the shell runs commands (prompts differ: root's ends in `#`).
async fn ready(t: &mut Term) -> Result<()> {
    t.send("echo RDY-$((2*3))\r").await?;
    t.until(b"RDY-6").await
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Keystroke echo: type a character at the prompt and wait for readline to draw it; then a
/// backspace, and wait for that. Returns sorted round trips.
async fn echo(t: &mut Term) -> Result<Vec<Duration>> {
    t.send("\x15").await?; // an empty line to start from
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut times = Vec::with_capacity(ECHO_ROUNDS);
    for i in 0..ECHO_ROUNDS {
        let (keys, want): (&str, &[u8]) = if i % 2 == 0 {
            ("x", b"x")
        } else {
            ("\x7f", b"\x08")
        };
        let start = Instant::now();
        t.send(keys).await?;
        t.until(want).await?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times)
}

/// Reads of 100 MiB per side (single runs vary by ±30% on a small shared machine).
const THROUGHPUT_RUNS: usize = 5;

fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

/// The median of `THROUGHPUT_RUNS` reads of 100 MiB, MiB/s.
async fn throughput(t: &mut Term) -> Result<f64> {
    let mut runs = Vec::new();
    for _ in 0..THROUGHPUT_RUNS {
        runs.push(throughput_once(t).await?);
    }
    Ok(median(runs))
}

/// Reads 100 MiB of output (one `tr` of /dev/zero) and returns MiB/s.
async fn throughput_once(t: &mut Term) -> Result<f64> {
    t.send("\x15").await?;
    let before = t.received;
    let start = Instant::now();
    t.send(&format!(
        "head -c {THROUGHPUT_BYTES} /dev/zero | tr '\\0' y; echo; echo END-$((6*7))\r"
    ))
    .await?;
    t.until(b"END-42").await?;
    let got = t.received - before;
    if got < THROUGHPUT_BYTES {
        bail!("only {got} bytes arrived");
    }
    Ok(got as f64 / 1_048_576.0 / start.elapsed().as_secs_f64())
}

/// A process's children (spawned by any of its threads).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return vec![];
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Resident memory (KiB) of a process and, with `tree`, all its descendants.
fn rss_kib(pid: u32, tree: bool) -> u64 {
    let own = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if !tree {
        return own;
    }
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    own + children
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .map(|c| rss_kib(c, true))
        .sum::<u64>()
}

struct Terminado {
    child: Child,
    port: u16,
}

impl Drop for Terminado {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_terminado() -> Result<Terminado> {
    let python = std::env::var("TERMINADO_PYTHON").context("TERMINADO_PYTHON")?;
    let script = std::env::var("TERMINADO_SERVER").context("TERMINADO_SERVER")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(python)
        .arg(script)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting terminado")?;
    let t = Terminado { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(t);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("terminado did not start")
}

struct Side {
    /// The terminal the throughput runs read from, and what keeps its server alive.
    term: Term,
    _server: Box<dyn std::any::Any>,
    echo: Vec<Duration>,
    mib_s: f64,
    /// Throughput straight from an agent without bubblewrap or the relay (Cloud OS only).
    direct_mib_s: Option<f64>,
    idle_kib_server: f64,
    idle_kib_tree: f64,
    cold: Vec<Duration>,
}

/// A new terminal and the time from connecting to its first output.
async fn first_output(url: &str, proto: Proto) -> Result<(Term, Duration)> {
    let start = Instant::now();
    let mut t = Term::connect(url, proto).await?;
    t.output().await?;
    Ok((t, start.elapsed()))
}

/// The server's `cloudos-agent` child.
fn agent_pid(server_pid: u32) -> Option<u32> {
    children(server_pid).into_iter().find(|c| {
        std::fs::read_to_string(format!("/proc/{c}/comm"))
            .is_ok_and(|n| n.trim() == "cloudos-agent")
    })
}

/// The server under test. terminado's shells have no CPU limit: the sandbox gets the whole
/// machine too, so the comparison measures the terminal path rather than the limit.
fn bench_server() -> TestServer {
    TestServer::native(
        ServerOptions::default()
            .env("CLOUDOS_SANDBOX_HOME_MB", 256)
            .env("CLOUDOS_SANDBOX_CPUS", cores())
            .env("RUST_LOG", "warn"),
    )
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

async fn cloudos() -> Result<Side> {
    let server = bench_server();
    let ws = server.base.replacen("http", "ws", 1);
    // Cold start: a new user's sandbox (home image made, cgroup, agent, bubblewrap, shell)
    // from POST /sandbox to the first byte of the prompt.
    let mut cold = Vec::new();
    let mut keep = None;
    for i in 0..COLD_STARTS {
        let u = server.new_user(&format!("bench{i}")).await;
        let start = Instant::now();
        let res = u.api.post("/sandbox", &json!({})).await;
        let sbx: Sandbox = res.json().await?;
        let url = format!(
            "{ws}/terminal/{}/attach?token={}",
            sbx.id,
            u.api.token.as_deref().unwrap()
        );
        let mut t = Term::connect(&url, Proto::CloudOs).await?;
        t.output().await?;
        cold.push(start.elapsed());
        if i + 1 == COLD_STARTS {
            keep = Some((u, sbx, t));
        } else {
            u.api.delete(&format!("/sandbox/{}", sbx.id)).await;
        }
    }
    cold.sort();
    let (u, sbx, mut t) = keep.expect("at least one start");
    ready(&mut t).await?;
    let echo = echo(&mut t).await?;

    // Idle sessions: N more shells in the same sandbox, each with a client attached. The
    // sandbox's own processes are the ones in its cgroup.
    let agent = agent_pid(server.pid().unwrap()).context("finding the agent process")?;
    let sandbox_rss = || -> u64 {
        let procs = format!(
            "/sys/fs/cgroup/pids/cloudos/sandbox-{}/cgroup.procs",
            sbx.id
        );
        let procs = std::fs::read_to_string(&procs)
            .or_else(|_| {
                std::fs::read_to_string(format!(
                    "/sys/fs/cgroup/cloudos/sandbox-{}/cgroup.procs",
                    sbx.id
                ))
            })
            .unwrap_or_default();
        procs
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .map(|p| rss_kib(p, false))
            .sum()
    };
    let (server_before, tree_before) =
        (rss_kib(agent, false), rss_kib(agent, false) + sandbox_rss());
    let mut idle = Vec::new();
    for i in 0..IDLE_SESSIONS {
        let url = format!(
            "{ws}/terminal/{}/attach?token={}&session=idle{i}",
            sbx.id,
            u.api.token.as_deref().unwrap()
        );
        let mut t = Term::connect(&url, Proto::CloudOs).await?;
        ready(&mut t).await?;
        idle.push(t);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let per = |after: u64, before: u64| after.saturating_sub(before) as f64 / IDLE_SESSIONS as f64;
    let idle_kib_server = per(rss_kib(agent, false), server_before);
    let idle_kib_tree = per(rss_kib(agent, false) + sandbox_rss(), tree_before);
    drop(idle);
    // The same read from an agent alone, without bubblewrap and without the server's relay:
    // what the sandbox and the relay hop cost.
    let direct = cloudos_tests::agent::TestAgent::start(cloudos_tests::agent::AgentOptions {
        bwrap: false,
        network: cloudos_proto::terminal::SandboxNetwork::None,
        memory_mb: 512,
        pids_max: 256,
        cpus: cores() as f64,
        ..Default::default()
    });
    let token = direct.token(cloudos_proto::terminal::Role::Driver);
    let mut d = Term::connect(&direct.attach_url(&token, "bench", ""), Proto::CloudOs).await?;
    ready(&mut d).await?;
    let direct_mib_s = Some(throughput(&mut d).await?);
    Ok(Side {
        term: t,
        _server: Box::new(server),
        echo,
        mib_s: 0.0,
        direct_mib_s,
        idle_kib_server,
        idle_kib_tree,
        cold,
    })
}

async fn terminado() -> Result<Side> {
    let t8o = start_terminado()?;
    let url = format!("ws://127.0.0.1:{}/websocket", t8o.port);
    let mut cold = Vec::new();
    let mut keep = None;
    for i in 0..COLD_STARTS {
        let (t, d) = first_output(&url, Proto::Terminado).await?;
        cold.push(d);
        if i + 1 == COLD_STARTS {
            keep = Some(t);
        }
    }
    cold.sort();
    let mut t = keep.expect("at least one start");
    ready(&mut t).await?;
    let echo = echo(&mut t).await?;
    let pid = t8o.child.id();
    let (server_before, tree_before) = (rss_kib(pid, false), rss_kib(pid, true));
    let mut idle = Vec::new();
    for _ in 0..IDLE_SESSIONS {
        let mut t = Term::connect(&url, Proto::Terminado).await?;
        ready(&mut t).await?;
        idle.push(t);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let per = |after: u64, before: u64| after.saturating_sub(before) as f64 / IDLE_SESSIONS as f64;
    Ok(Side {
        term: t,
        _server: Box::new(t8o),
        echo,
        mib_s: 0.0,
        direct_mib_s: None,
        idle_kib_server: per(rss_kib(pid, false), server_before),
        idle_kib_tree: per(rss_kib(pid, true), tree_before),
        cold,
    })
}

/// `bench-terminal --throughput`: only the Cloud OS output throughput, for profiling.
async fn throughput_only() -> Result<()> {
    let server = bench_server();
    let ws = server.base.replacen("http", "ws", 1);
    let u = server.new_user("bench").await;
    let sbx: Sandbox = u.api.post("/sandbox", &json!({})).await.json().await?;
    let url = format!(
        "{ws}/terminal/{}/attach?token={}",
        sbx.id,
        u.api.token.as_deref().unwrap()
    );
    let mut t = Term::connect(&url, Proto::CloudOs).await?;
    ready(&mut t).await?;
    for _ in 0..THROUGHPUT_RUNS {
        println!("{:.1} MiB/s", throughput_once(&mut t).await?);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let out = std::env::args()
        .nth(1)
        .context("usage: bench-terminal REPORT.md")?;
    if out == "--throughput" {
        return throughput_only().await;
    }
    let mut ours = cloudos().await.context("Cloud OS side")?;
    let mut peer = terminado().await.context("terminado side")?;
    // Throughput alternates between the two, so a slow spell of a shared machine hits both.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..THROUGHPUT_RUNS {
        a.push(throughput_once(&mut ours.term).await?);
        b.push(throughput_once(&mut peer.term).await?);
    }
    ours.mib_s = median(a);
    peer.mib_s = median(b);
    let verdict = |ok: bool| if ok { "met" } else { "missed" };
    let echo_ok = percentile(&ours.echo, 0.5) <= percentile(&peer.echo, 0.5);
    let tput_ok = ours.mib_s >= 2.0 * peer.mib_s;
    let cold_ok = percentile(&ours.cold, 0.5) < Duration::from_millis(300);
    let report = format!(
        "Measured by `cargo xtask bench terminal` on this machine in one run, with one Rust \
client for both servers on loopback. Cloud OS goes through the whole product path: \
`cloudos serve` relays `WS /terminal/:id/attach` to the sandbox's `cloudos-agent`, whose shell \
runs under bubblewrap and cgroup limits on a PTY of the sandbox's own `/dev/pts` (the CPU \
limit set to the machine's cores for this run, since terminado's shells have none). terminado {t8o_version} serves `bash -l` on a \
PTY per socket from Tornado (JSON text frames).\n\n\
| | Cloud OS | terminado | target |\n|---|---|---|---|\n\
| keystroke echo p50 / p99 (ms, {ECHO_ROUNDS} round trips) | {} / {} | {} / {} | p50 no worse than terminado's: **{}** |\n\
| output throughput (MiB/s, median of {THROUGHPUT_RUNS} × 100 MiB, the two sides alternating) | {:.1} | {:.1} | ≥ 2× terminado's: **{}** |\n\
| output throughput, the agent alone without bubblewrap or relay (MiB/s) | {:.1} | | |\n\
| memory per idle session, server process (KiB) | {:.0} | {:.0} | |\n\
| memory per idle session, with the shell's processes (KiB) | {:.0} | {:.0} | |\n\
| cold start to first prompt byte p50 / max (ms, {COLD_STARTS} starts) | {} / {} | {} / {} | local < 300 ms: **{}** |\n\n\
Cold start for Cloud OS is a new user's `POST /sandbox` (home image created and mounted, cgroup \
made, agent started) through the attach to the first byte of the prompt; for terminado it is a \
new socket to its first output (a new PTY and shell). Idle memory is the growth of resident \
memory for {IDLE_SESSIONS} more attached, idle terminals, divided by {IDLE_SESSIONS}; \"with the \
shell's processes\" adds the shells' processes (bash; for Cloud OS also the bubblewrap \
process each shell runs under, counted from the sandbox's cgroup).\n",
        ms(percentile(&ours.echo, 0.5)),
        ms(percentile(&ours.echo, 0.99)),
        ms(percentile(&peer.echo, 0.5)),
        ms(percentile(&peer.echo, 0.99)),
        verdict(echo_ok),
        ours.mib_s,
        peer.mib_s,
        verdict(tput_ok),
        ours.direct_mib_s.unwrap_or_default(),
        ours.idle_kib_server,
        peer.idle_kib_server,
        ours.idle_kib_tree,
        peer.idle_kib_tree,
        ms(percentile(&ours.cold, 0.5)),
        ms(*ours.cold.last().unwrap()),
        ms(percentile(&peer.cold, 0.5)),
        ms(*peer.cold.last().unwrap()),
        verdict(cold_ok),
        t8o_version = std::env::var("TERMINADO_VERSION").unwrap_or_default(),
    );
    std::fs::write(&out, &report)?;
    println!("{report}");
    Ok(())
}
