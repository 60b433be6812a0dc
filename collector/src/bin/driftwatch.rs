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
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::from(1),
        Err(e) => {
            eprintln!(
                "driftwatch: {}",
                driftwatch_common::client::error_chain(e.as_ref())
            );
            // An incomplete sweep is an answer (exit 1), not a failure.
            if e.downcast_ref::<Incomplete>().is_some() {
                ExitCode::from(EXIT_INCOMPLETE)
            } else {
                ExitCode::from(3)
            }
        }
    }
}
