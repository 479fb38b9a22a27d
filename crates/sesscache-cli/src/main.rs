//! `sesscache`: the command-line tool. Thin: it parses arguments, calls the libraries and
//! prints. Errors go to stderr with exit code 2.

#![forbid(unsafe_code)]

mod convert;
mod fleet;
mod inspect;
mod keygen;
mod metrics;
mod plot;
mod replay;
mod report;
mod serve;
mod session_file;
mod simulate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A TLS session cache with OpenSSL's behaviour, without its reference-counting hazards.
#[derive(Debug, Parser)]
#[command(name = "sesscache", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a churn of concurrent simulated TLS connections against one context's cache and
    /// report what the cache did.
    ///
    /// Clients connect again and again; a client that holds a session offers it (as often as
    /// --resumption-ratio says), and the server resumes it if its cache still has it. Time
    /// is simulated: --time-scale simulated seconds pass per real second, so that sessions
    /// expire and flushes run within a short run.
    Simulate(simulate::Args),
    /// Print a saved TLS session (PEM or DER, as OpenSSL writes them) the way
    /// `openssl sess_id -text -noout` prints it, or as JSON.
    Inspect(inspect::Args),
    /// Convert a saved TLS session between PEM and DER, byte for byte as OpenSSL would.
    Convert(convert::Args),
    /// Run a small TLS server (rustls or OpenSSL) that resumes sessions through the session
    /// cache and tells each client whether it was resumed; Ctrl-C prints the cache's
    /// statistics.
    ///
    /// Try it with `openssl s_client -connect 127.0.0.1:8443 -reconnect`.
    Serve(serve::Args),
    /// Make a key for the fleet tier's key file (`serve --redis-keys`): printed, or put at
    /// the top of a key file with -o (rotation: the new key seals, older ones still open).
    Keygen(keygen::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate(args) => simulate::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Keygen(args) => keygen::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sesscache: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
