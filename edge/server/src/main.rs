//! `cloudos`: the native Cloud OS server.
#![forbid(unsafe_code)]

use clap::Parser;
use cloudos_server::settings::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = cloudos_server::telemetry::init()?;
    match cli.command {
        Command::Serve(args) => {
            cloudos_server::serve(args, cloudos_server::shutdown_signal()).await
        }
    }
}
