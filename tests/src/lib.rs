//! Harness for end-to-end tests: finds the built binaries, makes a PKI with
//! the real `pki` commands, starts a collector on a free loopback port and
//! runs the CLI against it. Processes are killed when their guard drops.

pub mod fleet;
pub mod pg;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod prom;

/// A built binary of this workspace (`target/<profile>/<name>`), never a
/// stale one: the first call in a test binary runs `cargo build --workspace
/// --bins` for the same profile and target dir (a second or two when nothing
/// changed), so a test cannot pass or fail on a binary older than the code.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build_bins(dir));
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is not built by `cargo build --workspace --bins`: is it a binary of this workspace?",
        p.display()
    );
    p
}

fn build_bins(profile_dir: &Path) {
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(p) => p,
        None => panic!("no profile in {}", profile_dir.display()),
    };
    let target = profile_dir.parent().expect("target dir");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--workspace",
            "--bins",
            "--locked",
            "--profile",
            profile,
        ])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("running cargo to build the binaries the tests start");
    assert!(
        out.status.success(),
        "could not build the binaries the end-to-end tests start (cargo build --workspace --bins --profile {profile}):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a command to completion, failing the test with its output if it
/// does not exit 0.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().expect("spawn");
    assert!(
        out.status.success(),
        "{:?} failed ({}):\nstdout: {}\nstderr: {}",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A PKI made by `driftwatch-collector pki init`.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn init(dir: &Path) -> Pki {
        run_ok(
            Command::new(bin("driftwatch-collector"))
                .args(["pki", "init", "--dir"])
                .arg(dir)
                .args(["--server-name", "localhost", "--server-name", "127.0.0.1"]),
        );
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// `pki issue`: returns (cert, key).
    pub fn issue_host(&self, host_id: &str, out: &Path) -> (PathBuf, PathBuf) {
        run_ok(
            Command::new(bin("driftwatch-collector"))
                .args(["pki", "issue", "--dir"])
                .arg(&self.dir)
                .args(["--host-id", host_id, "--out"])
                .arg(out),
        );
        (out.join("agent.pem"), out.join("agent-key.pem"))
    }
}

impl Pki {
    /// `pki admin --role ROLE`: returns (cert, key).
    pub fn issue_admin(&self, name: &str, role: &str, out: &Path) -> (PathBuf, PathBuf) {
        run_ok(
            Command::new(bin("driftwatch-collector"))
                .args(["pki", "admin", "--dir"])
                .arg(&self.dir)
                .args(["--name", name, "--role", role, "--out"])
                .arg(out),
        );
        (
            out.join(format!("{name}.pem")),
            out.join(format!("{name}-key.pem")),
        )
    }
}

/// A running `driftwatch-collector serve`, killed on drop.
pub struct CollectorProc {
    pub child: Child,
    pub port: u16,
    pub url: String,
    pub log: PathBuf,
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl CollectorProc {
    pub fn start(pki: &Pki, data_dir: &Path, port: Option<u16>) -> CollectorProc {
        Self::start_with(pki, data_dir, port, &[])
    }

    /// Like [`CollectorProc::start`], with extra `serve` arguments (e.g.
    /// `--config FILE` for limits).
    pub fn start_with(
        pki: &Pki,
        data_dir: &Path,
        port: Option<u16>,
        extra: &[&str],
    ) -> CollectorProc {
        Self::start_wrapped(pki, data_dir, port, extra, None, None)
    }

    /// Like [`CollectorProc::start_with`], logging as `RUST_LOG=filter`
    /// (e.g. the debug "report stored" events) in `--log-format json`, so a
    /// test can read what was acknowledged with [`CollectorProc::events`].
    pub fn start_json_log(
        pki: &Pki,
        data_dir: &Path,
        extra: &[&str],
        filter: &str,
    ) -> CollectorProc {
        let mut args = vec!["--log-format", "json"];
        args.extend_from_slice(extra);
        Self::start_inner(pki, data_dir, None, &args, None, None, filter)
    }

    /// The JSON log events whose message is `message`, in log order.
    pub fn events(&self, message: &str) -> Vec<serde_json::Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["message"] == message)
            .collect()
    }

    /// Like [`CollectorProc::start_with`], run under `umask` (e.g. "000"):
    /// what the collector creates must not depend on it.
    pub fn start_under_umask(
        pki: &Pki,
        data_dir: &Path,
        extra: &[&str],
        umask: &str,
    ) -> CollectorProc {
        Self::start_wrapped(pki, data_dir, None, extra, Some(umask), None)
    }

    /// Like [`CollectorProc::start_with`], under an open-file limit (soft
    /// and hard) of `nofile`, as a unit's `LimitNOFILE=` would set.
    pub fn start_limited(
        pki: &Pki,
        data_dir: &Path,
        port: Option<u16>,
        extra: &[&str],
        nofile: Option<u64>,
    ) -> CollectorProc {
        Self::start_wrapped(pki, data_dir, port, extra, None, nofile)
    }

    fn start_wrapped(
        pki: &Pki,
        data_dir: &Path,
        port: Option<u16>,
        extra: &[&str],
        umask: Option<&str>,
        nofile: Option<u64>,
    ) -> CollectorProc {
        Self::start_inner(pki, data_dir, port, extra, umask, nofile, "info")
    }

    fn start_inner(
        pki: &Pki,
        data_dir: &Path,
        port: Option<u16>,
        extra: &[&str],
        umask: Option<&str>,
        nofile: Option<u64>,
        log_filter: &str,
    ) -> CollectorProc {
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = data_dir.with_extension(format!("{n}.log"));
        // Without a port the collector binds port 0 and we read the port it
        // got from its log: a port probed free here could be taken by a
        // parallel test before the collector binds it.
        let mut cmd = match umask {
            Some(m) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("umask {m} && exec \"$0\" \"$@\"")])
                    .arg(bin("driftwatch-collector"));
                c
            }
            None => Command::new(bin("driftwatch-collector")),
        };
        if let Some(n) = nofile {
            use std::os::unix::process::CommandExt;
            #[allow(unsafe_code)]
            // SAFETY: setrlimit is async-signal-safe and touches only the
            // child between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", port.unwrap_or(0)),
                "--data-dir",
            ])
            .arg(data_dir)
            .arg("--pki-dir")
            .arg(&pki.dir)
            .args(extra)
            .env("RUST_LOG", log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start collector");
        let mut c = CollectorProc {
            child,
            port: port.unwrap_or(0),
            url: String::new(),
            log,
        };
        if c.port == 0 {
            c.port = c.bound_port();
        }
        c.url = format!("https://localhost:{}", c.port);
        c.wait_listening();
        c
    }

    /// The port in the collector's "collector listening addr=127.0.0.1:N"
    /// log line.
    fn bound_port(&mut self) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log_text();
            let port = log
                .lines()
                .filter(|l| l.contains("collector listening"))
                .find_map(|l| l.split("127.0.0.1:").nth(1))
                .and_then(|rest| {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    digits.parse().ok()
                });
            if let Some(p) = port {
                return p;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("collector exited ({status}) before listening; log:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "collector did not log its address within 20s; log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "collector did not listen on {} within 20s; log:\n{}",
            self.port,
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait; returns whether it exited 0 within the timeout.
    pub fn stop(mut self) -> bool {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for CollectorProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The admin CLI preconfigured through the environment, as an operator
/// would set it up.
pub fn cli(pki: &Pki, url: &str) -> Command {
    let mut c = Command::new(bin("driftwatch"));
    c.env("DRIFTWATCH_COLLECTOR", url)
        .env("DRIFTWATCH_CA", pki.ca())
        .env("DRIFTWATCH_CERT", pki.dir.join("admin.pem"))
        .env("DRIFTWATCH_KEY", pki.dir.join("admin-key.pem"))
        .env("HOME", pki.dir.join("no-home"))
        .stdin(Stdio::null());
    c
}

/// The CLI with `--json`, whatever its exit code: the code, what it
/// printed as JSON (Null when nothing parses) and its stderr.
pub fn cli_any(pki: &Pki, url: &str, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = cli(pki, url).args(args).arg("--json").output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), v, stderr_of(&out))
}

/// Writes `rel` under a fake root, making its directories.
pub fn write_under(root: &Path, rel: &str, bytes: impl AsRef<[u8]>) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// A dpkg status file with openssl at `version` and bash: the package
/// difference the drift tests give one host.
pub fn dpkg_with_openssl(version: &str) -> String {
    format!(
        "Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n\n\
         Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n"
    )
}

/// Writes `rel` under a fake root with its mode and owner (uid and gid).
pub fn write_owned(root: &Path, rel: &str, bytes: impl AsRef<[u8]>, mode: u32, uid: u32) {
    use std::os::unix::fs::PermissionsExt;
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
}

/// The entry of host `id` in a sweep's JSON (`keys sweep`, `keys sweeps`).
pub fn job_host<'a>(job: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    job["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host_id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {job:#}"))
}

