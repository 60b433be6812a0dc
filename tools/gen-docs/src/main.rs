//! `driftwatch-gen-docs OUT_DIR`: writes man pages (OUT_DIR/man/BINARY/*.1,
//! a folder per binary so each package takes exactly its own) and
//! bash, zsh and fish completions (OUT_DIR/completions/...) for the three
//! binaries, from the same clap definitions the binaries parse with, so the
//! documentation cannot drift from the flags. `scripts/build-debs` runs it
//! before cargo-deb picks the files up as package assets.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Command, CommandFactory};
use clap_complete::Shell;

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        bail!("usage: driftwatch-gen-docs OUT_DIR");
    };
    let out = PathBuf::from(out);
    let commands = [
        driftwatch_agent::cli::Cli::command(),
        driftwatch_collector::serve_cli::Args::command(),
        driftwatch_cli::Cli::command(),
    ];
    for cmd in commands {
        let name = cmd.get_name().to_string();
        man_pages(cmd.clone(), &out.join("man").join(&name))?;
        completions(cmd, &name, &out.join("completions"))?;
    }
    Ok(())
}

/// One page for the command and one per subcommand (`driftwatch-agent-run.1`),
/// as git does: a single page listing nested flags would be unreadable.
fn man_pages(cmd: Command, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(cmd, dir)
        .with_context(|| format!("writing man pages to {}", dir.display()))?;
    Ok(())
}

fn completions(mut cmd: Command, name: &str, dir: &Path) -> Result<()> {
    for (shell, sub, file) in [
        (Shell::Bash, "bash", name.to_string()),
        (Shell::Zsh, "zsh", format!("_{name}")),
        (Shell::Fish, "fish", format!("{name}.fish")),
    ] {
        let d = dir.join(sub);
        fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, name, &mut buf);
        let path = d.join(file);
        fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
