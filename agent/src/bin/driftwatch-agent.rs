//! `driftwatch-agent`: collects what this server runs and reports it.
//! Thin: parse arguments, init logging, start the runtime, run the library
//! (`driftwatch_agent::cli`).

use std::process::ExitCode;

use clap::Parser;
use driftwatch_agent::cli::{Cli, run};
use driftwatch_common::logging;

fn main() -> ExitCode {
    driftwatch_agent::memory::single_malloc_arena();
    let cli = Cli::parse();
    logging::init(cli.log_format, "info");
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("driftwatch-agent: failed to start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "driftwatch-agent: {}",
                driftwatch_common::client::error_chain(e.as_ref())
            );
            ExitCode::from(1)
        }
    }
}
