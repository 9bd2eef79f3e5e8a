//! Throwaway PostgreSQL clusters from the installed server binaries: what `copyman demo` runs
//! its copies between, and what copyman's tests run against (through copyman-testkit).
//!
//! [`Cluster::start`] runs `initdb` and `pg_ctl start` with the installed
//! PostgreSQL binaries into a fresh temporary directory, on a free port of
//! `127.0.0.1` and a private Unix socket directory, with durability switched
//! off for speed. Dropping the [`Cluster`] stops the server and deletes the
//! directory; a watchdog does the same if the process dies without dropping it.
//!
//! Not a way to run a server you keep: a cluster's data lives only as long as the [`Cluster`].
//! Failures (no server binaries, `initdb` refusing) panic with a message naming what is wrong:
//! a caller that must turn them into errors, as `copyman demo` does, catches the panic.
//!
//! ```no_run
//! use copyman_cluster::{Auth, Cluster};
//!
//! let cluster = Cluster::start();
//! let db = cluster.create_database();
//! let mut client = cluster.connect(&db);
//! client.batch_execute("CREATE TABLE t (x int)").unwrap();
//!
//! // A cluster that insists on SCRAM passwords.
//! let strict = Cluster::builder().auth(Auth::ScramSha256).setting("work_mem", "8MB").start();
//! let conninfo = strict.conninfo("postgres"); // includes the password
//! # drop(conninfo);
//! ```
//!
//! # Finding PostgreSQL
//!
//! `initdb`, `pg_ctl` and `postgres` are looked for, all in one directory,
//! in `$COPYMAN_PG_BINDIR` if set, else on `$PATH`, then in
//! `pg_config --bindir`, then in `/usr/lib/postgresql/<version>/bin`
//! (highest version first). If they are missing the first cluster start
//! panics saying so: tests never skip silently.
//!
//! # Where clusters live
//!
//! Each cluster gets a directory `copyman-cluster-<pid>-<n>-<nanos>` (data
//! directory, socket directory and server log) under
//! `$COPYMAN_CLUSTER_TMPDIR` if set, else `/dev/shm` where it exists (a tmpfs:
//! `initdb` runs two to four times faster there than on a disk), else
//! [`std::env::temp_dir`] (`$TMPDIR`, usually `/tmp`).
//!
//! # Running as root
//!
//! `initdb` and `postgres` refuse to run as root. When run as
//! root, the server programs run as the OS user `postgres` (through
//! `runuser`), which owns the cluster's directory; the directory the
//! clusters are created in must be enterable by that user.
//!
//! # Cleanup
//!
//! * Dropping a [`Cluster`], also while unwinding from a panic,
//!   stops the server with `pg_ctl stop -m immediate` and removes its
//!   directory.
//! * PostgreSQL itself does not exit when the process that started it dies
//!   (`pg_ctl` puts it in its own session). So every cluster also has a
//!   watchdog: a small `sh` process, in its own process group, reading a
//!   pipe from the process that started it. When that process ends in any way
//!   (normal exit with a cluster in a `static` never dropped, `process::exit`, a
//!   panic with `panic = "abort"`, SIGKILL, Ctrl-C) the pipe closes and the
//!   watchdog stops the server and removes the directory — again, for half
//!   a minute, if an `initdb` or `pg_ctl` it had started makes it anew. Only if the
//!   watchdog itself is killed too (e.g. `kill -9` of the whole process
//!   group, or a machine crash) can a server outlive its tests; look for
//!   `copyman-cluster-*` directories under the temp dir then.
#![forbid(unsafe_code)]

mod binaries;
mod cluster;
mod process;
mod tls;
mod watchdog;

pub use cluster::{Auth, Builder, Cluster, HOST, SUPERUSER};
pub use tls::{CERT_USER, TlsFiles};
