//! A real PostgreSQL for tests: Debian's `postgresql` package (installed by
//! scripts/ci-deps.sh), a cluster made with `initdb` in a fresh temp dir,
//! listening on a unix socket in that dir only (and, with TLS, on one
//! loopback TCP port), with a database and a role for the collector.
//! Whoever starts it owns it: dropping the [`PgCluster`] stops the server
//! (fast shutdown, waited for) and removes the dir.
//!
//! initdb and postgres refuse to run as root, and CI runs as root: then
//! every PostgreSQL process runs as the unprivileged user [`PG_USER`]
//! (made by ci-deps.sh, or here if missing) through `setpriv`, which execs
//! rather than forks, so the child we hold is the postmaster itself.
//!
//! Under CI=true a missing PostgreSQL fails the test; elsewhere
//! [`PgCluster::start`] returns None and says why on stderr.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The unprivileged user PostgreSQL runs as when the tests run as root.
pub const PG_USER: &str = "driftwatch-pg";
/// The collector's role and database in every cluster.
pub const ROLE: &str = "driftwatch";
pub const DATABASE: &str = "driftwatch";
const SUPERUSER: &str = "dwadmin";
/// The port the unix socket is named after (`.s.PGSQL.5432`); nothing
/// listens on TCP unless TLS is asked for.
const SOCKET_PORT: u16 = 5432;

/// TLS for the server: PEM certificate (chain) and key.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub cert_pem: String,
    pub key_pem: String,
}

#[derive(Clone, Debug, Default)]
pub struct PgOptions {
    /// Also listen on a loopback TCP port with ssl=on and these files.
    pub tls: Option<ServerTls>,
    /// Where the cluster's temp dir goes (default: `DRIFTWATCH_PG_TMP`, else
    /// the system temp dir). The bench puts it on the repository's disk.
    pub base_dir: Option<PathBuf>,
    /// Extra `-c name=value` server settings.
    pub settings: Vec<(String, String)>,
}

/// A running test cluster.
pub struct PgCluster {
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
    bin: PathBuf,
    socket_dir: PathBuf,
    tcp_port: Option<u16>,
    password: String,
    superuser_password: String,
    run_as: Option<(u32, u32)>,
}