/// The processes of a `host show --json` answer (its processes section,
/// found by name).
pub fn processes_in(show: &serde_json::Value) -> &[serde_json::Value] {
    show["snapshot"]["sections"]
        .as_array()
        .expect("a snapshot with sections")
        .iter()
        .find(|s| s["name"] == "processes")
        .expect("a processes section")["body"]["processes"]["processes"]
        .as_array()
        .expect("a processes body")
}

/// `driftwatch <args> --json`, parsed.
pub fn cli_json(pki: &Pki, url: &str, args: &[&str]) -> serde_json::Value {
    let out = run_ok(cli(pki, url).args(args).arg("--json"));
    serde_json::from_slice(&out.stdout).expect("CLI printed JSON")
}

/// `driftwatch-agent run --once` for a host certificate.
pub fn agent_once(
    url: &str,
    ca: &Path,
    cert: &Path,
    key: &Path,
    state: &Path,
    extra: &[&str],
) -> Output {
    Command::new(bin("driftwatch-agent"))
        .args(["run", "--once", "--collector", url, "--ca"])
        .arg(ca)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("spawn agent")
}

/// Processes in /proc right now: the oracle for the process collector.
pub fn proc_count() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .count()
}

/// A minimal fake host filesystem for `--root`: hostname, os-release and
/// the machine facts identity is bound to.
pub fn fake_root(dir: &Path, hostname: &str, machine_id: &str, product_uuid: &str) {
    let w = |rel: &str, text: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("etc/hostname", &format!("{hostname}\n"));
    w(
        "etc/os-release",
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    );
    w("etc/machine-id", &format!("{machine_id}\n"));
    w(
        "sys/class/dmi/id/product_uuid",
        &format!("{product_uuid}\n"),
    );
    w("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
}

/// `driftwatch-agent <args>` with stdin closed.
pub fn agent(args: &[&str]) -> Command {
    let mut c = Command::new(bin("driftwatch-agent"));
    c.args(args).stdin(Stdio::null());
    c
}

/// A fresh key pair made by `ssh-keygen` in `dir` as `<name>`/`<name>.pub`:
/// returns (public key line, fingerprint as `ssh-keygen -lf` prints it).
pub fn ssh_keygen(dir: &Path, name: &str, kind: &str, comment: &str) -> (String, String) {
    let f = dir.join(name);
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", comment, "-f"])
            .arg(&f),
    );
    let pub_path = dir.join(format!("{name}.pub"));
    let public = std::fs::read_to_string(&pub_path)
        .unwrap()
        .trim()
        .to_string();
    let out = run_ok(Command::new("ssh-keygen").arg("-lf").arg(&pub_path));
    let fp = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    (public, fp)
}

