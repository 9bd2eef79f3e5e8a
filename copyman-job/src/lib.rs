//! copyman's job layer: many tables copied from one source to many destinations, from one
//! snapshot, several at a time, each committed per destination when complete, resumable.
//!
//! * [`select`]: which tables (names, schemas, pg_dump-style patterns) — a pure function from the
//!   user's selection to one catalog query.
//! * [`plan`]: one table's plan (catalogs, columns by name, format), shared with
//!   `copyman table`'s single-table copy; [`sql`]: names and statements, always quoted.
//! * [`job`]: [`job::plan`] and [`job::run`]: the snapshot, the workers, the commit of each table
//!   through core's commit machine, and [`job::Event`]s for progress; its files are named for what
//!   they hold (the plan, the run, a table copied whole, as an FK group or in ranges: see [`job`]).
//! * [`state`]: the state file a resumed job reads; what a resume does with a table begun and
//!   not done is asked of the destination (`txid_status()` of the transaction ids recorded
//!   before each COMMIT), not guessed; [`identity`]: which server and database a session is
//!   on, as the server names them (the state file's name for a destination).
//! * [`sequences`]: after a copy, each destination's sequence a copied column's values come from
//!   (the one a `serial` or identity column owns, else the one its default takes `nextval` of,
//!   or a partition's parent's identity) advanced to the source's (never back), before its
//!   COMMIT.
//! * [`commit`]: ending the destinations' transactions — one COMMIT after another, or two-phase
//!   commit with a durable decision log — and recovering what a crash left prepared (also used by
//!   `copyman copy` and `copyman table` for one copy).
//!
//! What it does not do: create or alter tables on the destinations (the schema must be there),
//! carry sequences no copied column takes values from, or copy a table that is not the same name
//! on every server.
//!
//! ```no_run
//! use std::sync::Arc;
//! use copyman_job::job::{self, Options, Server};
//! use copyman_job::select::Selection;
//! use copyman_sync::Connection;
//!
//! let server = |name: &str, conn: &'static str| Server {
//!     name: name.to_owned(),
//!     connect: Arc::new(move || Connection::connect_str(conn)),
//!     own_settings: None,
//! };
//! let source = server("source", "host=src dbname=shop");
//! let dests = [server("a", "host=a dbname=shop"), server("b", "host=b dbname=shop")];
//! let selection = Selection { schemas: vec!["sales".into()], ..Selection::default() };
//! let options = Options { truncate: true, ..Options::new("/var/tmp/shop.state") };
//! let plan = job::plan(&source, &dests, &selection, &options)?;
//! let report = job::run(plan, &source, &dests, &options, &|event| eprintln!("{event:?}"))?;
//! assert!(report.succeeded());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod commit;
pub mod identity;
pub mod job;
pub mod plan;
mod resume;
pub mod select;
pub mod sequences;
pub mod sql;
pub mod state;
