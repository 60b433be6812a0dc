//! `driftwatch`: the admin CLI. Thin: parse, run, print the error chain.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use driftwatch_cli::render::escape::TerminalSafe;
use driftwatch_cli::{Cli, exit_code, is_broken_pipe, run};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    driftwatch_common::logging::init(driftwatch_common::logging::LogFormat::Human, "warn");
    // Every byte printed goes through TerminalSafe: what hosts report must
    // not reach the admin's terminal as control sequences.
    let mut out = TerminalSafe::new(std::io::stdout().lock(), cli.prints_json());
    let result = run(cli, &mut out).await;
    let result = result.and_then(|r| out.flush().map(|()| r).map_err(Into::into));
    match result {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::from(1),
        // The reader of a pipe (`| head`) has what it wanted.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "driftwatch: {}",
                driftwatch_common::client::error_chain(e.as_ref())
            );
            // An incomplete sweep is an answer (exit 1), bad usage 2.
            ExitCode::from(exit_code(&e))
        }
    }
}
