//! `driftwatch`: the admin CLI. Thin: parse, run, print the error chain.

use std::process::ExitCode;

use clap::Parser;
use driftwatch_collector::cli::{Cli, EXIT_INCOMPLETE, Incomplete, run};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    driftwatch_common::logging::init(driftwatch_common::logging::LogFormat::Human, "warn");
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match run(cli, &mut out).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("driftwatch: {e:#}");
            if e.downcast_ref::<Incomplete>().is_some() {
                ExitCode::from(EXIT_INCOMPLETE)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
