//! Runs the TEST DOUBLE of the Fly Machines API (`cloudos_tests::fly_double`) as a process, for
//! hosts a test cannot start in-process (`wrangler dev`): `fly-double APP TOKEN` prints one
//! JSON line `{"url", "public_url"}` and serves until it gets SIGTERM or its stdin closes,
//! then stops the agents of its "Machines".

use anyhow::{Context, Result};
use cloudos_tests::fly_double::FlyDouble;
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let app = args.next().context("usage: fly-double APP TOKEN")?;
    let token = args.next().context("usage: fly-double APP TOKEN")?;
    let fly = FlyDouble::start(&app, &token).await;
    println!(
        "{}",
        serde_json::json!({"url": fly.url, "public_url": fly.public_url})
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    loop {
        tokio::select! {
            _ = term.recv() => break,
            n = stdin.read(&mut buf) => if !matches!(n, Ok(n) if n > 0) { break },
        }
    }
    drop(fly);
    Ok(())
}
