//! driftwatch agent: collects what a Linux server runs and reports it to the
//! collector. The binary in `src/bin` is a thin layer over this library.

pub mod baseline;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod config;
pub mod failover;
pub mod fuzz;
pub mod hostfs;
pub mod identity;
pub mod memory;
pub mod metrics;
pub mod parse;
pub mod report;
pub mod run;
pub mod spool;
pub mod state;
pub mod subprocess;
pub mod sweep;

#[cfg(test)]
pub(crate) mod testutil {
    //! Test helpers shared by the parser and collector tests.

    use std::path::PathBuf;

    /// The real-world samples in the repository's `tests/fixtures/` (their
    /// sources and expected verdicts: `tests/fixtures/SOURCES.md`). A missing
    /// corpus fails the test (it must never silently skip).
    pub fn fixtures_dir() -> PathBuf {
        let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        assert!(d.is_dir(), "fixtures not found at {}", d.display());
        d
    }

    /// A fixture's text, e.g. `fixture("mdstat/procfs-linear.txt")`.
    pub fn fixture(rel: &str) -> String {
        let p = fixtures_dir().join(rel);
        let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()));
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Writes an executable `#!/bin/sh` script. A child process writes it,
    /// so no write descriptor of ours exists: another test thread forking
    /// at that moment would carry one into its child until exec, and
    /// running the script then fails with "Text file busy" (ETXTBSY).
    pub fn write_script(path: &std::path::Path, body: &str) {
        use std::io::Write;
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
            .arg(path)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("sh to write a test script");
        let mut stdin = sh.stdin.take().unwrap();
        stdin
            .write_all(format!("#!/bin/sh\n{body}\n").as_bytes())
            .unwrap();
        drop(stdin);
        assert!(sh.wait().unwrap().success(), "writing {}", path.display());
    }
}
