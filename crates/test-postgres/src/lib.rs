//! A throwaway PostgreSQL server for tests: `initdb` into a temporary directory, `pg_ctl start` on a free
//! loopback port, stopped and deleted when the [`TestPostgres`] is dropped. Tests that need PostgreSQL use it
//! instead of a system service and an environment variable, so `cargo test` needs nothing running beforehand.
//!
//! The server binaries are looked up in `$PG_BIN`, then in Debian's `/usr/lib/postgresql/<newest>/bin`, then on
//! `PATH`. `initdb` and `pg_ctl` refuse to run as root, so as root (CI) the server runs as the `postgres` user
//! (created by Debian's `postgresql` package) through `runuser`, on a directory that user owns.
//!
//! ```no_run
//! let server = test_postgres::TestPostgres::start();
//! let url = server.fresh_database(); // postgres://postgres@127.0.0.1:<port>/test_<n>
//! # drop(url);
//! ```

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// What to tell a developer whose machine lacks PostgreSQL.
const HOW_TO_GET_IT: &str = "PostgreSQL's server binaries (initdb, pg_ctl) were not found: run `bash scripts/test.sh`, \
which installs them on Debian, or `apt-get install postgresql`, or set PG_BIN to the directory holding them";

/// The operating-system user a server runs as when the tests run as root.
const SERVICE_USER: &str = "postgres";

/// A running PostgreSQL server that lives as long as this value.
pub struct TestPostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_root: bool,
    // Declared last: the directory is removed after the server has stopped.
    _dir: tempfile::TempDir,
}

impl TestPostgres {
    /// Starts a fresh server, or panics saying what is missing and how to get it.
    pub fn start() -> Self {
        match Self::try_start() {
            Ok(server) => server,
            Err(error) => panic!("cannot start a test PostgreSQL server: {error}"),
        }
    }

    /// Starts a fresh server (a few attempts, in case another process takes the free port first).
    pub fn try_start() -> Result<Self, String> {
        let bin = server_binaries().ok_or(HOW_TO_GET_IT)?;
        let as_root = running_as_root();
        let dir = tempfile::Builder::new().prefix("test-postgres-").tempdir().map_err(|e| e.to_string())?;
        if as_root {
            run(Command::new("chown").args([SERVICE_USER, "--"]).arg(dir.path()))
                .map_err(|e| format!("{e} (as root the server runs as the `{SERVICE_USER}` user: is it there?)"))?;
        }
        let data = dir.path().join("data");
        let mut initdb = command(&bin, "initdb", as_root);
        initdb.args(["--auth=trust", "--username=postgres", "--encoding=UTF8", "--no-sync", "-D"]).arg(&data);
        run(&mut initdb)?;
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            match pg_ctl_start(&bin, &data, dir.path(), port, as_root) {
                Ok(()) => return Ok(TestPostgres { bin, data, port, as_root, _dir: dir }),
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }

    /// The URL of the server's `postgres` database, as the superuser `postgres`.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Creates a database with a name no other call in this process has used, and returns its URL.
    pub fn fresh_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let mut createdb = Command::new(self.bin.join("createdb"));
        createdb.args(["-h", "127.0.0.1", "-U", "postgres", "-p", &self.port.to_string(), &name]);
        if let Err(error) = run(&mut createdb) {
            panic!("createdb {name} failed: {error}");
        }
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // Immediate: the data is thrown away anyway, and a test that failed may have left connections open.
        let mut stop = command(&self.bin, "pg_ctl", self.as_root);
        stop.args(["stop", "-m", "immediate", "-w", "-D"]).arg(&self.data);
        let _ = run(&mut stop);
    }
}

fn pg_ctl_start(bin: &Path, data: &Path, dir: &Path, port: u16, as_root: bool) -> Result<(), String> {
    // The socket goes in our own directory: /var/run/postgresql may not exist or not be writable.
    let options = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c synchronous_commit=off -c max_connections=300",
        dir.display()
    );
    let log = dir.join("server.log");
    let mut start = command(bin, "pg_ctl", as_root);
    start.args(["start", "-w", "-t", "60", "-o", &options, "-l"]).arg(&log).arg("-D").arg(data);
    run(&mut start).map(drop).map_err(|error| {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        format!("{error}\nserver log:\n{log}")
    })
}

/// `bin/name`, run as the service user when we are root.
fn command(bin: &Path, name: &str, as_root: bool) -> Command {
    let program = bin.join(name);
    if as_root {
        let mut command = Command::new("runuser");
        command.args(["-u", SERVICE_USER, "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command) -> Result<Output, String> {
    let output = command.output().map_err(|e| format!("{:?}: {e}", command.get_program()))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{:?} {:?} failed ({}): {}{}",
            command.get_program(),
            command.get_args().collect::<Vec<_>>(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// `$PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin` (Debian), else the directory of `initdb` on
/// `PATH`.
fn server_binaries() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("PG_BIN") {
        return Some(PathBuf::from(bin));
    }
    let newest_debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| Some((entry.file_name().to_str()?.parse::<u32>().ok()?, entry.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin);
    newest_debian.or_else(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).find(|dir| dir.join("initdb").exists() || dir.join("initdb.exe").exists())
    })
}

fn running_as_root() -> bool {
    if !cfg!(unix) {
        return false;
    }
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.local_addr().map(|address| address.port()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_and_stops() {
        let server = TestPostgres::start();
        let url = server.fresh_database();
        assert!(url.starts_with("postgres://postgres@127.0.0.1:"), "{url}");
        let mut psql = Command::new(server.bin.join("psql"));
        psql.arg(&url).args(["-tAc", "SELECT 40 + 2"]);
        assert_eq!(run(&mut psql).unwrap().stdout.trim_ascii(), b"42");
        let data = server.data.clone();
        drop(server);
        assert!(!data.exists(), "the data directory is removed");
    }
}
