//! `cloudos-agent`: serves one sandbox's terminals and commands to the edge.
#![forbid(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use cloudos_agent::settings::AgentSettings;
use cloudos_agent::Agent;

fn main() -> anyhow::Result<()> {
    // Inside a sandbox, the same binary opens the shell's terminal (see `pty_inside`).
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(cloudos_agent::pty_inside::HELPER_ARG) {
        let shell = args
            .iter()
            .skip(2)
            .skip_while(|a| *a == "--")
            .cloned()
            .collect::<Vec<_>>();
        std::process::exit(cloudos_agent::pty_inside::helper_main(&shell));
    }
    serve()
}

#[tokio::main]
async fn serve() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    // Where the agent shares its uid with the shells it runs (a Fly Machine), they could
    // otherwise read its key from /proc/<pid>/environ (or its memory): a process that is
    // not dumpable keeps those to root. Its children are dumpable again after exec.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .context("making the agent's /proc entries private")?;
    let settings = AgentSettings::parse();
    if settings.die_with_parent {
        // SIGTERM, not SIGKILL: the agent still ends the sandbox and releases its cgroup and
        // home mount when the server that started it is killed.
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
            .context("asking to be told when the parent dies")?;
        if rustix::process::getppid().is_none() {
            anyhow::bail!("the process that started the agent is gone");
        }
    }
    let addr = settings.addr.clone();
    let agent = Agent::prepare(settings).context("preparing the sandbox")?;
    agent.watch_limits();
    agent.start_sync();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, url = %format!("http://{local}"), "listening");
    let router = agent.router.clone();
    let terminals = agent.terminals.clone();
    let activity = agent.activity.clone();
    let idle_secs = agent.idle_secs();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = shutdown_signal() => {}
                _ = async {
                    match idle_secs {
                        0 => std::future::pending().await,
                        secs => activity.idle(std::time::Duration::from_secs(secs)).await,
                    }
                } => tracing::info!(idle_secs, "nothing used the sandbox for its idle time: stopping"),
            }
            // Open terminal sockets would hold the graceful shutdown forever: close them.
            terminals.shutdown_all().await;
        })
        .await?;
    agent.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