/// A `driftwatch-agent run` in the background (it holds the Commands
/// stream), killed on drop; its log is kept beside the state dir.
pub struct AgentProc {
    pub child: Child,
    pub log: PathBuf,
}

impl AgentProc {
    /// `run --interval <interval>` with a host certificate on fake `root`.
    pub fn start(
        url: &str,
        ca: &Path,
        (cert, key): (&Path, &Path),
        state: &Path,
        root: &Path,
        interval: &str,
    ) -> AgentProc {
        let log = state.with_extension("log");
        let child = Command::new(bin("driftwatch-agent"))
            .args(["run", "--interval", interval, "--collector", url, "--ca"])
            .arg(ca)
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .arg("--state-dir")
            .arg(state)
            .arg("--root")
            .arg(root)
            .args(["--section", "host", "--section", "ssh_keys"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start agent");
        AgentProc { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` every 100 ms until it returns Some, or panics after `secs`
/// saying what it waited for.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {secs}s for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A pseudo-terminal: (controller side to type into, path of the terminal
/// side to give a child as stdin), for testing what a CLI asks a person.
pub fn pty() -> (std::fs::File, PathBuf) {
    use std::os::fd::FromRawFd;
    #[allow(unsafe_code)]
    // SAFETY: posix_openpt/grantpt/unlockpt/ptsname on a fd we own; ptsname's
    // static buffer is copied at once and this harness is the only caller
    // on its thread.
    unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(fd >= 0, "posix_openpt failed");
        assert_eq!(libc::grantpt(fd), 0, "grantpt failed");
        assert_eq!(libc::unlockpt(fd), 0, "unlockpt failed");
        let name = libc::ptsname(fd);
        assert!(!name.is_null(), "ptsname failed");
        let path = std::ffi::CStr::from_ptr(name)
            .to_string_lossy()
            .into_owned();
        (std::fs::File::from_raw_fd(fd), PathBuf::from(path))
    }
}