/// The directory holding initdb, postgres and psql: `DRIFTWATCH_PG_BIN`,
/// else the newest /usr/lib/postgresql/*/bin.
pub fn find_bin_dir() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("DRIFTWATCH_PG_BIN") {
        let p = PathBuf::from(p);
        return if p.join("initdb").exists() {
            Ok(p)
        } else {
            Err(format!("DRIFTWATCH_PG_BIN={} holds no initdb", p.display()))
        };
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(root)
        .map_err(|e| format!("{}: {e}", root.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, b)| b)
        .ok_or_else(|| format!("no {}/*/bin/initdb", root.display()))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

impl PgCluster {
    /// A cluster on a unix socket only. None (with the reason on stderr)
    /// when PostgreSQL is not installed outside CI; a panic under CI=true.
    pub fn start() -> Option<PgCluster> {
        Self::start_with(PgOptions::default())
    }

    pub fn start_with(opts: PgOptions) -> Option<PgCluster> {
        let bin = match find_bin_dir() {
            Ok(b) => b,
            Err(why) if in_ci() => panic!(
                "PostgreSQL is needed by this test and is not installed ({why}): run scripts/ci-deps.sh"
            ),
            Err(why) => {
                eprintln!(
                    "skipped: PostgreSQL is not installed ({why}); scripts/ci-deps.sh installs it"
                );
                return None;
            }
        };
        Some(Self::start_in(bin, opts))
    }

    fn start_in(bin: PathBuf, opts: PgOptions) -> PgCluster {
        let run_as = if is_root() { Some(ensure_user()) } else { None };
        let base = opts
            .base_dir
            .clone()
            .or_else(|| std::env::var_os("DRIFTWATCH_PG_TMP").map(PathBuf::from))
            .unwrap_or_else(std::env::temp_dir);
        fs::create_dir_all(&base).unwrap_or_else(|e| panic!("{}: {e}", base.display()));
        let dir = tempfile::Builder::new()
            .prefix("dwpg-")
            .tempdir_in(&base)
            .unwrap_or_else(|e| panic!("temp dir in {}: {e}", base.display()));
        let root = dir.path().to_path_buf();
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&root, Some(uid), Some(gid)).expect("chown cluster dir");
        }
        let data = root.join("data");
        let superuser_password = random_hex(16);
        let password = random_hex(16);
        let pwfile = root.join("superuser.pw");
        write_private(&pwfile, &superuser_password, run_as);
        let mut c = PgCluster {
            child: None,
            dir: Some(dir),
            bin,
            socket_dir: root.clone(),
            tcp_port: None,
            password,
            superuser_password,
            run_as,
        };
        // --no-sync: initdb's own files; the server itself runs with fsync on.
        let out = c
            .as_pg_user(&c.bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "--auth=scram-sha-256", "-E", "UTF8"])
            .args(["--locale=C", "--no-sync", "--no-instructions"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("running initdb");
        check(&out, "initdb");
        let _ = fs::remove_file(&pwfile);

        let mut settings: Vec<(String, String)> = vec![
            ("listen_addresses".into(), String::new()),
            ("unix_socket_directories".into(), root.display().to_string()),
            ("port".into(), SOCKET_PORT.to_string()),
            ("fsync".into(), "on".into()),
            ("synchronous_commit".into(), "on".into()),
            ("shared_buffers".into(), "32MB".into()),
            ("max_connections".into(), "100".into()),
            ("logging_collector".into(), "off".into()),
        ];
        if let Some(tls) = &opts.tls {
            let port = crate::free_port();
            let (cert, key) = (data.join("server.crt"), data.join("server.key"));
            write_private(&cert, &tls.cert_pem, run_as);
            write_private(&key, &tls.key_pem, run_as);
            settings.extend([
                ("listen_addresses".into(), "127.0.0.1".into()),
                ("ssl".into(), "on".into()),
                ("ssl_cert_file".into(), cert.display().to_string()),
                ("ssl_key_file".into(), key.display().to_string()),
            ]);
            // The socket is named after the port too: keep it at the TCP one.
            settings.push(("port".into(), port.to_string()));
            c.tcp_port = Some(port);
        }
        settings.extend(opts.settings.iter().cloned());
        let mut cmd = c.as_pg_user(&c.bin.join("postgres"));
        cmd.arg("-D").arg(&data);
        for (k, v) in &settings {
            cmd.arg("-c").arg(format!("{k}={v}"));
        }
        let log = fs::File::create(root.join("postgres.log")).expect("postgres log");
        if let Some((uid, gid)) = run_as {
            let _ = std::os::unix::fs::chown(root.join("postgres.log"), Some(uid), Some(gid));
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        c.child = Some(cmd.spawn().expect("starting postgres"));
        c.wait_ready();
        c.psql_as_superuser(
            "postgres",
            &format!("CREATE ROLE {ROLE} LOGIN PASSWORD '{}'", c.password),
        );
        c.create_database(DATABASE);
        c
    }

    fn as_pg_user(&self, program: &Path) -> Command {
        let mut cmd = match self.run_as {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.env("LC_ALL", "C").env_remove("PGPASSWORD");
        cmd
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let socket = self.socket_dir.join(format!(".s.PGSQL.{}", self.port()));
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("postgres exited at start ({status}):\n{}", self.log_text());
            }
            if socket.exists() {
                let out = Command::new(self.bin.join("pg_isready"))
                    .arg("-h")
                    .arg(&self.socket_dir)
                    .args(["-p", &self.port().to_string(), "-q"])
                    .output()
                    .expect("running pg_isready");
                if out.status.success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready within 60 s:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port of the socket (and of TCP, with TLS).
    pub fn port(&self) -> u16 {
        self.tcp_port.unwrap_or(SOCKET_PORT)
    }

    /// The directory of the unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The cluster's own dir (data, log, socket).
    pub fn dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The collector role's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `postgres://driftwatch@<socket dir, percent-encoded>:PORT/driftwatch`.
    pub fn url(&self) -> String {
        self.url_for(DATABASE)
    }

    pub fn url_for(&self, db: &str) -> String {
        let host: String = self
            .socket_dir
            .display()
            .to_string()
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("postgres://{ROLE}@{host}:{}/{db}", self.port())
    }

    /// With TLS: `postgres://driftwatch@HOST:PORT/driftwatch` on loopback.
    pub fn tcp_url(&self, host: &str) -> Option<String> {
        self.tcp_port
            .map(|p| format!("postgres://{ROLE}@{host}:{p}/{DATABASE}"))
    }

    /// Writes the collector role's password into a 0600 file `name` in the
    /// cluster's dir (what `--store-password-file` reads).
    pub fn password_file(&self, name: &str) -> PathBuf {
        let p = self.socket_dir.join(name);
        write_private(&p, &format!("{}\n", self.password), None);
        p
    }

    /// A fresh empty database owned by the collector role: one per test
    /// when several share a cluster.
    pub fn create_database(&self, name: &str) -> String {
        self.psql_as_superuser("postgres", &format!("CREATE DATABASE {name} OWNER {ROLE};"));
        self.url_for(name)
    }

    /// Runs SQL as the superuser in `db`; returns psql's unaligned,
    /// tuples-only output.
    pub fn psql_as_superuser(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .arg("-h")
            .arg(&self.socket_dir)
            .args(["-p", &self.port().to_string(), "-U", SUPERUSER, "-d", db])
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGPASSWORD", &self.superuser_password)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .expect("running psql");
        check(&out, &format!("psql {sql}"));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(self.socket_dir.join("postgres.log")).unwrap_or_default()
    }

    /// Stops the server (fast shutdown) and waits; true if it stopped by
    /// itself within 30 s.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on our own child's pid (the postmaster: setpriv execs).
        unsafe {
            libc::kill(child.id() as i32, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if !self.stop() {
            eprintln!("postgres did not stop within 30 s of a fast shutdown: killed");
        }
        // A test that wants the log after a failure reads it before drop;
        // DRIFTWATCH_PG_KEEP=1 keeps the dir for a look.
        if std::env::var_os("DRIFTWATCH_PG_KEEP").is_some()
            && let Some(d) = self.dir.take()
        {
            eprintln!("kept PostgreSQL test cluster at {}", d.keep().display());
        }
    }
}

fn is_root() -> bool {
    #[allow(unsafe_code)]
    // SAFETY: geteuid(2) has no preconditions.
    unsafe {
        libc::geteuid() == 0
    }
}

/// Uid and gid of [`PG_USER`], made if missing (ci-deps.sh makes it too;
/// two tests racing to make it both end with the user there).
fn ensure_user() -> (u32, u32) {
    let ids = || -> Option<(u32, u32)> {
        let id = |flag: &str| -> Option<u32> {
            let out = Command::new("id").args([flag, PG_USER]).output().ok()?;
            out.status.success().then_some(())?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        };
        Some((id("-u")?, id("-g")?))
    };
    if let Some(ids) = ids() {
        return ids;
    }
    let out = Command::new("useradd")
        .args(["--system", "--user-group", "--no-create-home"])
        .args(["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"])
        .arg(PG_USER)
        .output();
    ids().unwrap_or_else(|| {
        panic!(
            "no user {PG_USER} to run PostgreSQL as (initdb refuses root) and useradd failed \
             ({out:?}): run scripts/ci-deps.sh"
        )
    })
}

fn write_private(path: &Path, text: &str, owner: Option<(u32, u32)>) {
    fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod 0600");
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
    }
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("reading /dev/urandom");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The harness's own promise: a server that answers as the collector's
    /// role with its password, refuses a wrong one, listens on no TCP port,
    /// and is gone (process and dir) after drop.
    #[test]
    fn a_cluster_starts_answers_and_is_gone_after_drop() {
        let Some(pg) = PgCluster::start() else {
            return;
        };
        let psql = |password: &str| {
            Command::new(pg.bin.join("psql"))
                .arg("-h")
                .arg(pg.socket_dir())
                .args(["-p", &pg.port().to_string(), "-U", ROLE, "-d", DATABASE])
                .args(["-X", "-A", "-t", "-c", "SELECT current_user, current_setting('fsync'), current_setting('listen_addresses')"])
                .env("PGPASSWORD", password)
                .output()
                .unwrap()
        };
        let ok = psql(pg.password());
        check(&ok, "psql as the collector role");
        assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "driftwatch|on|");
        let bad = psql("wrong");
        assert!(!bad.status.success(), "a wrong password must be refused");
        assert!(
            String::from_utf8_lossy(&bad.stderr).contains("password authentication failed"),
            "{}",
            String::from_utf8_lossy(&bad.stderr)
        );
        let pid = pg.child.as_ref().unwrap().id();
        let dir = pg.dir().to_path_buf();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(pg);
        assert!(!dir.exists(), "the cluster dir is removed");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "the postmaster is stopped and reaped"
        );
    }
}
