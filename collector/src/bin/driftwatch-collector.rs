//! `driftwatch-collector`: serves agents and admins; bootstraps the PKI.
//! Thin: parse arguments, init logging, run the library
//! (`driftwatch_collector::serve_cli`).

use std::process::ExitCode;

use clap::Parser;
use driftwatch_collector::serve_cli::{Args, run};
use driftwatch_common::logging;

fn main() -> ExitCode {
    let args = Args::parse();
    logging::init(args.log_format, "info");
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "driftwatch-collector: {}",
                driftwatch_common::client::error_chain(e.as_ref())
            );
            ExitCode::from(
                e.downcast_ref::<driftwatch_collector::serve_cli::Exit>()
                    .map_or(1, |x| x.code),
            )
        }
    }
}
