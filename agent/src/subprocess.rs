//! Running a host tool (storcli, rpm, sshd -T) with bounds: a program found
//! on PATH, no stdin, a wall-clock timeout after which it is killed, and a cap
//! on how much output is kept. Blocking: collectors run on a blocking thread.
//!
//! Output is read on two helper threads so a tool that fills its stderr pipe
//! cannot deadlock us while we wait on stdout. When the tool is killed, its
//! own children (if any) may still hold the pipes open; we then stop waiting
//! for the readers after a short grace and return what we have, leaving the
//! reader threads to end when those pipes close.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use thiserror::Error;

/// How much of stderr a `Failed` error keeps: enough to say why.
const STDERR_EXCERPT: usize = 512;
/// How often the wait loop looks at the child.
const POLL: Duration = Duration::from_millis(10);
/// How long to wait for the pipes to drain after the child has gone.
const DRAIN_GRACE: Duration = Duration::from_millis(200);

#[derive(Debug, Error)]
pub enum RunError {
    #[error("{program}: not found on PATH")]
    NotFound { program: String },
    #[error("{program}: could not start: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program}: timed out after {after:?} and was killed")]
    TimedOut { program: String, after: Duration },
    #[error("{program}: exited with {}: {stderr}", code.map_or("a signal".to_string(), |c| format!("code {c}")))]
    Failed {
        program: String,
        /// None when a signal ended it.
        code: Option<i32>,
        /// The start of stderr, lossy UTF-8, trimmed.
        stderr: String,
        /// Everything captured on stdout (within the cap): some tools
        /// (MegaCli) say useful things and still exit non-zero.
        stdout: Vec<u8>,
    },
    #[error("{program}: wrote more than {limit} bytes of output and was killed")]
    TooLarge { program: String, limit: usize },
    #[error("{program}: {source}")]
    Io {
        program: String,
        source: std::io::Error,
    },
}

/// What a run that exited 0 produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn stdout_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// One invocation: program, arguments and bounds.
#[derive(Debug, Clone)]
pub struct Spec {
    program: String,
    args: Vec<OsString>,
    timeout: Duration,
    max_output: usize,
    env: Vec<(OsString, OsString)>,
    path: Option<OsString>,
}

