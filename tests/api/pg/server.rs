//! A real PostgreSQL server (Debian's `postgresql` package), started in a temporary directory on
//! loopback and stopped when dropped: for the tests, and for `benches/soak.rs`.
//!
//! We run as root and PostgreSQL refuses root, so `initdb` and `postgres` run as the `postgres`
//! system user (set in `pre_exec`), in a directory given to that user. The server is stopped
//! (SIGQUIT, then SIGKILL) on drop; `PR_SET_PDEATHSIG` only backs that up, as it fires when the
//! *thread* that spawned the server ends, not the process.

// Dropping root for PostgreSQL and stopping it need libc calls (getpwnam, setuid, kill).
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sqlx::Connection;

/// A running PostgreSQL cluster with one database, `hume`.
pub struct Postgres {
    child: Child,
    /// The cluster's directory, removed on drop.
    _dir: tempfile::TempDir,
    port: u16,
    password: String,
}

/// The newest installed PostgreSQL's programs.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/install-system.sh --tests)")
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL version under /usr/lib/postgresql").1
}

/// The `postgres` user's uid and gid.
fn postgres_user() -> (u32, u32) {
    let name = std::ffi::CString::new("postgres").unwrap();
    // SAFETY: getpwnam is given a valid C string; the entry is read at once, before any other
    // call could overwrite it.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(!entry.is_null(), "the postgres system user exists");
    // SAFETY: checked non-null just above.
    unsafe { ((*entry).pw_uid, (*entry).pw_gid) }
}

/// `command` run as the `postgres` user, killed if the spawning thread ends first.
fn as_postgres(command: &mut Command) -> &mut Command {
    let (uid, gid) = postgres_user();
    // SAFETY: between fork and exec only async-signal-safe calls are made (setgroups, setgid,
    // setuid, prctl), with no allocation.
    unsafe {
        command.pre_exec(move || {
            if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

/// Polls until the server accepts a login (`true`), or it exits or 60 s pass (`false`).
async fn wait_until_up(child: &mut Child, url: &str, log: &Path) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            eprintln!("postgres exited: {}", std::fs::read_to_string(log).unwrap_or_default());
            return false;
        }
        if sqlx::PgConnection::connect(url).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("postgres did not answer: {}", std::fs::read_to_string(log).unwrap_or_default());
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Postgres {
    /// Initialises a cluster in a new temporary directory and starts it on a free loopback
    /// port, with password authentication over TCP; waits (bounded) until it answers.
    pub async fn start() -> Self {
        let (uid, gid) = postgres_user();
        let dir = tempfile::Builder::new().prefix("hume-pg-").tempdir().unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, &password).unwrap();
        std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).unwrap();
        let data = dir.path().join("data");
        let initdb = as_postgres(Command::new(bin_dir().join("initdb")).current_dir(dir.path()))
            .args(["-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8"])
            .args(["--locale=C", "--pwfile"])
            .arg(&pwfile)
            .arg("-D")
            .arg(&data)
            .output()
            .expect("initdb runs");
        assert!(initdb.status.success(), "initdb failed: {}", String::from_utf8_lossy(&initdb.stderr));
        for _attempt in 0..5 {
            let port = free_port();
            let log_path = dir.path().join("server.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = as_postgres(Command::new(bin_dir().join("postgres")).current_dir(dir.path()))
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-k"])
                .arg(dir.path())
                .args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
                .args(["-c", "max_connections=300"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("postgres starts");
            let admin_url = format!("postgres://postgres:{password}@127.0.0.1:{port}/postgres");
            if wait_until_up(&mut child, &admin_url, &log_path).await {
                let server = Self { child, _dir: dir, port, password };
                server.admin("CREATE DATABASE hume").await;
                return server;
            }
            // The port was taken between our probe and the server's bind: try another.
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("PostgreSQL did not start");
    }

    fn url_of(&self, database: &str) -> String {
        format!("postgres://postgres:{}@127.0.0.1:{}/{database}", self.password, self.port)
    }

    /// The URL of the `hume` database, password included.
    pub fn url(&self) -> String {
        self.url_of("hume")
    }

    /// The password in [`Postgres::url`].
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Runs one statement on the `postgres` database.
    pub async fn admin(&self, sql: &str) {
        let mut conn = sqlx::PgConnection::connect(&self.url_of("postgres")).await.unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }

    /// A pool on the `hume` database, to read what the replicas stored.
    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(&self.url()).await.unwrap()
    }

    /// Stops the server now (immediate shutdown), as an outage would.
    pub fn stop(&mut self) {
        if self.child.try_wait().unwrap().is_some() {
            return; // already stopped (and reaped: its pid may belong to another process now)
        }
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGQUIT) };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20)); // polling the child's exit
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
