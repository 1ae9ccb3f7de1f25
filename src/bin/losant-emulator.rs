//! `losant-emulator`: command-line entry point of the Losant API emulator. Parses flags,
//! starts the server from the library, prints the listening line, and stops on Ctrl-C/SIGTERM.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use losant_operator::emulator::{cli::EmulatorArgs, spawn};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let args = EmulatorArgs::parse();
    // Logs go to stderr so stdout carries only the listening line.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal; logs captured to files stay greppable.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let running = match spawn(args.into_config()).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("losant-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Scripts wait for this line; without a stdout to write to, the emulator still serves.
    let mut stdout = std::io::stdout();
    if writeln!(
        stdout,
        "losant-emulator listening on {}",
        running.base_url()
    )
    .and_then(|()| stdout.flush())
    .is_err()
    {
        eprintln!("losant-emulator: could not write the listening address to stdout");
    }
    wait_for_stop_signal().await;
    match running.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("losant-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    if let Err(error) = tokio::signal::ctrl_c().await {
        // No way to be told to stop: stop now rather than run unstoppable.
        eprintln!("losant-emulator: cannot listen for Ctrl-C ({error}); stopping");
    }
}
