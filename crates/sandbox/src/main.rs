//! `amazon-sandbox`: the local Amazon emulator as a standalone program.

use std::path::PathBuf;

use amazon_rewards_sandbox::{SandboxConfig, serve};
use clap::Parser;

/// Local emulator of Amazon's digital-goods services for bevy_amazon_rewards. Listens on 127.0.0.1 only.
#[derive(Debug, Parser)]
#[command(name = "amazon-sandbox", version)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one; the bound address is printed).
    #[arg(long, env = "AMAZON_SANDBOX_PORT", default_value_t = 8787)]
    port: u16,
    /// SQLite database file, created if missing.
    #[arg(long, env = "AMAZON_SANDBOX_DATABASE", default_value = "amazon-sandbox.db")]
    database: PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let sandbox = serve(SandboxConfig::new(args.port, args.database)).await?;
    // The one line scripts wait for: the base URL, on stdout.
    println!("amazon-sandbox listening on {}", sandbox.url());
    tokio::signal::ctrl_c().await?;
    sandbox.shutdown().await;
    Ok(())
}