impl Spec {
    /// Defaults: 10 s timeout, 16 MiB per stream, `LC_ALL=C` so tools
    /// print the untranslated text the parsers expect.
    pub fn new(program: impl Into<String>) -> Self {
        Spec {
            program: program.into(),
            args: Vec::new(),
            timeout: Duration::from_secs(10),
            max_output: 16 << 20,
            env: vec![("LC_ALL".into(), "C".into())],
            path: None,
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Cap on each of stdout and stderr, in bytes.
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Search this PATH instead of the agent's own (tests, or a configured
    /// tool directory).
    pub fn search_path(mut self, path: impl Into<OsString>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Runs it; see the module docs for the bounds.
    pub fn run(&self) -> Result<Output, RunError> {
        let path = self
            .path
            .clone()
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default();
        let exe = which_in(&self.program, &path).ok_or_else(|| RunError::NotFound {
            program: self.program.clone(),
        })?;
        let mut cmd = Command::new(&exe);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|source| RunError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        self.supervise(&mut child)
    }

    fn supervise(&self, child: &mut Child) -> Result<Output, RunError> {
        let overflow = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<(bool, std::io::Result<Vec<u8>>)>();
        for (is_stdout, pipe) in [
            (
                true,
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
            (
                false,
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
        ] {
            let Some(pipe) = pipe else { continue };
            let tx = tx.clone();
            let overflow = Arc::clone(&overflow);
            let cap = self.max_output;
            std::thread::spawn(move || {
                let r = read_capped(pipe, cap, &overflow);
                let _ = tx.send((is_stdout, r));
            });
        }
        drop(tx);

        let start = Instant::now();
        let status = loop {
            if overflow.load(Ordering::Relaxed) {
                kill(child);
                return Err(RunError::TooLarge {
                    program: self.program.clone(),
                    limit: self.max_output,
                });
            }
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(source) => {
                    kill(child);
                    return Err(RunError::Io {
                        program: self.program.clone(),
                        source,
                    });
                }
            }
            if start.elapsed() >= self.timeout {
                kill(child);
                return Err(RunError::TimedOut {
                    program: self.program.clone(),
                    after: self.timeout,
                });
            }
            std::thread::sleep(POLL);
        };

        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let deadline =
            Instant::now() + DRAIN_GRACE.max(self.timeout.saturating_sub(start.elapsed()));
        for _ in 0..2 {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((true, r)) => stdout = self.io(r)?,
                Ok((false, r)) => stderr = self.io(r)?,
                // A grandchild holds the pipe open: keep what we have.
                Err(_) => break,
            }
        }
        if overflow.load(Ordering::Relaxed) {
            return Err(RunError::TooLarge {
                program: self.program.clone(),
                limit: self.max_output,
            });
        }
        if status.success() {
            Ok(Output { stdout, stderr })
        } else {
            Err(RunError::Failed {
                program: self.program.clone(),
                code: status.code(),
                stderr: excerpt(&stderr),
                stdout,
            })
        }
    }

    fn io(&self, r: std::io::Result<Vec<u8>>) -> Result<Vec<u8>, RunError> {
        r.map_err(|source| RunError::Io {
            program: self.program.clone(),
            source,
        })
    }
}

/// Finds `program` the way a shell would: a name with a slash is taken as
/// is; otherwise the first executable regular file in `path`.
pub fn which_in(program: &str, path: &OsStr) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_executable(&p).then_some(p);
    }
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

/// `which_in` over the agent's own PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    which_in(program, &std::env::var_os("PATH").unwrap_or_default())
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn kill(child: &mut Child) {
    // Errors mean it has already exited, which is what we want.
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads up to `cap` bytes; on more, raises `overflow` and stops.
fn read_capped(
    mut pipe: Box<dyn Read + Send>,
    cap: usize,
    overflow: &AtomicBool,
) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match pipe.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.len() + n > cap {
            buf.extend_from_slice(&chunk[..cap - buf.len()]);
            overflow.store(true, Ordering::Relaxed);
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn excerpt(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(&stderr[..stderr.len().min(STDERR_EXCERPT)]);
    s.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Spec {
        Spec::new("sh").args(["-c", script])
    }

    #[test]
    fn captures_stdout_and_stderr() {
        let out = sh("printf 'hello\\n'; printf 'warn' >&2").run().unwrap();
        assert_eq!(out.stdout, b"hello\n");
        assert_eq!(out.stderr, b"warn");
    }

    #[test]
    fn no_stdin_and_c_locale() {
        // `cat` with no stdin sees EOF at once instead of waiting.
        let out = sh("cat; echo \"$LC_ALL\"")
            .timeout(Duration::from_secs(5))
            .run()
            .unwrap();
        assert_eq!(out.stdout_lossy(), "C\n");
    }

    #[test]
    fn a_slow_program_is_killed_at_the_timeout() {
        let start = Instant::now();
        let err = sh("sleep 5")
            .timeout(Duration::from_millis(200))
            .run()
            .unwrap_err();
        assert!(matches!(err, RunError::TimedOut { .. }), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn output_beyond_the_cap_is_refused() {
        let err = sh("yes driftwatch").max_output(4096).run().unwrap_err();
        assert!(
            matches!(err, RunError::TooLarge { limit: 4096, .. }),
            "{err}"
        );
    }

    #[test]
    fn non_zero_exit_keeps_code_stderr_and_stdout() {
        let err = sh("echo partial; echo 'disk on fire' >&2; exit 3")
            .run()
            .unwrap_err();
        match err {
            RunError::Failed {
                code,
                stderr,
                stdout,
                ..
            } => {
                assert_eq!(code, Some(3));
                assert_eq!(stderr, "disk on fire");
                assert_eq!(stdout, b"partial\n");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn missing_programs_are_not_found() {
        let err = Spec::new("driftwatch-no-such-tool").run().unwrap_err();
        assert!(matches!(err, RunError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("not found on PATH"));
        // A PATH of our own choosing is honoured.
        let d = tempfile::tempdir().unwrap();
        assert!(which_in("sh", d.path().as_os_str()).is_none());
        assert!(which_in("sh", OsStr::new("/usr/bin:/bin")).is_some());
    }
}
