//! `cloudos`: the native Cloud OS server.
#![forbid(unsafe_code)]

use clap::Parser;
use cloudos_server::settings::{Cli, Command, DbCommand};

// Listings and JSON answers allocate many small strings; glibc's malloc spent a quarter of
// a large listing's CPU time (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = cloudos_server::telemetry::init()?;
    match cli.command {
        Command::Serve(args) => {
            cloudos_server::serve(*args, cloudos_server::shutdown_signal()).await
        }
        Command::Db(DbCommand::Serve(args)) => {
            cloudos_server::hrana::serve(args, cloudos_server::shutdown_signal()).await
        }
    }
}
