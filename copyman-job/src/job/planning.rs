//! The job's plan, read before anything is written: [`plan`] and [`plan_with`] connect to every
//! server, list the selection on the source, read each table's catalog everywhere and the state
//! file, and give a [`Plan`]: its [`TablePlan`]s, each with a [`DestPlan`] per destination. With
//! them what only planning uses: each destination's name in the state file ([`identity`]), the
//! state file read for a resume (`resumed`) or checked before a fresh run (`fresh`), the foreign
//! keys and partitions that order the tables, and a large table's [`split`] into ctid ranges.

use std::collections::{HashMap, HashSet};
use std::io;
use std::panic::resume_unwind;
use std::path::Path;
use std::time::Duration;

use copyman_sync::Connection;

use super::error::{JobError, TableError, describe, describe_with};
use super::options::{Options, Server};
use super::report::Event;
#[cfg(doc)]
use super::run;
use super::sessions::{ensure, give_up};
use crate::commit;
use crate::identity::Identity;
use crate::plan::{
    ArraySides, MoneySides, ReadSettings, ServerForms, choose_format, lookup, lookup_many, major,
    needs_select, resolve_columns,
};
use crate::resume::{self, ResumeWait, Resumed};
use crate::select::{self, RowSecurity, Selection};
use crate::sequences::{self, Carry};
use crate::sql::{Format, Hold, Ident, Relation, TableCopy, TableName, own_rows};
use crate::state::{self, Recorded};

/// What a destination does with a table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DestPlan {
    /// Copy it, truncating the table first (in the same transaction) when `truncate`.
    Copy {
        /// Emptied first: `--truncate`, or a resumed copy whose earlier attempt may have left
        /// rows there that cannot be told from the destination's own (see [`crate::state`]).
        truncate: bool,
        /// `COPY … FREEZE` (truncated in the same transaction, an ordinary table).
        freeze: bool,
        /// The table's `pg_class.relkind` there (how it is emptied: [`TablePlan::emptying`]).
        kind: String,
        /// Emptied first, a `DELETE` of its rows would touch nothing else there
        /// ([`sql::delete_is_quiet_query`](crate::sql::delete_is_quiet_query)).
        quiet_delete: bool,
        /// The copied columns' sequences, advanced there to the source's before its COMMIT.
        sequences: Vec<Carry>,
        /// A binary copy's check, in its transaction before its COPY, that the copied columns
        /// still have the types the plan read ([`Relation::types_unchanged`]).
        guard: Option<String>,
        /// Writing it there fires triggers of the user's (on `INSERT`, or on `TRUNCATE` when
        /// emptied first) that may change other tables: under [`Options::verify`] the tables
        /// verified there are compared again once the job's writes are over.
        triggers: bool,
    },
    /// The state file records it done, with these rows: skipped.
    Done(u64),
    /// It cannot be copied there (missing, different columns): the error.
    Refused(TableError),
}

/// One table of the job.
#[derive(Debug, Clone)]
pub struct TablePlan {
    /// The table (the same name on every server).
    pub table: TableName,
    /// `pg_class.relkind` on the source.
    pub kind: String,
    /// Its heap's size on the source, in bytes: what its ranges split.
    pub size: u64,
    /// Its size with its TOAST on the source, in bytes ([`Selected::bytes`]): its weight in the
    /// job's progress, and the order of the job (largest first).
    ///
    /// [`Selected::bytes`]: crate::select::Selected::bytes
    pub bytes: u64,
    /// About how many rows it holds.
    pub estimate: Option<u64>,
    /// The columns copied, by name.
    pub columns: Vec<Ident>,
    /// The format.
    pub format: Format,
    /// Why that format.
    pub format_reason: String,
    /// The source's statement.
    pub send: String,
    /// The destinations' statement (without `FREEZE`).
    pub receive: String,
    /// A table split into ctid ranges: the source's statement for each range (empty: not split).
    pub ranges: Vec<String>,
    /// Each destination's part.
    pub destinations: Vec<DestPlan>,
    /// The tables of the job it references by a foreign key (indexes into [`Plan::tables`]):
    /// it starts only once they finished, so that its rows find theirs committed. Edges that
    /// would close a cycle are left out (those tables keep the size order).
    pub after: Vec<usize>,
    /// Every table that references it by a foreign key on some destination (of the job or not),
    /// schema-qualified and quoted: a `TRUNCATE` of it alone fails there (0A000).
    pub referenced_by: Vec<String>,
    /// Locked before the snapshot that reads it ([`lockable`](crate::sql::lockable), and the
    /// role may: `SELECT` on it as a whole). The job's snapshot session holds an ACCESS SHARE
    /// lock on it to the job's end, and a worker reading it under that snapshot takes its own
    /// with `NOWAIT` first; without the job's snapshot a worker locks it before its own
    /// ([`lock_as_worker`](crate::sql::lock_as_worker)).
    pub locked: bool,
    /// A table not [`locked`](Self::locked) (its role may read only its columns): its files as
    /// the plan found them before the job's snapshot ([`files_query`](crate::sql::files_query)),
    /// compared once the copy read it (`running::files_unchanged`).
    pub files: Option<String>,
    /// A binary copy's check, in the source's transaction before its COPY, that the copied
    /// columns still have the types the plan read ([`Relation::types_unchanged`], the table
    /// locked first where the role may).
    pub source_guard: Option<String>,
    /// The source's encoding, other than UTF8, held by every destination or by some (the
    /// others UTF8, which convert from it), in which its data passes where its statements are
    /// ASCII ([`Options::data_encoding`](super::Options::data_encoding)).
    pub data_encoding: Option<String>,
    /// Every server holds [`data_encoding`](Self::data_encoding): its `--verify` checksums hash
    /// each side's bytes in it, unconverted. (Beside a UTF8 destination each side's text is
    /// hashed as UTF-8: its characters are the same on every side.)
    pub checksum_unconverted: bool,
    /// For each destination, the copied columns of another type there than on the source, each
    /// with how its `--verify` checksum reads them back in the source's type (`{}` the column;
    /// [`crate::plan::read_back`]: a `real`'s `1e-05` is `0.00001` in a `numeric`, the same
    /// value in other words; a `timestamp` in a `timestamptz` is its wall clock in the zone the
    /// copy read it in). Empty where it is not copied now nor compared done earlier. A column
    /// compared in a common form instead ([`compare_forms`]) is not among them.
    ///
    /// [`compare_forms`]: Self::compare_forms
    pub read_as: Vec<Vec<(Ident, String)>>,
    /// The copied columns of another type on some destination whose values every side's
    /// `--verify` checksum reads in one form (a number's scale trimmed, a JSON value as `jsonb`):
    /// `5` in an `int` and `5.00` in a `numeric(10,2)` are one value, which reading either back
    /// in the other's type cannot show (`'5.00'` is no `int`). [`crate::sql::comparison_form`].
    pub compare_forms: Vec<(Ident, &'static str)>,
    /// The settings (`DateStyle`, `TimeZone`, `IntervalStyle`, `array_nulls`), with their
    /// values, every side's `--verify` checksum reads text in, where a text column is compared
    /// in a date's, an interval's or an array's type
    /// ([`crate::plan::compared_in_destination_type`]): those the destinations read the copy
    /// in ([`crate::plan::checksum_reads`]) — not the checksum's own (`YMD`, `UTC`), in which
    /// a faithful copy of `01/02/2026` differed, or failed to read (recheck46 F3), nor the
    /// source's (types50 F2, F3).
    pub checksum_reads_in: Vec<(&'static str, String)>,
}

impl TablePlan {
    /// Whether every statement its copy sends names only ASCII (its table, columns, the tables
    /// that reference it): a session in another encoding than copyman's UTF-8 reads those
    /// alike ([`Options::data_encoding`](super::Options::data_encoding)).
    pub fn speaks_ascii(&self) -> bool {
        let guards = self.destinations.iter().filter_map(|d| match d {
            DestPlan::Copy { guard, .. } => guard.as_deref(),
            _ => None,
        });
        [self.send.as_str(), self.receive.as_str()]
            .into_iter()
            .chain(self.ranges.iter().map(String::as_str))
            .chain(self.source_guard.as_deref())
            .chain(self.referenced_by.iter().map(String::as_str))
            .chain(guards)
            .all(str::is_ascii)
            && self.table.to_string().is_ascii()
    }

    /// Whether another table references it by a foreign key (on some destination): it is then
    /// emptied with a `DELETE` ([`crate::sql::emptying`]).
    pub fn referenced(&self) -> bool {
        let me = self.table.to_string();
        self.referenced_by.iter().any(|by| *by != me)
    }

    /// The statement that empties it on a destination where it is a relation of `kind`, and
    /// where a `DELETE` of its rows would touch nothing else (`quiet_delete`): a `DELETE` where
    /// it is referenced and that is so, else a `TRUNCATE` (refused where it is referenced).
    pub fn emptying(&self, kind: &str, quiet_delete: bool) -> String {
        crate::sql::emptying(&self.table, kind, self.referenced() && quiet_delete)
    }

    /// Destination `d`'s check that the copied columns still have the types the plan read, to
    /// run in its transaction before the COPY (a binary copy's: [`DestPlan::Copy`]'s `guard`).
    pub fn guard(&self, d: usize) -> Option<&str> {
        match self.destinations.get(d) {
            Some(DestPlan::Copy { guard, .. }) => guard.as_deref(),
            _ => None,
        }
    }

    /// Whether it is emptied first on some destination (`--truncate`, or a resume taking it
    /// up again).
    pub fn emptied(&self) -> bool {
        self.destinations
            .iter()
            .any(|d| matches!(d, DestPlan::Copy { truncate: true, .. }))
    }

    /// The statement for a destination, with `FREEZE` when it truncated the table.
    pub fn receive_for(&self, freeze: bool) -> String {
        if freeze {
            // The options end the statement: `… (FORMAT x)` becomes `… (FORMAT x, FREEZE)`.
            let mut sql = self.receive.clone();
            if sql.ends_with(')') {
                sql.pop();
                sql.push_str(", FREEZE)");
            }
            sql
        } else {
            self.receive.clone()
        }
    }
}

/// A planned job, ready to [`run`].
pub struct Plan {
    /// The tables, largest first.
    pub tables: Vec<TablePlan>,
    /// The FK-linked groups of tables emptied first, each copied as one unit
    /// ([`crate::plan::Group`]).
    pub groups: Vec<crate::plan::Group>,
    /// What the plan did with the selection that the user should hear of: each partition left
    /// out because its partitioned ancestor is selected too (its rows are copied with it), and
    /// each partition excluded whose rows its selected ancestor copies all the same.
    pub notes: Vec<String>,
    /// Each destination left out under `keep_going` (it cannot be reached, its pre-flight
    /// refused it, its planning session stopped answering), with why: a warning, as a one-table
    /// run says it (it was one of the notes).
    pub left_out: Vec<String>,
    /// Each destination as the state file names it ([`identity`], or
    /// [`state::unidentified_key`] for one that cannot say).
    pub keys: Vec<String>,
    /// The source as the state file names it ([`identity`]), if it can say: a resume from
    /// another source is refused.
    pub source: Option<String>,
    /// The exported snapshot, if the job uses one.
    pub snapshot: Option<String>,
    /// What the state file said (empty unless resuming).
    pub recorded: Recorded,
    /// The selection, as the state file records it ([`Selection::key`]).
    pub selection: String,
    /// The source's partitions and partitioned tables not selected whose rows a selected table
    /// shares (its ancestors, its partitions): claimed with the tables
    /// ([`StateFile::claim`](crate::state::StateFile::claim)).
    pub(super) relatives: Vec<String>,
    /// Each table and the source's oids of what its copy covers (itself and its partitions):
    /// recorded with the claims ([`StateFile::covers`](crate::state::StateFile::covers)).
    pub(super) covers: Vec<(String, Vec<u64>)>,
    /// Each table's columns on the source as the plan read them ([`source_columns`]): under
    /// `--no-snapshot`, a worker compares them, and the covers, once it locked the table.
    pub(super) columns: Vec<(String, String)>,
    /// Tables begun and not recorded done by an earlier run whose commit the destination
    /// confirmed (`txid_status()`): `(table, destination, rows)`, recorded done by [`run`].
    pub(super) confirmed: Vec<(String, usize, u64)>,
    /// Tables whose earlier copy a restart of the destination left in doubt, compared under
    /// `--verify` as those an earlier run found different are: `(table, destination)`, recorded
    /// done if they match, different if not (jobs67 F9).
    pub(super) doubted: Vec<(String, usize)>,
    /// The tables the earlier runs copied under a name that a resume found renamed since
    /// (`(old, Some(new))`) or made again (`(name, None)`): recorded by [`run`] before anything
    /// else ([`StateFile::renamed`](crate::state::StateFile::renamed),
    /// [`StateFile::replaced`](crate::state::StateFile::replaced)), so that a later resume
    /// reads the old records as the renamed table's, or forgets them.
    pub(super) retaken: Vec<(String, Option<String>)>,
    /// By destination: not where the earlier run left it (a failover, a restore): under
    /// `--verify`, every table recorded done there is compared again, even in a job that
    /// verified each as it recorded it.
    pub(super) moved: Vec<bool>,
    /// Under two-phase commit, where each destination's transactions are (by destination), for
    /// the `party` lines of every decision ([`commit::DecisionLog::record_parties`]).
    pub(super) parties: Vec<commit::Holder>,
    pub(super) coordinator: Option<Connection>,
    /// The source's `block_size`: what a split table's ranges are cut by.
    pub(super) block_size: u64,
}

impl Plan {
    /// Cuts every table split into more than `ranges` ranges into that many (2 at the least),
    /// as [`split`] cuts one for a job of `ranges` workers: for a job whose workers were capped
    /// once the plan said which tables are split (its servers take fewer sessions, or prepared
    /// transactions, than its ranges would).
    pub fn cap_ranges(&mut self, ranges: usize, split_larger_than: u64) {
        for t in self
            .tables
            .iter_mut()
            .filter(|t| t.ranges.len() > ranges.max(2))
        {
            let copy = TableCopy {
                table: t.table.clone(),
                target: None,
                columns: t.columns.clone(),
                condition: None,
                header: false,
                encoding: None,
            };
            t.ranges = split(
                &copy,
                t.format,
                t.size,
                split_larger_than,
                self.block_size,
                ranges,
            );
        }
    }

    /// The group ([`Plan::groups`]) table `i` is copied with, if any.
    pub fn group_of(&self, i: usize) -> Option<&crate::plan::Group> {
        self.groups.iter().find(|g| g.members.contains(&i))
    }

    /// The statements that empty the members of `group` that destination `d` empties first, in
    /// their order, as one: one `TRUNCATE` of them all where no other table references them
    /// there, else one `TRUNCATE` of those no table references but those truncated with them,
    /// then each other member's own ([`TablePlan::emptying`]), children first; `None` when it
    /// empties none.
    pub fn group_emptying(&self, group: &crate::plan::Group, d: usize) -> Option<String> {
        let steps = group_emptying_steps(&self.tables, group, d);
        (!steps.is_empty()).then(|| {
            let sql: Vec<String> = steps.into_iter().map(|(_, sql)| sql).collect();
            sql.join("; ")
        })
    }
}

/// How destination `d` empties the members of `group` it empties first, in order: each
/// statement with the members (indexes into `tables`) it empties. One `TRUNCATE` of them all
/// ([`truncates_together`]); else one `TRUNCATE` of those no table references there but one of
/// them ([`truncated_first`]), then each other member's own ([`TablePlan::emptying`]), children
/// first: a member's `DELETE` meets no rows of the members emptied before it.
pub(super) fn group_emptying_steps(
    tables: &[TablePlan],
    group: &crate::plan::Group,
    d: usize,
) -> Vec<(Vec<usize>, String)> {
    let emptied: Vec<(usize, &str, bool)> = (group.members.iter())
        .filter_map(|&m| match &tables[m].destinations[d] {
            DestPlan::Copy {
                truncate: true,
                kind,
                quiet_delete,
                ..
            } => Some((m, kind.as_str(), *quiet_delete)),
            _ => None,
        })
        .collect();
    let first = match truncates_together(tables, group, d) {
        true => emptied.iter().map(|&(m, ..)| m).collect(),
        false => truncated_first(tables, group, d),
    };
    let mut steps = Vec::new();
    if !first.is_empty() {
        let list: Vec<(&TableName, &str)> = (emptied.iter())
            .filter(|(m, ..)| first.contains(m))
            .map(|&(m, kind, _)| (&tables[m].table, kind))
            .collect();
        steps.push((first.clone(), crate::sql::emptying_together(&list)));
    }
    for &(m, kind, quiet) in emptied.iter().rev().filter(|(m, ..)| !first.contains(m)) {
        steps.push((vec![m], tables[m].emptying(kind, quiet)));
    }
    steps
}

/// The members of `group` that destination `d`, which does not truncate them all together
/// ([`truncates_together`]: a table outside the group references a member there), empties
/// with one `TRUNCATE` before the others: those emptied there that no table references but
/// one of them (on any destination: the foreign keys of all are known as one list). A table
/// outside the group that referenced one member made every member be emptied by itself, and a
/// member referenced by another, whose `DELETE` would cascade, was refused, though that other
/// was empty by then (dump63 F3).
pub(super) fn truncated_first(
    tables: &[TablePlan],
    group: &crate::plan::Group,
    d: usize,
) -> Vec<usize> {
    let mut first: Vec<usize> = (group.members.iter().copied())
        .filter(|&m| {
            matches!(
                tables[m].destinations[d],
                DestPlan::Copy { truncate: true, .. }
            )
        })
        .collect();
    loop {
        let names: HashSet<String> = first.iter().map(|&m| tables[m].table.to_string()).collect();
        let before = first.len();
        first.retain(|&m| tables[m].referenced_by.iter().all(|by| names.contains(by)));
        if first.len() == before {
            return first;
        }
    }
}

/// For each table (by index into `tables`) and destination (`destinations` of them), whether
/// it is emptied there with a `TRUNCATE` that names every table referencing it: its group's
/// ([`group_emptying_steps`]' first).
fn truncated_with_referencing(
    tables: &[TablePlan],
    groups: &[crate::plan::Group],
    destinations: usize,
) -> Vec<Vec<bool>> {
    let mut together = vec![vec![false; destinations]; tables.len()];
    for g in groups {
        for (d, first) in (0..destinations).map(|d| match truncates_together(tables, g, d) {
            true => (d, g.members.clone()),
            false => (d, truncated_first(tables, g, d)),
        }) {
            for m in first {
                together[m][d] = true;
            }
        }
    }
    together
}

/// Whether destination `d` empties `group`'s members with one `TRUNCATE`: the group is
/// truncated together ([`crate::plan::Group::truncate_together`]) and every member that
/// references a member emptied there is emptied there too. A member copied there without
/// emptying (not begun there on a resume) or done there keeps its rows, and PostgreSQL refuses
/// a `TRUNCATE` of a table it references without it (0A000): there the members are emptied one
/// by one, as a table alone would be.
pub(super) fn truncates_together(
    tables: &[TablePlan],
    group: &crate::plan::Group,
    d: usize,
) -> bool {
    let emptied_here =
        |t: &TablePlan| matches!(t.destinations[d], DestPlan::Copy { truncate: true, .. });
    if !group.truncate_together[d] {
        return false;
    }
    // The members that keep their rows there, by name: once, not once per pair of members (a
    // group of 2 000 tables took a minute of CPU to plan, asked for each member).
    let kept: HashSet<String> = (group.members.iter())
        .map(|&k| &tables[k])
        .filter(|by| !emptied_here(by))
        .map(|by| by.table.to_string())
        .collect();
    kept.is_empty()
        || group.members.iter().all(|&m| {
            let t = &tables[m];
            !emptied_here(t) || !t.referenced_by.iter().any(|by| kept.contains(by))
        })
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("tables", &self.tables)
            .field("snapshot", &self.snapshot)
            .finish_non_exhaustive()
    }
}

/// How many tables' catalogs are read in one query (a few tenths of a second of the server's
/// time): the planning's progress is said between two.
const LOOKED_UP_AT_ONCE: usize = 200;

/// The source's catalog of `tables`, read in one query ([`lookup_many`]); what it lacks, each
/// table is looked up alone for. A query given up (a stall) leaves the source's session unusable:
/// the job stops, as a table's lookup given up stops it.
fn look_ahead(
    src: &mut Connection,
    tables: &[TableName],
    options: &Options,
) -> Result<HashMap<String, Relation>, JobError> {
    let tables: Vec<&TableName> = tables.iter().collect();
    match lookup_many(src, &tables) {
        Ok(found) => Ok(found),
        Err(e) if !src.is_ready() => Err(JobError::Source(
            describe_with(&e, options.stall_timeout).prefixed("reading the tables' catalog: "),
        )),
        Err(_) => Ok(HashMap::new()),
    }
}

/// What `server`'s sessions make of text ([`ServerForms`]: its money, its arrays' NULLs),
/// asked once per job: its database's own forms on a session in its own settings, and `conn`'s,
/// the job's planning session (its copy sessions are alike); `known` keeps the answer. `None`
/// where the caller gave no way to ask ([`Server::own_settings`]).
///
/// # Errors
/// Where the database's own forms cannot be asked (a role's `CONNECTION LIMIT`): why. Passed
/// over, text was read as if the database read it as copyman's sessions do.
fn server_forms<'a>(
    server: &Server,
    conn: &mut Connection,
    known: &'a mut Option<Option<Result<ServerForms, String>>>,
) -> Option<Result<&'a ServerForms, String>> {
    known
        .get_or_insert_with(|| {
            let connect = server.own_settings.as_ref()?;
            let way = "let copyman open one more session there";
            let asked = ServerForms::ask(&server.name, way, conn, Some(|| connect()));
            Some(asked)
        })
        .as_ref()
        .map(|asked| asked.as_ref().map_err(Clone::clone))
}

/// Why a resume from `path` is refused before anything: no state file there (or an empty one,
/// or another kind of file). `None` where there is one to read. Where there is none, the state
/// files beside it of jobs to every one of `destinations` (by their names) are named, the
/// newest first: a resume given fewer destinations than its run, or more, has another default
/// file (ux70 F4: "give the earlier run's --state", among dozens of hash-named files).
fn nothing_to_resume(path: &Path, destinations: &[Server]) -> Option<JobError> {
    let missing = match state::found(path) {
        state::Found::StateFile => return None,
        state::Found::Nothing => "there is no state file",
        state::Found::Empty => "the state file is empty",
        state::Found::Other => "the file is not a copyman state file",
    };
    let mut candidates: Vec<(std::time::SystemTime, std::path::PathBuf)> = state::beside(path)
        .into_iter()
        .filter(|other| {
            state::read(other).is_ok_and(|recorded| {
                (destinations.iter()).all(|d| recorded.names.contains_key(&d.name))
            })
        })
        .map(|other| {
            let written = std::fs::metadata(&other).and_then(|m| m.modified());
            (written.unwrap_or(std::time::UNIX_EPOCH), other)
        })
        .collect();
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    let beside = match candidates.as_slice() {
        [] => String::new(),
        found => format!(
            " (beside it, of jobs to {}: {})",
            match destinations.len() {
                1 => "this destination",
                _ => "these destinations",
            },
            (found.iter().take(3))
                .map(|(_, p)| format!("--state {}", p.display()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Some(JobError::Refused(format!(
        "--resume: {missing} at {} to resume from (a resume copies again only what that file \
         records as not done; without its records, tables an earlier run committed would be \
         copied twice): give the earlier run's --state{beside}; where no run of this job \
         committed anything (it stopped while planning, or before its first COMMIT), run the \
         same command without --resume",
        path.display()
    )))
}

fn connect(server: &Server, role: &str) -> Result<Connection, JobError> {
    (server.connect)().map_err(|e| JobError::Connect {
        role: role.to_owned(),
        server: server.name.clone(),
        error: describe(&e),
    })
}

/// Which server and database `conn` is on, as the state file names a destination:
/// `system SYSID database OID` (`pg_control_system()`'s identifier, unique per cluster, and the
/// database's oid), the same however the destination was spelled (a host name or an address,
/// a socket directory with or without a trailing slash, a user or database from the
/// environment). `None` when the server does not say (`pg_control_system()` revoked).
pub fn identity(conn: &mut Connection) -> Option<String> {
    Identity::of(conn, None).ok()?.state_key()
}

/// The records of the state file at `path` for a resume of a job to `destinations` (named in
/// the file by `keys`; `clones[i]`: destination `i` shares its identity with another, so it is
/// named by its connection string).
///
/// # Errors
/// No state file there (nothing says which tables the destinations may already hold: copying
/// them all again would duplicate the rows of those that committed), one that cannot be read
/// or is of an older format, or a destination that cannot say which server it is while the
/// file records destinations this run does not have (it may be one of them, spelled otherwise).
/// A destination left out (`down`: `--keep-going`, it cannot be reached) is not asked: nothing
/// is written there.
fn resumed(
    path: &Path,
    selection: &Selection,
    keys: &[String],
    destinations: &[Server],
    (clones, down): (&[bool], &[Option<TableError>]),
) -> Result<(Recorded, Option<Narrowing>), JobError> {
    let state_error = |error| JobError::State {
        path: path.to_owned(),
        error,
    };
    if let Some(refused) = nothing_to_resume(path, destinations) {
        return Err(refused);
    }
    let recorded = state::read(path).map_err(state_error)?;
    // Its writer alive, though it holds no lock on this file: a copy of a live run's state
    // file (a backup, another directory), whose tables begun and not committed that run is
    // copying now: taken up again, every row of them would be stored twice.
    if let Some(writer) = recorded.writer.as_ref().filter(|w| w.alive()) {
        return Err(state_error(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "the run that wrote it (copyman process {}) is still running on this host, \
                 though it holds no lock on this file (a copy of its state file?): a resume \
                 now would copy again the tables it is copying; wait for it to end",
                writer.pid
            ),
        )));
    }
    // Another selection may cover the same rows otherwise (a partitioned table, then its
    // partitions): what it records done would not match, and they would be copied twice.
    // (The same selection spelled otherwise is the same: `--table BULK` is `--table bulk`.)
    // The recorded one with `--exclude-table` patterns added is checked once the tables are
    // listed ([`narrowed`]).
    let mut narrowing = None;
    if let Some(recorded_for) = recorded
        .selection
        .as_deref()
        .filter(|s| !selection.is_recorded_as(s))
    {
        narrowing = selection.narrowing(recorded_for);
        if narrowing.is_none() {
            // Every table (no TABLE nor pattern) is recorded as the empty key: said so, not
            // as "()" (jobs41 F3).
            let shown = |key: &str| match key {
                "" => "every table: no TABLE nor pattern".to_owned(),
                key => key.to_owned(),
            };
            let (recorded_for, selection) = (shown(recorded_for), shown(&selection.key()));
            return Err(JobError::Refused(format!(
                "--resume: the state file {} was written for another selection \
                 ({recorded_for}), not {selection}: a resume of another selection could copy \
                 rows twice (a partitioned table and its partitions, selected one way and then \
                 the other); resume with the same tables and patterns (--exclude-table may be \
                 added, to leave out a table the earlier run did not begin), or give this job \
                 another --state",
                path.display()
            )));
        }
    }
    let known: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let others: Vec<&str> = recorded
        .destinations()
        .into_iter()
        .filter(|d| !known.contains(d))
        .collect();
    let reached = keys.iter().zip(destinations).zip(clones).zip(down);
    for (((key, server), clone), _) in reached.filter(|(_, down)| down.is_none()) {
        if !others.is_empty() && state::is_unidentified(key) {
            let why = if *clone {
                "another destination of this run is the same server and database as far as it \
                 can tell (a clone: one system identifier and database oid), so neither can be \
                 told apart from what the state file recorded"
            } else {
                "pg_control_system() is not readable there"
            };
            return Err(JobError::Refused(format!(
                "--resume: destination {} cannot say which server it is ({why}), and the state \
                 file {} records destinations this run does not have ({}): it may be one of \
                 them; resume with the destinations as before (a clone in a job of its own), \
                 or run the job without --resume",
                server.name,
                path.display(),
                others.join(", ")
            )));
        }
    }
    // A destination recorded by its connection string (it could not say which server it was)
    // that this run does not name so may be one of this run's, identified now: its records would
    // not match, and a resume would copy its tables a second time.
    if let Some(recorded_as) = others.iter().find(|d| state::is_unidentified(d)) {
        return Err(JobError::Refused(format!(
            "--resume: the state file {} records a destination by its connection string \
             ({recorded_as}: it could not say which server it was), and no destination of this \
             run is named so: it may be one of them, which a resume would copy into a second \
             time; resume with the destinations as before, or run the job without --resume \
             (with --truncate to empty the tables first)",
            path.display()
        )));
    }
    // A destination the state file does not know, where it records one this run does not
    // have: the same database recreated, restored into a new cluster or moved (another system
    // identifier or database oid) would get every table again, beside what it holds.
    let recorded_here = recorded.destinations();
    let new = keys
        .iter()
        .zip(destinations)
        .find(|(key, _)| !state::is_unidentified(key) && !recorded_here.contains(&key.as_str()));
    if let (Some((_, server)), false) = (new, others.is_empty()) {
        return Err(JobError::Refused(format!(
            "--resume: destination {} is none the state file {} records, and it records {} \
             this run does not have: it may be the same database recreated, restored into \
             another cluster or moved since (another system identifier or database), where a \
             resume would copy every table a second time beside what it holds; resume with the \
             destinations as before, or run the job again with --truncate and another --state",
            server.name,
            path.display(),
            others.join(", ")
        )));
    }
    Ok((recorded, narrowing))
}

/// A resume's selection that is its earlier run's with `--exclude-table` patterns added: the
/// earlier run's selection and the patterns ([`Selection::narrowing`]).
type Narrowing = (Selection, Vec<String>);

/// Checks a resume's narrowed selection (`selected`, listed on `src`) against the earlier run's
/// (`narrowing`): it may leave out tables, each one that run began on none of the destinations
/// (`keys`) or committed on all of them, and select none it did not (a partitioned table left out
/// with its partitions taken by a pattern, never its partitions by themselves). Returns a note
/// for each table left out.
///
/// # Errors
/// [`JobError::Refused`] naming the table a narrowing may not leave out, or may not select.
fn narrowed(
    src: &mut Connection,
    (earlier, added): &Narrowing,
    selected: &[select::Selected],
    recorded: &Recorded,
    keys: &[String],
) -> Result<Vec<String>, JobError> {
    let query = select::selection_query(earlier).map_err(|e| JobError::Selection(e.to_string()))?;
    let rows = src
        .query(&query)
        .map_err(|e| JobError::Source(describe(&e)))?;
    let before: Vec<String> = select::read_selection(&rows)
        .map_err(JobError::Selection)?
        .into_iter()
        .filter(|s| s.within.is_none())
        .map(|s| s.table.to_string())
        .collect();
    let now: HashSet<String> = selected.iter().map(|s| s.table.to_string()).collect();
    let added = added.join(", ");
    let earlier_set: HashSet<&String> = before.iter().collect();
    if let Some(new) = now.iter().find(|t| !earlier_set.contains(t)) {
        return Err(JobError::Refused(format!(
            "--resume: with --exclude-table {added}, {new} is selected by itself, which the \
             earlier run's selection was not (its rows may have come with its partitioned \
             table's): resume with the same tables and patterns"
        )));
    }
    let mut notes = Vec::new();
    for table in before.iter().filter(|t| !now.contains(*t)) {
        let began = keys.iter().any(|k| recorded.begun(table, k));
        let done = keys.iter().all(|k| recorded.done(table, k).is_some());
        // Committed everywhere, but found different from the source (--verify) somewhere:
        // left out as the DBA chose, said with where it differs.
        let differs: Vec<String> = (keys.iter().enumerate())
            .filter(|(_, k)| recorded.mismatched(table, k).is_some())
            .map(|(d, _)| (d + 1).to_string())
            .collect();
        let committed = keys
            .iter()
            .all(|k| recorded.done(table, k).is_some() || recorded.mismatched(table, k).is_some());
        if !differs.is_empty() && committed {
            notes.push(format!(
                "{table}: left out by --exclude-table on this resume; it stays as it is on \
                 destination {}, where the earlier run's --verify found it different from the \
                 source",
                differs.join(", ")
            ));
            continue;
        }
        if began && !done {
            return Err(JobError::Refused(format!(
                "--resume: --exclude-table {added} leaves out {table}, which the earlier run \
                 began and did not finish on every destination: left out, it would stay so \
                 without a word; resume with it (mend what stopped it first), or run it again \
                 with --truncate"
            )));
        }
        notes.push(format!(
            "{table}: left out by --exclude-table on this resume ({})",
            if done {
                "the earlier run committed it on every destination"
            } else {
                "the earlier run did not begin it"
            }
        ));
    }
    Ok(notes)
}

/// What says that destination `d`'s table (this name) still holds an earlier copy's rows
/// ([`holds_there`]); `None` where it cannot be asked.
pub(super) type Holds<'a> = dyn FnMut(usize, &str, Kept<'_>) -> Option<bool> + 'a;

/// What an earlier copy of a table left on a destination, as a state file records it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Kept<'a> {
    /// The ids of its transactions there (none: only its rows are asked).
    pub xids: &'a [u64],
    /// The rows it wrote (0: not asked).
    pub rows: u64,
}

/// [`Holds`] on one destination's session: a row the copy's transactions inserted, or, where
/// it wrote any, any row at all. Rows whose `xmin` an UPDATE of each changed are still the
/// copy's (dup67 F4: a job run again after an UPDATE of every row took them for gone, and
/// appended every row a second time, exit 0), and nothing tells a table emptied and written
/// again from one rewritten (`VACUUM FULL`, `CLUSTER`, a column's type changed: other storage,
/// each row's `xmin` kept) whose rows were then updated and some deleted: the catalogs read the
/// same (recheck72 F1: rewritten first, then updated, one row deleted, every row was appended
/// a second time, exit 0). Only an empty table is taken for emptied; its other rows, whoever
/// wrote them, keep a copy that does not empty it out (the refusal gives the ways: a
/// `--state` elsewhere adds the rows all the same).
fn holds_there(conn: &mut Connection, table: &str, kept: Kept<'_>) -> Option<bool> {
    use crate::identity::{holds_at_least, holds_rows_of};
    // (No ids: the rows only, not a scan for none.)
    if kept.xids.is_empty() {
        return holds_at_least(conn, table, kept.rows);
    }
    match holds_rows_of(conn, table, kept.xids)? {
        false if kept.rows > 0 => holds_at_least(conn, table, 1),
        held => Some(held),
    }
}

/// Whether what the state file `recorded` says an earlier run may have committed of `table`
/// (`name` there, the name it recorded) on destination `d` (key `key`) is there no more: the
/// ids of every such copy's transactions are known, and that destination's table holds no row
/// any of them inserted, nor any other row where it wrote some ([`holds_there`]: emptied since,
/// live52 F3 — a plain copy into a destination emptied since was refused, "their rows would be
/// there twice"; one written again since is refused all the same, recheck72 F1).
fn gone_since(
    recorded: &Recorded,
    (name, table): (&str, &str),
    (d, key): (usize, &str),
    holds: &mut Holds<'_>,
) -> bool {
    // Whether the copy wrote rows: then any row there may be one of them, updated.
    let rows = (recorded.attempts(name, key).commits.iter())
        .map(|c| c.rows)
        .chain(recorded.done(name, key))
        .max()
        .unwrap_or(0);
    match recorded.copies_xids(name, key) {
        Some(xids) if xids.is_empty() => true,
        Some(xids) => {
            let kept = Kept { xids: &xids, rows };
            holds(d, table, kept) == Some(false)
        }
        None => false,
    }
}

/// [`Holds`] asked on the destinations' sessions `dests` (none where one is not connected).
fn holds_on(dests: &mut [Option<Connection>]) -> impl FnMut(usize, &str, Kept<'_>) -> Option<bool> {
    |d, table, kept| {
        let conn = dests.get_mut(d)?.as_mut()?;
        holds_there(conn, table, kept)
    }
}

/// A job that is not a resume starts a new state file. Where the one at `path` records an
/// earlier run that began one of these `tables` on one of these destinations (`keys`), a copy
/// that does not empty it first would add its rows a second time: refused, unless `truncate`,
/// or unless those rows are there no more ([`gone_since`], asked with `holds` where given: not
/// of a job that runs, whose commits may come).
///
/// # Errors
/// [`JobError::Refused`], naming the tables and what to do instead.
fn fresh(
    path: &Path,
    truncate: bool,
    tables: &[String],
    keys: &[String],
    holds: Option<&mut Holds<'_>>,
) -> Result<(), JobError> {
    if truncate {
        return Ok(());
    }
    // An unreadable or older file: nothing to go by (it is replaced, as before).
    let Ok(recorded) = state::read(path) else {
        return Ok(());
    };
    // (A job that runs may commit what it began: its rows not there yet are no sign.)
    let mut holds = holds.filter(|_| !state::running(path));
    let again: Vec<&str> = tables
        .iter()
        .filter(|t| {
            (keys.iter().enumerate()).any(|(d, k)| {
                recorded.begun(t, k)
                    && !(holds.as_deref_mut())
                        .is_some_and(|holds| gone_since(&recorded, (t, t), (d, k), holds))
            })
        })
        .map(String::as_str)
        .collect();
    if again.is_empty() {
        return Ok(());
    }
    // Finished or not: a finished run's tables are there once already, as a stopped one's.
    let finished = again
        .iter()
        .all(|t| keys.iter().all(|k| recorded.done(t, k).is_some()));
    let what = if finished { "copied" } else { "began" };
    if state::running(path) {
        return Err(super::running::beside_running_job(path, "began", &again));
    }
    Err(JobError::Refused(format!(
        "the state file {} records an earlier job into these destinations, which \
         {what} {}: copied again without emptying them, their rows would be there twice; \
         --resume copies only what that run did not finish, --truncate empties each table and \
         copies it again, and a --state in another directory (or removing that file) adds the \
         rows once more; a clone of a destination (a base backup, a copied data directory, a \
         restore) shares its origin's identity, so the file names it too: --resume is wrong \
         for a clone, give it a --state in another directory",
        path.display(),
        super::running::first_names(&again),
    )))
}

/// Each destination as a message names it: `destination N (NAME)`.
fn dest_labels(destinations: &[Server]) -> Vec<String> {
    (destinations.iter().enumerate())
        .map(|(i, server)| format!("destination {} ({})", i + 1, server.name))
        .collect()
}

/// The state file `path` beside this job's, read; `None` where it cannot be: one whose
/// permissions keep it from being read (another user's, mode 0600) is said in `notes`, since what
/// it records cannot be checked (a table it copied into these destinations was appended again
/// without a word: recheck43 F5).
fn read_beside(path: &Path, notes: &mut Vec<String>) -> Option<Recorded> {
    match state::read(path) {
        Ok(recorded) => Some(recorded),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            notes.push(format!(
                "the state file {} beside this job's cannot be read ({e}): a table its job \
                 copied into these destinations is not known to this one, and would be copied \
                 again on top of those rows",
                path.display()
            ));
            None
        }
        Err(_) => None,
    }
}

/// What another job's state file beside this one's (`path`) says of `tables` on these
/// destinations (`keys`, named `labels`): one whose rows its job may have committed there (done,
/// or a COMMIT announced — not a copy begun and rolled back: recheck43b F1), found by its name
/// or, renamed since, by the source's relations it covers (`covers`: recheck43b F2), is refused,
/// unless `truncate`: a copy without emptying it would add those rows again — unless they are
/// there no more ([`gone_since`], asked with `holds`). A file written from another source
/// (merging shards) holds other rows: no matter (recheck43b F7). `how`: a job's run, a resume's
/// (the tables are those it never began), or one table's copy.
///
/// # Errors
/// [`JobError::Refused`], naming the tables, the destination and what to do instead.
#[allow(clippy::too_many_arguments)]
fn rows_beside(
    path: &Path,
    truncate: bool,
    tables: &[String],
    covers: &[(String, Vec<u64>)],
    (keys, labels): (&[String], &[String]),
    source_key: Option<&String>,
    how: Beside<'_>,
    notes: &mut Vec<String>,
    holds: &mut Holds<'_>,
) -> Result<(), JobError> {
    if truncate || tables.is_empty() {
        return Ok(());
    }
    let Some(recorded) = read_beside(path, notes) else {
        return Ok(());
    };
    // The other way round: a job that copied these tables from one of these destinations into
    // this source. The source's rows are that destination's own, copied here: appended there,
    // they would be there twice — the classic slip of --from and --to swapped (dup67 F12: a
    // job from staging back into production doubled every row, exit 0).
    if let (Some(theirs), Some(ours)) = (&recorded.source, source_key)
        && let Some(d) = keys.iter().position(|k| k == theirs && k != ours)
    {
        // (An empty one there holds nothing to double: restored from this source, as meant.)
        let related = match how {
            Beside::OneTable(related) => related,
            _ => &[],
        };
        let back: Vec<&str> = (tables.iter())
            .filter(|t| {
                let mut named = std::iter::once(*t).chain(related);
                named.any(|name| recorded.may_hold_rows(name, ours))
                    && holds(
                        d,
                        t,
                        Kept {
                            rows: 1,
                            ..Kept::default()
                        },
                    ) != Some(false)
            })
            .map(String::as_str)
            .collect();
        if !back.is_empty() {
            let label = labels.get(d).map_or("a destination", String::as_str);
            return Err(JobError::Refused(format!(
                "the state file {} records a job that copied {} from {label} into this run's \
                 source: the source's rows of them are that destination's own, copied there; \
                 appended to it, they would be there twice (are --from and --to the wrong way \
                 round? then swap them); --truncate would instead EMPTY them on {label}, the \
                 job's source, and fill them from this run's source",
                path.display(),
                super::running::first_names(&back),
            )));
        }
    }
    if let (Some(theirs), Some(ours)) = (&recorded.source, source_key)
        && theirs != ours
    {
        return Ok(());
    }
    // The names it knows each of `tables` by: its own, and any it recorded covering the same
    // source relations.
    let known_as = |table: &String| -> Vec<String> {
        let oids = covers.iter().find(|(t, _)| t == table).map(|(_, o)| o);
        let renamed = (recorded.covers.iter())
            .filter(|(_, theirs)| {
                oids.is_some_and(|ours| !ours.is_empty() && theirs.iter().any(|o| ours.contains(o)))
            })
            .map(|(name, _)| name.clone());
        std::iter::once(table.clone()).chain(renamed).collect()
    };
    let mut again: Vec<String> = Vec::new();
    // Each as `--exclude-table` reads it, quoted for a shell.
    let mut exclude: Vec<String> = Vec::new();
    let mut on = None;
    // (A job that runs may commit what it began: its rows not there yet are no sign.)
    let running = state::running(path);
    for table in tables {
        for name in known_as(table) {
            let held = |(d, k): &(usize, &String)| {
                recorded.may_hold_rows(&name, k)
                    && (running || !gone_since(&recorded, (&name, table), (*d, k), holds))
            };
            if let Some((d, _)) = keys.iter().enumerate().find(held) {
                on.get_or_insert(d);
                exclude.push(format!(
                    "--exclude-table '{}'",
                    table.replace('\'', r"'\''")
                ));
                again.push(if name == *table {
                    table.clone()
                } else {
                    format!("{table} (as {name})")
                });
                break;
            }
        }
    }
    let Some(d) = on else {
        return Ok(());
    };
    // Leaving them out is the way that keeps what is there (jobs66 F13: not offered to a job,
    // whose other two ways copy again or double).
    // (Not a screenful of options: jobs67 F4, 112 of them.)
    const SHOWN: usize = 5;
    let leave_out = if exclude.len() >= tables.len() {
        "leave them out (every table this job takes is among them: nothing would be left to \
         copy)"
            .to_owned()
    } else if exclude.len() > SHOWN {
        format!(
            "leave them out ({} … and {} more --exclude-table, one for each)",
            exclude[..SHOWN].join(" "),
            exclude.len() - SHOWN
        )
    } else {
        format!("leave them out ({})", exclude.join(" "))
    };
    let again: Vec<&str> = again.iter().map(String::as_str).collect();
    let (resume_way, job_way) = (
        format!("resume with --truncate (empties each table and copies it again), or {leave_out}"),
        format!(
            "{leave_out}, or --truncate, which empties each table and copies it again (a --state \
             in another directory, or removing that file, adds the rows once more)"
        ),
    );
    let (what, way) = match how {
        Beside::Resuming => ("which this job has not begun: resumed", resume_way.as_str()),
        Beside::Job => ("copied again without emptying them", job_way.as_str()),
        Beside::OneTable(_) => (
            "appended again by this copy",
            "--truncate empties the table and copies it again (removing that file adds the \
             rows once more)",
        ),
    };
    Err(JobError::Refused(format!(
        "{}the state file {} records {} job from this source that committed {} on {} \
         (or may have): {what}, their rows would be there twice; {way}",
        if how == Beside::Resuming {
            "--resume: "
        } else {
            ""
        },
        path.display(),
        if matches!(how, Beside::OneTable(_)) {
            "a"
        } else {
            "another"
        },
        super::running::first_names(&again),
        labels.get(d).map_or("a destination", String::as_str),
    )))
}

/// Whose copy [`rows_beside`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Beside<'a> {
    /// A job's run.
    Job,
    /// A job's resume: the tables it never began.
    Resuming,
    /// One table's copy, with the partitioned tables above it and the partitions below it on
    /// its source, by name: a job that copied one of them from this source's server holds its
    /// rows too (recheck67 F5: a partition copied back the wrong way round, every row twice,
    /// exit 0; recheck68 F6: a job's partitions' parent, the same).
    OneTable(&'a [String]),
}

/// One table's copy (not a job's) into `table` on destinations `keys` (named `labels`), from
/// the source `source_key`: refused where a job's state file in `dir` (the default directory)
/// records that table committed there, as the job's own run again refuses it (`rows_beside`):
/// appended, its rows were stored twice (first47 F2: `-t t` refused, `copyman table t` exit 0).
/// Not where the destination's table (asked on its session in `conns`) holds none of the rows
/// that job's transactions inserted: emptied since (live52 F3). A table a job copied by another
/// name of the same source relations (a partition of the table it copied, or the partitioned
/// table whose partitions it copied) is found by them, asked on the `source`'s session (dup67
/// F1: `copyman table parts_1` after a job of `parts`, every row twice, exit 0).
///
/// # Errors
/// [`JobError::Refused`], naming the state file, the table and the destination.
pub fn refuse_rows_of_jobs(
    dir: &Path,
    table_name: &TableName,
    (keys, labels): (&[String], &[String]),
    (source_key, source): (Option<&String>, Option<&mut Connection>),
    conns: &mut [Option<&mut Connection>],
) -> Result<(), JobError> {
    let table = table_name.to_string();
    let table = table.as_str();
    let mut source = source;
    let covers = (source.as_deref_mut())
        .and_then(|src| source_covers(src, std::iter::once(table_name)))
        .unwrap_or_default();
    let related: Vec<String> = source
        .map(|src| partition_relatives(src, table_name))
        .unwrap_or_default();
    let mut notes = Vec::new();
    let mut holds = |d: usize, table: &str, kept: Kept<'_>| {
        let conn = conns.get_mut(d)?.as_deref_mut()?;
        holds_there(conn, table, kept)
    };
    // (Every state file of the directory: `beside` leaves out only the one it is given.)
    for path in state::beside(&dir.join(".copyman-one-table")) {
        // A job copying it now, its rows not there yet (recheck53 F4: both appended, exit 0).
        if state::running(&path)
            && let Ok(other) = state::read(&path)
            && keys
                .iter()
                .any(|k| other.begun(table, k) || other.claimed(table, k))
        {
            return Err(super::running::beside_running_job(
                &path,
                "copies",
                &[table],
            ));
        }
        let tables = [table.to_owned()];
        let who = (keys, labels);
        rows_beside(
            &path,
            false,
            &tables,
            &covers,
            who,
            source_key,
            Beside::OneTable(&related),
            &mut notes,
            &mut holds,
        )?;
    }
    Ok(())
}

/// A job that is not a resume replaces the state file at `path`: one that records another
/// selection's job that did not finish (a table it began not done somewhere) is kept for that
/// job's resume. Replaced, that record was lost: the other job could no longer be resumed, and
/// run again it appended the tables it had committed a second time (exit 0). So is one that
/// records rows committed that this job's records (its `tables` on destinations `keys`) will
/// not hold: another selection's tables, or this one's on other destinations (jobs67 F13: a
/// runbook's jobs given one --state, the first run again doubled its tables, exit 0).
///
/// # Errors
/// [`JobError::Refused`], naming the other job and what to do instead.
fn kept_for_its_resume(
    path: &Path,
    selection: &Selection,
    tables: &[String],
    keys: &[String],
) -> Result<(), JobError> {
    let Ok(recorded) = state::read(path) else {
        return Ok(());
    };
    let other = (recorded.selection.as_deref()).filter(|s| !selection.is_recorded_as(s));
    let mut lost: Vec<&str> = (recorded.done.iter())
        .filter(|((t, k), rows)| {
            **rows > 0 && (!keys.contains(k) || (other.is_some() && !tables.contains(t)))
        })
        .map(|((t, _), _)| t.as_str())
        .collect();
    lost.sort_unstable();
    lost.dedup();
    let Some(other) = other else {
        return match lost.is_empty() {
            true => Ok(()),
            false => Err(JobError::Refused(format!(
                "the state file {} records this job's earlier run committing {} on destinations \
                 this run does not copy to: replaced by this run's records, that record would \
                 be lost, and the earlier run's command run again would copy them a second \
                 time; resume it with the destinations added (--resume), give this run another \
                 --state, or remove the file if that record is no longer needed",
                path.display(),
                super::running::first_names(&lost),
            ))),
        };
    };
    // A table it copies (one it recorded what it covers for: a partition relative is claimed,
    // never copied itself) not done on a destination, begun there or not (missing there at
    // planning, the destination left out under --keep-going).
    let unfinished = recorded
        .claimed
        .iter()
        .any(|pair| recorded.covers.contains_key(&pair.0) && !recorded.done.contains_key(pair));
    // A job that began nothing anywhere (refused while planning, stopped before its first
    // table) committed nothing a rerun could copy twice: its file is replaced.
    let began = !recorded.done.is_empty() || !recorded.begun.is_empty();
    if !unfinished || !began {
        return match lost.is_empty() {
            true => Ok(()),
            false => Err(JobError::Refused(format!(
                "the state file {} records a job of another selection ({other}) that committed \
                 {}: replaced by this job's records, that record would be lost, and that job run \
                 again would copy them a second time; give this job another --state, or remove \
                 the file if that record is no longer needed",
                path.display(),
                super::running::first_names(&lost),
            ))),
        };
    }
    Err(JobError::Refused(format!(
        "the state file {} records a job of another selection ({other}) that did not finish: \
         replaced, that job could not be resumed, and run again it would copy what it \
         committed a second time; give this job another --state, or resume that job first \
         (its tables and patterns, --resume), or remove the file if that job is given up",
        path.display()
    )))
}

/// Plans a job: the selection listed on the source, every table's catalog read on every server,
/// the state file read (when resuming), and the snapshot exported. Nothing is written anywhere.
/// [`plan_with`] tells what planning waits for as it happens.
///
/// # Errors
/// See [`JobError`]: a server that cannot be reached, a bad or empty selection, a source that
/// cannot export its snapshot, an unreadable state file.
pub fn plan(
    source: &Server,
    destinations: &[Server],
    selection: &Selection,
    options: &Options,
) -> Result<Plan, JobError> {
    plan_with(source, destinations, selection, options, &|_| {})
}

/// [`plan`], telling `events` at once of what planning waits for: a resume that waits for an
/// earlier run's transaction still in progress on a destination ([`Event::ResumeWait`], before
/// the wait).
///
/// # Errors
/// As [`plan`]; [`JobError::Interrupted`] once [`Options::interrupt`] is set (checked at each
/// table; a catalog query its caller cancelled for it fails so too).
pub fn plan_with(
    source: &Server,
    destinations: &[Server],
    selection: &Selection,
    options: &Options,
    events: &dyn Fn(Event),
) -> Result<Plan, JobError> {
    // Every planning session: an interrupt cuts its waits short (a frozen backend does not
    // take the caller's cancel), and its connects.
    let source = &options.interrupt.abandoning(source);
    let destinations: &[Server] = &destinations
        .iter()
        .map(|d| options.interrupt.abandoning(d))
        .collect::<Vec<_>>();
    let planned = plan_all(source, destinations, selection, options, events);
    match options.interrupt.reason() {
        Some(reason) if planned.is_err() => Err(JobError::Interrupted(reason)),
        _ => planned,
    }
}

fn plan_all(
    source: &Server,
    destinations: &[Server],
    selection: &Selection,
    options: &Options,
    events: &dyn Fn(Event),
) -> Result<Plan, JobError> {
    // Another run of this job alive: refused before anything, as its state file's lock refuses
    // it later (a resume waited for the live run's transactions and advised ending them).
    if state::running(&options.state) {
        return Err(JobError::State {
            path: options.state.clone(),
            error: state::held_by_another_run(),
        });
    }
    // Nothing to resume from: refused at once, not after a planning that may wait on locks
    // (what is not a regular file is refused as such, below).
    let file_or_none = options.state.is_file() || !options.state.exists();
    if let Some(refused) = (options.resume && file_or_none)
        .then(|| nothing_to_resume(&options.state, destinations))
        .flatten()
    {
        return Err(refused);
    }
    let mut src = connect(source, "source")?;
    // A destination's planning session: `None` once it was given up and could not be replaced
    // (each later table tries to connect again). Under `keep_going` a destination that cannot
    // be reached is left out of the job (`down`: each of its tables refused with why), as a
    // one-table run drops it; else the job stops before anything began.
    let mut dests = Vec::with_capacity(destinations.len());
    let mut down: Vec<Option<TableError>> = vec![None; destinations.len()];
    let mut left_out = Vec::new();
    let mut unreachable = Vec::new();
    // What each server's sessions make of text (the source's first), once asked.
    let mut forms_known = vec![None; destinations.len() + 1];
    let mut refused = Vec::new();
    for (i, server) in destinations.iter().enumerate() {
        if let Some((_, why)) = options.left_out.iter().find(|(d, _)| *d == i) {
            left_out.push(format!(
                "destination {} {}: {why}; left out (--keep-going)",
                i + 1,
                server.name
            ));
            down[i] = Some(TableError::lasting(why.clone()));
            refused.push(format!("destination {} ({}) {why}", i + 1, server.name));
            dests.push(None);
            continue;
        }
        let role = format!("destination {}", i + 1);
        let connected = match options.unreachable.iter().find(|(d, _)| *d == i) {
            Some((_, error)) => Err(JobError::Connect {
                role,
                server: server.name.clone(),
                error: error.clone(),
            }),
            None => connect(server, &role),
        };
        match connected {
            Ok(conn) => dests.push(Some(conn)),
            Err(JobError::Connect {
                role,
                server,
                error,
            }) if options.keep_going => {
                left_out.push(format!(
                    "{role} {server}: cannot connect: {error}; left out (--keep-going)"
                ));
                down[i] = Some(error.clone().prefixed("cannot connect: "));
                unreachable.push(JobError::Connect {
                    role,
                    server,
                    error,
                });
                dests.push(None);
            }
            Err(e) => return Err(e),
        }
    }
    // None left: a refusal, or a connection failure, as without `keep_going`, naming each one.
    if !destinations.is_empty() && down.iter().all(Option::is_some) {
        if let Some(first) = refused.into_iter().next() {
            return Err(JobError::Refused(first));
        }
        return Err(match unreachable.len() {
            1 => unreachable.remove(0),
            _ => JobError::Unreachable(unreachable),
        });
    }
    let query =
        select::selection_query(selection).map_err(|e| JobError::Selection(e.to_string()))?;
    let rows = src.query(&query).map_err(|e| {
        let error = describe_with(&e, options.stall_timeout);
        match error.sqlstate.as_deref() {
            // A named table that does not exist, or whose schema does not: the regclass cast
            // refuses it, naming it.
            Some("42P01" | "3F000") => JobError::NotOnSource(elsewhere(&mut src, error)),
            // A pattern the server reads as an invalid regular expression: the user's too.
            Some("2201B") => JobError::Selection(error.message),
            // A SQL_ASCII database takes names of any bytes, which its server will not send
            // as UTF-8 where they are not (types62 F4: the error named no table, and no way).
            Some("22021") if src.session().parameter("server_encoding") == Some("SQL_ASCII") => {
                let mut error = error;
                error.message.push_str(&format!(
                    " (a name in the source's catalog — a table's, its schema's or a column's — \
                     {} (the bytes above are the name's, from the first that is not UTF-8 on): \
                     leave that table out with a pattern whose ? stands for each such byte \
                     (--exclude-table 'caf?'), or rename it there)",
                    crate::sql::NAME_NOT_UTF8
                ));
                JobError::Source(error)
            }
            _ => JobError::Source(error),
        }
    })?;
    // A prepared transaction an earlier run left on a destination: said before copying, as a
    // one-table run says it (a job's rows came on top of those recover committed later:
    // recheck43 F6).
    let mut prepared_left = Vec::new();
    for (conn, label) in dests.iter_mut().zip(dest_labels(destinations)) {
        if let Some(conn) = conn.as_mut() {
            let here = commit::prepared_here(conn);
            prepared_left.extend(commit::prepared_here_warning(&label, &here));
        }
    }
    let (mut covered, mut selected): (Vec<_>, Vec<_>) = select::read_selection(&rows)
        .map_err(JobError::Selection)?
        .into_iter()
        .partition(|s| s.within.is_some());
    // A name a SQL_ASCII source holds that is not UTF-8 came as another (its bytes replaced):
    // no statement can name it (recheck63 F9: "relation does not exist" of a table that does).
    if let Some(s) =
        (selected.iter().chain(&covered)).find(|s| crate::sql::not_utf8(&src, &s.table.to_string()))
    {
        return Err(JobError::Source(TableError::new(format!(
            "table {}: its name {}: leave it out with a pattern whose ? stands for each such \
             byte ({}), or rename it there",
            s.table,
            crate::sql::NAME_NOT_UTF8,
            crate::sql::as_pattern(&s.table)
        ))));
    }
    let listed: HashSet<String> = covered
        .iter()
        .chain(&selected)
        .map(|s| s.table.to_string())
        .collect();
    // A partition selected with its partitioned ancestor: its rows come with the ancestor's.
    let mut notes: Vec<String> = covered
        .iter()
        .filter_map(|s| {
            let within = s.within.as_ref()?;
            Some(if s.excluded {
                format!(
                    "{}: matches --exclude-table, but its rows are copied with its partitioned \
                     table {within}, which is copied whole (leave {within} out to leave them out)",
                    s.table
                )
            } else {
                format!(
                    "{}: copied with its partitioned table {within}, not by itself",
                    s.table
                )
            })
        })
        .collect();
    notes.extend(prepared_left);
    let unmatched = select::unmatched_query(selection)
        .map_err(|e| JobError::Selection(e.to_string()))?
        .and_then(|query| src.query(&query).ok())
        .unwrap_or_default();
    // A name the source has but for case folding or a dot or space taken as pattern syntax:
    // said with the quoting that selects it.
    let mut spelled: Vec<String> = Vec::new();
    // The schemas an unqualified pattern sees (an --exclude-table's note).
    let on_path: Vec<String> = (!unmatched.is_empty())
        .then(|| {
            src.query("SELECT pg_catalog.unnest(pg_catalog.current_schemas(false))::text")
                .ok()
        })
        .flatten()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
        .collect();
    for row in &unmatched {
        if let [Some(flag), Some(pattern)] = &row[..] {
            // A table pattern without a schema looks on the search path only (jobs49 F5: the
            // hint named one of two `events` tables off the path, and blamed case and dots).
            let elsewhere = (flag == "--table")
                .then(|| off_path(&mut src, pattern, &on_path))
                .flatten();
            let literal = (flag != "--exclude-table" && elsewhere.is_none())
                .then(|| literally_named(&mut src, flag == "--schema", pattern))
                .flatten();
            let hint = literal.map_or_else(String::new, |(name, kind)| {
                // Not a table: the spelling is not why (names42 F1 advised the very pattern).
                match kind {
                    // (Copied from, into a table of the user's: a catalog is never written,
                    // recheck52 F6.)
                    Some(kind @ "a system catalog") => format!(
                        ": {name} is {kind}, which patterns and schemas never select: name it \
                         as the TABLE argument of `copyman table` with --target-table naming a \
                         table of yours, to copy its rows into that"
                    ),
                    Some(kind) => format!(
                        ": {name} is {kind}, which patterns and schemas never select: name it \
                         as a TABLE argument to copy its rows"
                    ),
                    None if name == pattern.to_lowercase() || name == *pattern => String::new(),
                    None => format!(
                        ": {name} does (a pattern's letters fold to lower case and a dot parts \
                         schema from table, as pg_dump reads them: {flag} '{name}')"
                    ),
                }
            });
            let hint = elsewhere.map_or(hint, |hint| format!(": {hint}"));
            // A wildcard that matches only what patterns never select: those named.
            let hint = match (hint.is_empty(), flag.as_str()) {
                (true, "--table") => other_kinds(&mut src, pattern).unwrap_or(hint),
                _ => hint,
            };
            if !hint.is_empty() {
                spelled.push(hint[2..].to_owned());
            }
            notes.push(match flag.as_str() {
                "--exclude-table" => unmatched_exclusion(pattern, &selection.schemas, &on_path),
                "--schema" => format!("--schema {pattern} matches no schema on the source{hint}"),
                _ => format!("{flag} {pattern} matches no table on the source{hint}"),
            });
        }
    }
    // Together they select every table either takes; pg_dump's -t makes its -n select nothing
    // (recheck42 F6: `-n app -t app.t1` copied, and under --truncate emptied, all of app).
    if !selection.schemas.is_empty() && !selection.include.is_empty() {
        notes.push(
            "--schema and --table select together: every table of the schemas and every table \
             the patterns match (pg_dump, given both, takes only --table's); give --table alone \
             to copy only the tables it matches"
                .to_owned(),
        );
    }
    notes.extend(uncopied(&mut src, selection, &listed));
    let with_excluded = left_out_with(&mut src, selection);
    notes.extend(with_excluded.iter().cloned());
    notes.extend(idle_exclusions(&mut src, selection));
    notes.extend(outside_schemas(&mut src, selection, &selected));
    // What each selected table's copy covers on the source, by oid, as the selection saw it:
    // checked again once the tables are locked (below), since a partition attached or detached
    // while the job plans would be copied twice, or by nobody; and recorded with the claims.
    let mut covers_before = source_covers(&mut src, selected.iter().map(|s| &s.table));
    // And their columns, checked again once they are locked: one added while the job planned
    // would be left out of the copy, NULL on a destination that has it (exit 0).
    let columns_before = source_columns(&mut src, selected.iter().map(|s| &s.table));
    if selected.is_empty() {
        let mut said = selection.to_string();
        for hint in spelled.into_iter().chain(with_excluded) {
            said.push_str(&format!("; {hint}"));
        }
        return Err(JobError::Empty(said));
    }
    // A table the source's role cannot read is refused here, by name, rather than left out (the
    // destinations would lack it without a word) or found only after other tables committed.
    let unreadable: Vec<String> = selected
        .iter()
        .filter(|s| !s.readable)
        .map(|s| s.table.to_string())
        .collect();
    if !unreadable.is_empty() {
        return Err(JobError::Source(TableError {
            connect: false,
            lasting: false,
            sqlstate: None,
            message: format!(
                "permission denied: the source's role may not SELECT {} {} (it needs SELECT on \
                 the table, or on each of its columns, and USAGE on its schema); grant it, or \
                 leave {} out with --exclude-table",
                if unreadable.len() == 1 {
                    "table"
                } else {
                    "tables"
                },
                unreadable.join(", "),
                if unreadable.len() == 1 { "it" } else { "them" },
            ),
        }));
    }
    // Row security that would fail a table's COPY (42501) is refused here too, with the ways
    // out; where the CONN turned it on, the plan says that only the rows the policies show are
    // copied. (A partition read through its partitioned ancestor meets that one's policies.)
    let with_row_security = |kind: RowSecurity| -> Vec<String> {
        let copied = selected.iter().filter(|s| s.within.is_none());
        let tables = copied.filter(|s| s.row_security == kind);
        tables.map(|s| s.table.to_string()).collect()
    };
    let refused = with_row_security(RowSecurity::Refused);
    if !refused.is_empty() {
        return Err(JobError::Source(TableError {
            connect: false,
            lasting: false,
            // As the source would have refused the COPY.
            sqlstate: Some("42501".to_owned()),
            message: format!("{} with --exclude-table", RowSecurity::refusal(&refused)),
        }));
    }
    for table in with_row_security(RowSecurity::Filtered) {
        notes.push(RowSecurity::filtered_note(&table));
    }
    // A view over a table whose row security applies: its policies are its tables', met as the
    // view reads them (the COPY failed at the view's turn, after other tables committed).
    let views = selected
        .iter()
        .filter(|s| s.kind == "v" && s.within.is_none());
    if let Some(why) = views
        .filter_map(|s| crate::plan::view_row_security(&mut src, &s.table))
        .next()
    {
        return Err(JobError::Source(TableError {
            connect: false,
            lasting: false,
            sqlstate: Some("42501".to_owned()),
            message: format!("{why} with --exclude-table"),
        }));
    }
    // Each destination as the state file names it: by what it is, not by how it was spelled.
    let mut keys: Vec<String> = dests
        .iter_mut()
        .zip(destinations)
        .map(|(conn, server)| {
            conn.as_mut()
                .and_then(identity)
                .unwrap_or_else(|| state::unidentified_key(&server.name))
        })
        .collect();
    // Clones of one server (a copied data directory, pg_basebackup) running side by side are
    // two destinations with one system identifier: named alike, one's records would stand for
    // the other's. They are named by their connection strings instead.
    let shared: Vec<bool> = keys
        .iter()
        .map(|k| keys.iter().filter(|other| *other == k).count() > 1)
        .collect();
    for ((key, server), shared) in keys.iter_mut().zip(destinations).zip(&shared) {
        if *shared {
            *key = state::unidentified_key(&server.name);
        }
    }
    // Each partition of the source with its ancestors: for the rerun check and the foreign keys.
    let source_ancestry = partition_ancestors(&mut src);
    // A partition's rows are its partitioned ancestors' too: a job of `root` after one that
    // began its partition `p1` (or the other way round) would copy them twice.
    let relatives = {
        let tables: Vec<String> = selected.iter().map(|s| s.table.to_string()).collect();
        let mut relatives: Vec<String> = Vec::new();
        for (partition, ancestors) in &source_ancestry {
            let up = if tables.contains(partition) {
                ancestors.clone()
            } else {
                Vec::new()
            };
            let down = ancestors
                .iter()
                .any(|a| tables.contains(a))
                .then(|| partition.clone());
            for relative in up.into_iter().chain(down) {
                if !tables.contains(&relative) && !relatives.contains(&relative) {
                    relatives.push(relative);
                }
            }
        }
        relatives
    };
    // The decision log is another file: one path for both would wait for ever on the lock the
    // state file holds.
    if let Some(log) = options
        .two_phase
        .as_deref()
        .filter(|log| state::same_file(&options.state, log))
    {
        return Err(JobError::Refused(format!(
            "--state and --decision-log name one file ({}): give each its own",
            log.display()
        )));
    }
    // A user's file is never written over: the state is written there from its first line.
    if state::found(&options.state) == state::Found::Other
        && (!options.resume || !options.state.is_file())
    {
        let what = if options.state.is_file() {
            "a file that is not a copyman state file: a job would write its state over it"
        } else {
            "not a regular file (a device, a FIFO, a directory): a job keeps its records in one"
        };
        return Err(JobError::Refused(format!(
            "--state {} is {what}; give another --state",
            options.state.display()
        )));
    }
    let source_key = identity(&mut src);
    let mut recorded = if options.resume {
        // A session lost while it was asked who it is (its server shut down under the
        // question) is not a server that cannot say: said as lost, as a later question's loss
        // is ([`refuse_where_unanswered`], which leaves it out under --keep-going), not as a
        // destination the state file may not know.
        let mut lost = down.clone();
        for (d, (conn, server)) in dests.iter().zip(destinations).enumerate() {
            let Some(why) = (conn.as_ref()).and_then(|c| unanswered(c, options.stall_timeout))
            else {
                continue;
            };
            if !options.keep_going {
                let server = format!("destination {} {}", d + 1, server.name);
                return Err(JobError::Destination { server, error: why });
            }
            lost[d].get_or_insert(why);
        }
        let (recorded, narrowing) = resumed(
            &options.state,
            selection,
            &keys,
            destinations,
            (&shared, &lost),
        )?;
        // A destination that could not be reached (--keep-going) is known by its name, where
        // the file recorded it so and no other destination of this run is that server: what
        // the file records done there is reported as such (nothing is written there).
        for (i, server) in destinations.iter().enumerate() {
            let recorded_key = recorded.names.get(&server.name);
            if let Some(key) = recorded_key.filter(|k| dests[i].is_none() && !keys.contains(k)) {
                keys[i] = key.clone();
            }
        }
        // A table this job never began that another job of the directory copied into these
        // destinations since: resumed, it was appended a second time (recheck43 F4).
        let unbegun: Vec<String> = (selected.iter().map(|s| s.table.to_string()))
            .chain(relatives.iter().cloned())
            .filter(|t| !keys.iter().any(|k| recorded.begun(t, k)))
            .collect();
        let labels = dest_labels(destinations);
        let covers = covers_before.clone().unwrap_or_default();
        for path in &options.other_states {
            let who = (keys.as_slice(), labels.as_slice());
            let source = source_key.as_ref();
            // The job's --truncate, given again or not: a resume of one begun with it empties
            // each table (it was refused as if it appended, "resume with --truncate": first47 F7).
            rows_beside(
                path,
                options.truncate || recorded.truncate,
                &unbegun,
                &covers,
                who,
                source,
                Beside::Resuming,
                &mut notes,
                &mut holds_on(&mut dests),
            )?;
        }
        if let Some(narrowing) = &narrowing {
            notes.extend(narrowed(&mut src, narrowing, &selected, &recorded, &keys)?);
        }
        // Another server's rows on top of the first's (a mistyped host, a staging copy of the
        // schema): a physical standby of the source is the same (one identity).
        if let (Some(before), Some(now)) = (&recorded.source, &source_key)
            && before != now
        {
            return Err(JobError::Refused(format!(
                "--resume: the state file {} was written by a run from another source ({before}; \
                 this one is {now}): the tables it recorded came from there, and the rest would \
                 come from here; resume from the same source (or a standby of it), or run the \
                 job without --resume",
                options.state.display()
            )));
        }
        recorded
    } else {
        let tables: Vec<String> = selected
            .iter()
            .map(|s| s.table.to_string())
            .chain(relatives.iter().cloned())
            .collect();
        kept_for_its_resume(&options.state, selection, &tables, &keys)?;
        fresh(
            &options.state,
            options.truncate,
            &tables,
            &keys,
            Some(&mut holds_on(&mut dests)),
        )?;
        let labels = dest_labels(destinations);
        let covers = covers_before.clone().unwrap_or_default();
        for path in &options.other_states {
            // Another job that runs now: its claims (it may not have committed yet).
            if state::running(path) {
                fresh(path, options.truncate, &tables, &keys, None)?;
                continue;
            }
            let who = (keys.as_slice(), labels.as_slice());
            let source = source_key.as_ref();
            rows_beside(
                path,
                options.truncate,
                &tables,
                &covers,
                who,
                source,
                Beside::Job,
                &mut notes,
                &mut holds_on(&mut dests),
            )?;
        }
        Recorded::default()
    };
    // A resume: a table the earlier run was to copy by itself, attached since as a partition of
    // a table that run committed on every destination, is copied by itself as that run planned
    // (the done table's copy would not bring its rows: they reached no destination, exit 0).
    if options.resume {
        let covers = covers_before.clone().unwrap_or_default();
        let attached = reattached(&mut src, &selected, &covers, &recorded, &keys)?;
        for table in &attached {
            let said = format!("{}: copied with its partitioned table", table.table);
            notes.retain(|note| !note.starts_with(&said));
            covered.retain(|s| s.table != table.table);
            notes.push(format!(
                "{}: attached since the earlier run as a partition of a table it had committed: \
                 copied by itself, as that run planned",
                table.table
            ));
        }
        if !attached.is_empty() {
            selected.extend(attached);
            covers_before = source_covers(&mut src, selected.iter().map(|s| &s.table));
        }
    }
    // A resume refuses a table the earlier run copied under another name (renamed since) or as
    // a part of another (a partition detached since): its rows may be there already — but a
    // table only renamed since (the same relations on the source, under a name this selection
    // no longer has) that it committed on every destination is done under its new name.
    let covers = covers_before.clone().unwrap_or_default();
    // The names the earlier run copied tables under that this one copies under new names.
    let mut renamed_from: HashSet<String> = HashSet::new();
    // And each done there under the old name, recorded done under the new one by the run (a
    // later resume finds the new name's records: recheck50 F1).
    let mut renamed_pairs: Vec<(String, usize, u64)> = Vec::new();
    let mut retaken: Vec<(String, Option<String>)> = Vec::new();
    // The tables of this selection another relation on the source than the earlier run copied
    // under their names: dropped and made again, or renamed away and another made under the
    // name (rotated), since — each with the destinations where the earlier one's copy may have
    // left rows under that name.
    let replaced = if options.resume {
        replaced_since(&covers, &recorded)
    } else {
        Vec::new()
    };
    let held_before: Vec<(String, Vec<usize>)> = (replaced.iter())
        .map(|table| {
            let held = (keys.iter().enumerate())
                .filter(|(_, k)| recorded.may_hold_rows(table, k))
                .map(|(d, _)| d)
                .collect();
            (table.clone(), held)
        })
        .collect();
    if options.resume {
        let renamed = {
            // Whether every attempt at a table on destination `d` is known, asked there, to
            // have committed nothing.
            let mut nothing = |d: usize, table: &str| {
                (dests.get_mut(d).and_then(Option::as_mut))
                    .is_some_and(|conn| resume::committed_nothing(conn, &recorded, table, &keys[d]))
            };
            renamed_done(&covers, &recorded, &keys, &replaced, &mut nothing)
        };
        // Followed only where each destination that holds the earlier copy renamed its table
        // too: its table of the new name holds as many rows of that copy's transaction as the
        // copy committed (recheck52 F3: a swap made on the source only was taken as made
        // everywhere — done, exit 0, every destination's tables under the other's name, or
        // one's rows copied on top of the other's; recheck52b F2: a foreign-key cycle's tables
        // share one transaction, whose rows the other table held).
        for (table, was) in &renamed {
            for (d, key) in keys.iter().enumerate() {
                let (Some(rows @ 1..), Some(xids)) = (
                    recorded.done(was, key),
                    recorded.done_xids.get(&(was.clone(), key.clone())),
                ) else {
                    continue;
                };
                let conn = dests.get_mut(d).and_then(Option::as_mut);
                if conn.and_then(|c| crate::identity::rows_of(c, table, xids)) == Some(rows) {
                    continue;
                }
                return Err(JobError::Refused(format!(
                    "--resume: {table} is the table the earlier run copied as {was} (renamed \
                     since on the source), and destination {} ({})'s {table} holds other rows \
                     than that run's transaction {} committed there: renamed on the source only? \
                     do the same there (ALTER TABLE … RENAME) and resume, or run the job again \
                     with --truncate and another --state",
                    d + 1,
                    destinations[d].name,
                    xids.iter().max().copied().unwrap_or_default()
                )));
            }
        }
        for (table, was, from) in in_shifting_order(renamed) {
            // (A name set aside to break a cycle: its records only move.)
            recorded.move_records(&from, &table);
            retaken.push((from.clone(), Some(table.clone())));
            let Some(was) = was else { continue };
            renamed_from.insert(was.clone());
            let mut on = Vec::new();
            for (i, key) in keys.iter().enumerate() {
                if let Some(rows) = recorded.done(&table, key) {
                    renamed_pairs.push((table.clone(), i, rows));
                    on.push((i + 1).to_string());
                }
            }
            notes.push(match on.len() == keys.len() {
                true => format!(
                    "{table}: the earlier run committed it on every destination as {was} \
                     (renamed since: the same relation on the source): done, not copied again"
                ),
                // (recheck50 F1: refused, every resume, as "its rows would be there twice".)
                false => format!(
                    "{table}: the earlier run committed it as {was} (renamed since: the same \
                     relation on the source) on destination {}: done there, not copied again; \
                     copied to the others, where nothing of it committed",
                    on.join(", ")
                ),
            });
        }
    }
    // A name whose earlier relation is gone from it (renamed away, dropped) and whose records
    // now describe no relation of it: a new table, copied everywhere — where a destination's
    // table of that name holds no rows (one that holds the earlier one's, or any: its rows
    // updated since, recheck51 F4) would get the new table's on top of them), or a `--truncate`
    // run's resume empties it first.
    let now_new = |recorded: &Recorded, table: &String| {
        let now = covers.iter().find(|(t, _)| t == table).map(|(_, o)| o);
        (recorded.covers.get(table)).is_none_or(|then| now.is_none_or(|now| then != now))
    };
    if !recorded.truncate {
        let mut holding = |d: usize, table: &str| {
            let conn = dests.get_mut(d).and_then(Option::as_mut);
            let name = TableName::parse(table).ok();
            let held = conn
                .zip(name.as_ref())
                .and_then(|(c, n)| resume::holds_rows(c, n));
            held != Some(false)
        };
        let fresh: Vec<(String, Vec<usize>)> = (held_before.iter())
            .filter(|(t, _)| now_new(&recorded, t))
            .cloned()
            .collect();
        if let Some(why) = replaced_where_held(&fresh, &mut holding) {
            return Err(JobError::Refused(why));
        }
    }
    for (table, _) in &held_before {
        if now_new(&recorded, table) && recorded.covers.contains_key(table) {
            recorded.forget(table);
            retaken.push((table.clone(), None));
            notes.push(format!(
                "{table}: another table of that name on the source than the earlier run \
                 copied (dropped and made again, or renamed away and another made, since): \
                 copied as a new table"
            ));
        }
    }
    // Whether every attempt at a table on destination `d` is known, asked there, to have
    // committed nothing.
    let mut rolled_back = |d: usize, table: &str| {
        (dests.get_mut(d).and_then(Option::as_mut))
            .is_some_and(|conn| resume::committed_nothing(conn, &recorded, table, &keys[d]))
    };
    if options.resume
        && let Some(again) = copied_under_another_name(&covers, &recorded, &keys, &mut rolled_back)
    {
        return Err(JobError::Refused(again));
    }
    if recorded.verify && !options.verify {
        return Err(JobError::Refused(
            "the run this resumes was given --verify: resume with --verify too (a table it \
             finds committed and not recorded done would else be recorded done unchecked)"
                .to_owned(),
        ));
    }
    // A destination that is not where the earlier run left it (a failover to a standby that
    // lacked its commits, a restore of an older copy: the same system identifier) may lack what
    // the state file records committed there, and a transaction id it recorded may name one of
    // the new server's own: only comparing every table (--verify) can tell.
    let mut moved = vec![false; destinations.len()];
    // By destination, the recorded copies whose own tables there hold none of their rows (a
    // resume's checks: asked once).
    let gone: Vec<resume::Gone> = (0..destinations.len())
        .map(|_| resume::Gone::new())
        .collect();
    // By destination, the first transaction id it gives this resume: an id the state file
    // records at or above it was forgotten by a crash before it was durable, and may be given
    // again since (scale51 F1: to this very probe, whose commit was taken for the earlier run's
    // copy of 0 rows: done, exit 0, the table empty there).
    let mut forgotten_from: Vec<Option<u64>> = vec![None; destinations.len()];
    if options.resume {
        for (i, (conn, server)) in dests.iter_mut().zip(destinations).enumerate() {
            let Some(conn) = conn.as_mut() else {
                continue;
            };
            forgotten_from[i] = crate::identity::next_xid(conn);
            let wal = recorded.position(&keys[i]).and_then(|then| {
                crate::identity::wal_position(conn).and_then(|now| now.went_back_from(&then))
            });
            // Transaction ids never go back on a server but by a restore: the WAL written
            // since may have passed the recorded position, its transaction ids not as soon.
            let xids = recorded.highest_xid.get(&keys[i]).and_then(|&committed| {
                let next = forgotten_from[i]?;
                (next <= committed).then(|| {
                    format!(
                        "its next transaction id is {next}, while the earlier run committed \
                         transaction {committed} there (a restore of an older copy since)"
                    )
                })
            });
            // Rows its last transaction recorded done wrote there: gone where the server was
            // restored since, whatever it did after (its own transactions reuse the ids).
            let rows = recorded
                .last_done
                .get(&keys[i])
                .and_then(|(table, committed)| {
                    let written = crate::identity::holds_rows_of(conn, table, &committed.xids)?;
                    // Another table's copy under its name instead: swapped there, said so by
                    // its own check (recheck53 F3: said as a restore, whose advice struck it).
                    if !written
                        && !resume::copied_into(conn, &recorded, table, &keys[i], &gone[i])
                            .is_empty()
                    {
                        return None;
                    }
                    // UNLOGGED there, emptied by a crash recovery known since its copy: said by
                    // its own check, and copied again (recheck54b F4: refused as a restore).
                    if !written
                        && crate::identity::unlogged_within(conn, table)
                        && resume::crash_known_since_done(conn, &recorded, table, &keys[i])
                            == Some(true)
                    {
                        return None;
                    }
                    // Its rows under another table's name (recheck53b F6).
                    if !written
                        && !resume::moved_to(conn, &recorded, table, &keys[i], &committed.xids)
                            .is_empty()
                    {
                        return None;
                    }
                    let why = crate::identity::unlogged_note(conn, table).unwrap_or(
                        "a restore of an older copy since, or every such row updated or deleted",
                    );
                    (!written).then(|| {
                        format!(
                            "{table} holds none of the rows the earlier run's transaction {} \
                             committed there ({why})",
                            committed.xids.iter().max().copied().unwrap_or_default()
                        )
                    })
                });
            let Some(why) = wal.or(xids).or(rows) else {
                continue;
            };
            let what = format!(
                "destination {} ({}) is not where the earlier run left it: {why}; what the state \
                 file records committed there may be missing",
                i + 1,
                server.name
            );
            if !options.verify {
                return Err(JobError::Refused(format!(
                    "--resume: {what}: resume with --verify to compare every table it records \
                     there (one that differs is copied again under --truncate), or run the job \
                     again with --truncate and another --state"
                )));
            }
            moved[i] = true;
            notes.push(format!(
                "{what}: --verify compares every table it records there"
            ));
        }
    }
    // Destinations the earlier run had and this one does not: what it did not finish there
    // stays as it was (a resume with them finishes it).
    if options.resume {
        let left: Vec<&str> = recorded
            .destinations()
            .into_iter()
            .filter(|d| !keys.iter().any(|k| k == d))
            .filter(|d| {
                selected
                    .iter()
                    .any(|sel| recorded.done(&sel.table.to_string(), d).is_none())
            })
            .collect();
        if !left.is_empty() {
            notes.push(format!(
                "the state file also records {} this resume is not given{}, where tables of \
                 the job are not done ({}): they stay as they are until a resume is given {}",
                if left.len() == 1 {
                    "a destination"
                } else {
                    "destinations"
                },
                // (One left out cannot say which server it is.)
                if down.iter().any(Option::is_some) {
                    " (or left out: it cannot be reached)"
                } else {
                    ""
                },
                // By the name it was given, where the file recorded one (jobs44 F3c: only its
                // system identifier, which a DBA cannot map to a server).
                left.iter()
                    .map(|key| match recorded.names.iter().find(|(_, k)| k == key) {
                        Some((name, _)) => format!("{name}, {key}"),
                        None => (*key).to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                if left.len() == 1 { "it" } else { "them" }
            ));
        }
    }
    if recorded.truncate && !options.truncate {
        notes.push(
            "the job began with --truncate: each table is emptied before it is copied, as it \
             would have been"
                .to_owned(),
        );
    }
    // Each destination's party in the decisions (one without a connection here is recorded
    // without an identity: recovery then asks for it by name).
    let mut parties: Vec<commit::Holder> = destinations
        .iter()
        .enumerate()
        .map(|(i, server)| commit::Holder {
            gid: String::new(),
            server: String::new(),
            database: String::new(),
            display: format!("destination {} {}", i + 1, server.name),
            backend: String::new(),
            place: String::new(),
        })
        .collect();
    if options.two_phase.is_some() {
        // Under --keep-going a destination that did not connect has no connection here: pair
        // each connection with its own server (its party, named `destination N NAME` as a
        // one-table run names it), so the refusal names the right one.
        let mut refused = Vec::new();
        for (i, (slot, party)) in dests.iter_mut().zip(&mut parties).enumerate() {
            let Some(conn) = slot.as_mut() else {
                continue;
            };
            let name = party.display.clone();
            *party = commit::Holder::of(conn, std::mem::take(&mut party.display));
            let max = conn
                .query("SELECT pg_catalog.current_setting('max_prepared_transactions')")
                .map_err(|e| {
                    let why = describe_with(&e, options.stall_timeout);
                    JobError::Refused(format!("{name}: {why}"))
                })?
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            if max == 0 {
                let why = "does not allow prepared transactions (max_prepared_transactions = \
                           0): set max_prepared_transactions above 0 in its postgresql.conf and \
                           restart it";
                if !options.keep_going {
                    return Err(JobError::Refused(format!("two-phase commit: {name} {why}")));
                }
                // Under --keep-going it is left out, as one that cannot be reached.
                notes.push(format!(
                    "{name}: two-phase commit: {why}; left out (--keep-going)"
                ));
                down[i] = Some(TableError::lasting(format!("two-phase commit: {why}")));
                refused.push(format!("two-phase commit: {name} {why}"));
                *slot = None;
            }
        }
        if down.iter().all(Option::is_some)
            && let Some(first) = refused.into_iter().next()
        {
            return Err(JobError::Refused(first));
        }
    }
    let block_size: u64 = src
        .query("SELECT pg_catalog.current_setting('block_size')")
        .ok()
        .and_then(|rows| rows.first().and_then(|r| r.first().cloned().flatten()))
        .and_then(|b| b.parse().ok())
        .unwrap_or(8192);
    let source_version = src.session().server_version_num();
    let same_major = source_version.map(major).is_some_and(|s| {
        dests.iter().flatten().all(|d| {
            d.session()
                .server_version_num()
                .is_none_or(|v| major(v) == s)
        })
    });

    // Without the job's snapshot, a split table's ranges read one of its own, which the session
    // that counts it exports: a source that cannot export one has its tables copied whole.
    let no_export = if options.snapshot || options.split_larger_than.is_none() {
        None
    } else {
        let probe = src
            .execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .and_then(|_| src.query("SELECT pg_catalog.pg_export_snapshot()"));
        let _ = src.execute("ROLLBACK");
        probe
            .err()
            .map(|e| describe_with(&e, options.stall_timeout).to_string())
    };

    // The data's encoding held by every server: checksums compare its bytes as they are.
    let checksum_unconverted = options.data_encoding.as_deref().is_some_and(|shared| {
        dests
            .iter()
            .flatten()
            .all(|d| d.session().parameter("server_encoding") == Some(shared))
    });
    let mut tables = Vec::new();
    let mut confirmed = renamed_pairs;
    let mut doubted = Vec::new();
    // Values measured for a destination column that cuts them: measured again in the job's
    // snapshot, which the copies read (a longer value committed in between arrived cut, copy44
    // F1).
    let mut measure_again: Vec<(TableName, crate::plan::Measure)> = Vec::new();
    let total = selected.len();
    let names: Vec<TableName> = selected.iter().map(|s| s.table.clone()).collect();
    let taken: HashSet<String> = names.iter().map(ToString::to_string).collect();
    // Emptied first, the tables an earlier run copied as one unit with a table copied again
    // now (its copy differed under --verify, or did not finish since) are copied again with
    // it, emptied together: emptied alone, a table the others reference failed (0A000, 23503,
    // with advice to empty them by hand: recheck54 F5, F8).
    let copied_with: Vec<HashMap<String, String>> = {
        let selection: Vec<String> = names.iter().map(ToString::to_string).collect();
        let regroups = options.resume && (options.truncate || recorded.truncate);
        (keys.iter())
            .map(|k| match regroups {
                true => resume::copied_with_undone(&recorded, &selection, k),
                false => HashMap::new(),
            })
            .collect()
    };
    // Each server's catalog, read LOOKED_UP_AT_ONCE tables at a time (see `lookup_many`).
    let mut source_catalog = HashMap::new();
    let mut dest_catalogs: Vec<HashMap<String, Relation>> = vec![HashMap::new(); dests.len()];
    // What --resume refuses, table by table: the job refused once every table was looked at.
    let mut resume_refusals: Vec<(String, String)> = Vec::new();
    for (done, sel) in selected.into_iter().enumerate() {
        events(Event::Planning { done, total });
        if let Some(reason) = options.interrupt.reason() {
            return Err(JobError::Interrupted(reason));
        }
        // The source's session stalled on the last table's question: each next one would too.
        if let Some(why) = unanswered(&src, options.stall_timeout) {
            return Err(JobError::Source(why));
        }
        let key = sel.table.to_string();
        if done % LOOKED_UP_AT_ONCE == 0 {
            let next = &names[done..names.len().min(done + LOOKED_UP_AT_ONCE)];
            // Every server asked at once, each on its own session: a job of thousands of tables
            // to several destinations waited for each in turn.
            let (looked_ahead, found) = std::thread::scope(|scope| {
                let asking: Vec<_> = (dests.iter_mut().zip(destinations).enumerate())
                    .filter(|(i, _)| down[*i].is_none())
                    .map(|(i, (slot, server))| {
                        // Not where it has nothing to do: a table recorded done everywhere is
                        // not asked about (but under --verify, which compares it by its
                        // columns' types); one done here and copied elsewhere is, for how each
                        // reads its text (recheck51 F2).
                        let undone: Vec<&TableName> = next
                            .iter()
                            .filter(|t| {
                                let t = t.to_string();
                                options.verify
                                    || keys.iter().any(|k| recorded.done(&t, k).is_none())
                            })
                            .collect();
                        let asked = move || match ensure(slot, server) {
                            Ok(conn) => match lookup_many(conn, &undone) {
                                Ok(found) => found,
                                // Each looked up alone, on a new session if this one was given
                                // up.
                                Err(_) => {
                                    give_up(slot, server);
                                    HashMap::new()
                                }
                            },
                            Err(_) => HashMap::new(),
                        };
                        (i, scope.spawn(asked))
                    })
                    .collect();
                let looked_ahead = look_ahead(&mut src, next, options);
                let found: Vec<_> = asking
                    .into_iter()
                    // A question's panic is the job's, as on the planning's own thread.
                    .map(|(i, asked)| (i, asked.join().unwrap_or_else(|p| resume_unwind(p))))
                    .collect();
                (looked_ahead, found)
            });
            source_catalog = looked_ahead?;
            for (i, catalog) in found {
                dest_catalogs[i] = catalog;
            }
        }
        let looked_up = source_catalog.remove(&key).map(|rel| Ok(Some(rel)));
        let source_rel = match looked_up.unwrap_or_else(|| lookup(&mut src, &sel.table)) {
            Ok(Some(rel)) => rel,
            Ok(None) => {
                return Err(JobError::Selection(format!("source table {key} not found")));
            }
            Err(crate::plan::LookupError::Server(e)) => {
                return Err(JobError::Source(
                    describe_with(&e, options.stall_timeout).prefixed(&format!("table {key}: ")),
                ));
            }
            Err(crate::plan::LookupError::Catalog(m)) => {
                return Err(JobError::Source(TableError::new(format!(
                    "table {key}: {m}"
                ))));
            }
        };
        if let Some(why) = crate::plan::shadowed_by_a_catalog(&mut src, &sel.table, &source_rel) {
            return Err(JobError::Refused(format!("table {key}: {why}")));
        }
        if let Some((code, why)) = source_rel.copy_out_refusal() {
            return Err(JobError::Refused(format!(
                "table {key}: SQLSTATE {code}: {why}, or leave it out with --exclude-table"
            )));
        }
        if source_rel.children > 0 {
            notes.extend(children_left_out(&mut src, &sel.table, &taken));
        }
        if let Some(foreign) =
            crate::plan::foreign_partitions(&mut src, &sel.table, &source_rel.kind)
        {
            return Err(JobError::Refused(format!(
                "table {key}: {}, and leave it out with --exclude-table",
                crate::plan::foreign_partitions_refusal("the source", &foreign)
            )));
        }
        let columns: Vec<Ident> = source_rel
            .columns
            .iter()
            .filter(|c| !c.generated)
            .map(|c| c.name.clone())
            .collect();
        let mut plans = Vec::new();
        let mut rels: Vec<(usize, Relation)> = Vec::new();
        // Destinations (1-based) whose table holds rows this copy appends to.
        let mut holding = Vec::new();
        for (i, (slot, server)) in dests.iter_mut().zip(destinations).enumerate() {
            let done = recorded.done(&key, &keys[i]);
            if let Some(rows @ 0) = done {
                plans.push(DestPlan::Done(rows));
                continue;
            }
            // Left out (--keep-going): recorded done as recorded, else refused with why.
            if let Some(error) = &down[i] {
                plans.push(done.map_or_else(|| DestPlan::Refused(error.clone()), DestPlan::Done));
                continue;
            }
            let conn = match ensure(slot, server) {
                Ok(conn) => conn,
                // Recorded done: as recorded (it cannot be checked).
                Err(_) if done.is_some() => {
                    plans.push(DestPlan::Done(done.unwrap_or_default()));
                    continue;
                }
                Err(e) => {
                    plans.push(DestPlan::Refused(e));
                    continue;
                }
            };
            // What the state file says of it here, checked against the destination.
            let waiting = |wait: ResumeWait| events(Event::ResumeWait(wait));
            let here = resume::Here {
                d: i,
                key: &keys[i],
                name: &server.name,
                waiting: &waiting,
                // A job begun with --truncate empties its tables on every resume, given it or not.
                truncate: options.truncate || recorded.truncate,
                interrupted: &|| options.interrupt.is_interrupted(),
                log: options.two_phase.as_deref(),
                logs: &recorded.logs,
                forgotten_from: forgotten_from[i],
                moved: moved[i],
                verify: options.verify,
                gone: &gone[i],
                copied_with: copied_with[i].get(&key).map(String::as_str),
            };
            let here = resume::resumed_here(conn, &recorded, &sel.table, &here);
            let empty_first = match here {
                // Each table's refusal is said, the job planned on to find the others' (recheck66
                // F7: a job in doubt on a restarted destination refused a table per resume).
                Err(why) => {
                    resume_refusals.push((key.clone(), why.clone()));
                    plans.push(DestPlan::Refused(TableError::lasting(why)));
                    continue;
                }
                Ok(resumed) => resumed,
            };
            let empty_first = match empty_first {
                Resumed::Done { rows, note } => {
                    notes.extend(note);
                    if done.is_none() {
                        confirmed.push((key.clone(), i, rows));
                    }
                    plans.push(DestPlan::Done(rows));
                    continue;
                }
                // Compared by the verify of the tables done earlier; recorded done there once it
                // matches.
                Resumed::Recheck { rows, note } => {
                    notes.extend(note);
                    if recorded.mismatched(&key, &keys[i]).is_none() {
                        doubted.push((key.clone(), i));
                    }
                    plans.push(DestPlan::Done(rows));
                    continue;
                }
                Resumed::Copy { empty, note } => {
                    notes.extend(note);
                    empty
                }
            };
            let looked_up = dest_catalogs[i].remove(&key).map(|rel| Ok(Some(rel)));
            let rel = match looked_up.unwrap_or_else(|| lookup(conn, &sel.table)) {
                Ok(Some(rel)) => rel,
                Ok(None) => {
                    plans.push(DestPlan::Refused(TableError::lasting("not found")));
                    continue;
                }
                Err(crate::plan::LookupError::Server(e)) => {
                    let mut error = describe_with(&e, options.stall_timeout);
                    // A lookup given up (a stall: it waits for a lock the catalog query takes
                    // to read the table's size) still runs on the server: it is cancelled, and
                    // the next tables are looked up on a new session. (A server's error, such
                    // as lock_timeout's 55P03, leaves the session usable.)
                    if let Some(note) = give_up(slot, server) {
                        error.message = format!("reading its catalog: {}; {note}", error.message);
                    }
                    plans.push(DestPlan::Refused(error));
                    continue;
                }
                Err(crate::plan::LookupError::Catalog(m)) => {
                    plans.push(DestPlan::Refused(TableError::lasting(m)));
                    continue;
                }
            };
            if let Some(why) = rel.copy_in_refusal() {
                plans.push(DestPlan::Refused(TableError {
                    sqlstate: Some("42809".to_owned()),
                    ..TableError::lasting(why)
                }));
                continue;
            }
            let label = format!("destination {}", i + 1);
            if let Some(why) = crate::plan::foreign_destination(conn, &sel.table, &rel.kind) {
                plans.push(DestPlan::Refused(TableError::lasting(why)));
                continue;
            }
            if let Err(why) = resolve_columns(&[], Some(&source_rel), &[(label.as_str(), &rel)]) {
                // A job copies whole tables: --columns is for one table copied alone, where
                // leaving a column out can mend it (not one no row can fill: recheck46 F5).
                let way = match crate::plan::columns_may_mend(&why) {
                    true => format!(
                        "; make its columns fit the source's there (ALTER TABLE …: a column it \
                         lacks added, one the source generates generated there too, one it \
                         generates that the source stores made plain), or, where \
                         no other table of the job is linked to it by a foreign key, copy it \
                         alone (copyman table {} --columns …) and leave it out of the job \
                         (--exclude-table)",
                        sel.table
                    ),
                    false => "; or leave it out of the job (--exclude-table)".to_owned(),
                };
                plans.push(DestPlan::Refused(TableError::lasting(format!(
                    "{why}{way}"
                ))));
                continue;
            }
            if options.format == Some(Format::Binary)
                && let Err(why) =
                    crate::plan::binary_misreads(&columns, &source_rel, &[(label.as_str(), &rel)])
            {
                plans.push(DestPlan::Refused(TableError::lasting(why)));
                continue;
            }
            // Money that would mean another amount there, an array's NULL another value:
            // refused on that destination.
            let (sides, arrays) = (
                MoneySides::of(&source_rel, &columns, &rel),
                ArraySides::of(&source_rel, &columns, &rel),
            );
            if sides.any() || arrays.any() {
                let from = match sides.any() {
                    true => server_forms(source, &mut src, &mut forms_known[0]),
                    false => None,
                }
                .transpose()
                .map(|f| f.cloned());
                let forms = server_forms(server, conn, &mut forms_known[i + 1])
                    .transpose()
                    .map(|f| f.cloned());
                let (from, forms) = match (from, forms) {
                    (Ok(from), Ok(forms)) => (from, forms),
                    (Err(why), _) | (_, Err(why)) => {
                        plans.push(DestPlan::Refused(TableError::lasting(why)));
                        continue;
                    }
                };
                let (from, forms) = (from.as_ref(), forms.as_ref());
                let label = label.as_str();
                let why = crate::plan::money_meant_otherwise(from, &[(label, sides, forms)])
                    .or_else(|| crate::plan::arrays_read_otherwise(&[(label, arrays, forms)]));
                if let Some(why) = why {
                    plans.push(DestPlan::Refused(TableError::lasting(format!(
                        "{why}: copy it alone (copyman table {} --columns …) and leave it out \
                         of the job (--exclude-table)",
                        sel.table
                    ))));
                    continue;
                }
                if let Some(warning) = crate::plan::money_written_otherwise(from, &[(label, sides)])
                {
                    notes.push(format!("{}: {warning}", sel.table));
                }
            }
            let truncate = options.truncate || recorded.truncate || empty_first;
            if let Some(what) = rel.refuses_emptying().filter(|_| truncate) {
                plans.push(DestPlan::Refused(TableError {
                    sqlstate: Some("42809".to_owned()),
                    ..TableError::lasting(format!("is {what} there: it cannot be emptied first"))
                }));
                continue;
            }
            match crate::plan::uncounted(&rel, options.allow_count_mismatch) {
                Err(why) => {
                    plans.push(DestPlan::Refused(TableError::lasting(why)));
                    continue;
                }
                Ok(Some(warning)) => {
                    notes.push(format!("{} on destination {}: {warning}", sel.table, i + 1));
                }
                Ok(None) => {}
            }
            // Read with its catalog, as the table's other facts.
            let truncate_triggers = rel
                .truncate_triggers
                .as_deref()
                .filter(|_| truncate)
                .map(crate::plan::truncate_triggers_note);
            if let Some(note) = &truncate_triggers {
                notes.push(format!("{} on destination {}: {note}", sel.table, i + 1));
            }
            if !truncate && crate::plan::holds_rows(conn, &sel.table, &rel) {
                holding.push(i + 1);
            }
            let quiet_delete = truncate && rel.quiet_delete;
            plans.push(DestPlan::Copy {
                truncate,
                // Not where it is emptied by a DELETE (referenced): set again below.
                freeze: truncate && rel.kind == "r",
                kind: rel.kind.clone(),
                quiet_delete,
                sequences: sequences::carried(&columns, &source_rel, &rel),
                guard: None,
                triggers: rel.insert_triggers.is_some() || truncate_triggers.is_some(),
            });
            let uncarried = sequences::uncarried(&columns, &source_rel, &rel);
            notes.extend(sequences::uncarried_warning(
                &key,
                &format!("destination {}", i + 1),
                &uncarried,
            ));
            rels.push((i, rel));
        }
        if !holding.is_empty() {
            notes.push(format!("{key}: {}", crate::plan::appends_note(&holding)));
        }
        // Done on some destinations by an earlier run, copied on others now: each holds the
        // source as its own snapshot saw it.
        let held = |want: fn(&DestPlan) -> bool| -> Vec<String> {
            plans
                .iter()
                .enumerate()
                .filter(|(_, p)| want(p))
                .map(|(d, _)| (d + 1).to_string())
                .collect()
        };
        let earlier = held(|p| matches!(p, DestPlan::Done(_)));
        let now = held(|p| matches!(p, DestPlan::Copy { .. }));
        if !earlier.is_empty() && !now.is_empty() {
            // "destination 1 holds", "destinations 1, 2 hold" (sweep58 F6).
            let these = |list: &[String]| match list.len() {
                1 => ("destination", ("holds", "gets")),
                _ => ("destinations", ("hold", "get")),
            };
            let (e_name, (e_verb, _)) = these(&earlier);
            let (n_name, (_, n_verb)) = these(&now);
            notes.push(format!(
                "{key}: {e_name} {} {e_verb} the copy an earlier run made, from that run's \
                 snapshot, and {n_name} {} {n_verb} this run's, from its own: rows the source \
                 changed in between differ between them (--verify compares each with the source \
                 as its own run's snapshot saw it)",
                earlier.join(", "),
                now.join(", ")
            ));
        }
        // The zones the copy's sessions read and write times without one in.
        let source_zone = src.session().parameter("TimeZone").map(str::to_owned);
        let dest_zones: Vec<Option<String>> = (dests.iter())
            .map(|d| {
                d.as_ref()?
                    .session()
                    .parameter("TimeZone")
                    .map(str::to_owned)
            })
            .collect();
        let differing = |i: usize, rel: &Relation| -> Vec<(Ident, String)> {
            (columns.iter())
                .filter_map(|name| {
                    let (theirs, here) = (source_rel.column(name)?, rel.column(name)?);
                    let zones = (source_zone.as_deref(), dest_zones[i].as_deref());
                    (here.type_name != theirs.type_name)
                        .then(|| (name.clone(), crate::plan::read_back(theirs, here, zones)))
                })
                .collect()
        };
        let mut read_as = vec![Vec::new(); plans.len()];
        for (i, rel) in &rels {
            read_as[*i] = differing(*i, rel);
        }
        // Done earlier with rows: its catalog, read with the others' (compared under --verify;
        // its settings checked against those of the destinations copied now).
        let mut done_rels: Vec<(usize, Relation)> = Vec::new();
        for (i, catalog) in dest_catalogs.iter_mut().enumerate() {
            if matches!(plans[i], DestPlan::Done(rows) if rows > 0)
                && let Some(rel) = catalog.remove(&key)
            {
                if options.verify {
                    read_as[i] = differing(i, &rel);
                }
                done_rels.push((i, rel));
            }
        }
        // The settings each destination compared reads the copy's text in (the first
        // `rels.len()` those copied now): a text column compared in a date's, an interval's
        // or an array's type is read in them on every side, the source's too.
        let compared: Vec<ReadSettings> = (rels.iter().chain(&done_rels))
            .map(|(i, rel)| {
                answering(&mut dests[*i])
                    .map(|c| ReadSettings::asked(c, &source_rel, &columns, rel))
                    .unwrap_or_default()
            })
            .collect();
        let compared_refs: Vec<&ReadSettings> = compared.iter().collect();
        // Those set where such a column is compared so: a table without one keeps the
        // checksum's own forms (a resume compares with a checksum an earlier run recorded).
        let mut checksum_reads_in: Vec<(&'static str, String)> = Vec::new();
        // Those of a family every side can read in one form (numbers, JSON): compared so on
        // every side, the source's too.
        let mut compare_forms: Vec<(Ident, &'static str)> = Vec::new();
        for (_, rel) in rels.iter().chain(&done_rels) {
            for name in &columns {
                let (Some(theirs), Some(here)) = (source_rel.column(name), rel.column(name)) else {
                    continue;
                };
                if let Some(form) = (theirs.type_name != here.type_name)
                    .then(|| {
                        // (Domains as their base types: recheck52b F1.)
                        crate::sql::comparison_form(theirs.base_name(), here.base_name())
                            .or_else(|| crate::plan::compared_as_text(theirs, here))
                            .or_else(|| {
                                // In that type on every side: only where every destination
                                // holds it so (a text one's value another's type refused would
                                // fail the cast, recheck44b F3).
                                let alike = (rels.iter().chain(&done_rels)).all(|(_, r)| {
                                    r.column(name)
                                        .is_some_and(|c| c.type_name == here.type_name)
                                });
                                let (form, reading) = alike
                                    .then(|| {
                                        crate::plan::compared_in_destination_type(theirs, here)
                                    })
                                    .flatten()?;
                                // Read in the destinations' settings, where they share them.
                                let sets = crate::plan::checksum_reads(reading, &compared_refs)?;
                                for set in sets {
                                    if !checksum_reads_in.contains(&set) {
                                        checksum_reads_in.push(set);
                                    }
                                }
                                Some(form)
                            })
                    })
                    .flatten()
                    && !compare_forms.iter().any(|(c, _)| c == name)
                {
                    compare_forms.push((name.clone(), form));
                }
            }
        }
        for each in &mut read_as {
            each.retain(|(name, _)| !compare_forms.iter().any(|(c, _)| c == name));
        }
        let labels: Vec<String> = rels
            .iter()
            .map(|(i, _)| format!("destination {}", i + 1))
            .collect();
        let view: Vec<(&str, &Relation)> = labels
            .iter()
            .zip(&rels)
            .map(|(l, (_, r))| (l.as_str(), r))
            .collect();
        // A question of this table's given up on a destination (its session stalled): the
        // table is refused there, and the next table asks on a new session (`ensure`).
        for (i, _) in &rels {
            if let Some(why) = dests[*i]
                .as_ref()
                .and_then(|c| unanswered(c, options.stall_timeout))
            {
                plans[*i] = DestPlan::Refused(why);
            }
        }
        // Those where an earlier run copied it too, read in their settings now (recheck51 F2: a
        // resume that left a CONN's DateStyle out stored another day there, exit 0).
        // (A table copied nowhere now is not refused for them.)
        let done_labels: Vec<String> = (done_rels.iter())
            .filter(|_| !rels.is_empty())
            .map(|(i, _)| format!("destination {} (where an earlier run copied it)", i + 1))
            .collect();
        let read: Vec<(&str, &Relation, &ReadSettings)> = (view.iter().copied())
            .chain(
                done_labels
                    .iter()
                    .map(String::as_str)
                    .zip(done_rels.iter().map(|(_, r)| r)),
            )
            .zip(&compared)
            .map(|((label, rel), settings)| (label, rel, settings))
            .collect();
        if let Some(why) = crate::plan::read_otherwise(&source_rel, &columns, &read) {
            return Err(JobError::Refused(format!("table {}: {why}", sel.table)));
        }
        let mut choice = choose_format(
            options.format,
            Some(&columns),
            Some(&source_rel),
            &view,
            true,
            same_major,
        )
        .map_err(JobError::Refused)?;
        // Where the data may pass in the servers' encoding, `xml` does not travel in binary.
        let copied = columns.iter().filter_map(|c| source_rel.column(c));
        if choice.format == Format::Binary
            && let Some(why) = crate::plan::xml_declared(options.data_encoding.as_deref(), copied)
        {
            if options.format == Some(Format::Binary) {
                return Err(JobError::Refused(format!(
                    "table {}: --format binary: {why}; give --format text",
                    sel.table
                )));
            }
            (choice.format, choice.reason) = (Format::Text, why);
        }
        if let Some(warning) = &choice.warning {
            notes.push(format!("{}: {warning}", sel.table));
        }
        if let Some(warning) = crate::plan::insert_triggers(&view, true) {
            notes.push(format!("{}: {warning}", sel.table));
        }
        if let Some(warning) = crate::plan::insert_rules(&view) {
            notes.push(format!("{}: {warning}", sel.table));
        }
        if let Some(warning) = crate::plan::large_object_columns(&view, Some(&columns)) {
            notes.push(format!("{}: {warning}", sel.table));
        }
        // The data passes in the shared encoding, else in the source session's.
        let passes = (options.data_encoding.clone())
            .or_else(|| {
                src.session()
                    .parameter("client_encoding")
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "UTF8".to_owned());
        let each: Vec<(usize, (&str, &Relation, String))> = view
            .iter()
            .zip(&rels)
            .filter_map(|((label, rel), (i, _))| {
                let encoding = dests[*i].as_ref()?.session().parameter("server_encoding");
                Some((
                    *i,
                    (*label, *rel, crate::plan::measured_in(encoding?, &passes)),
                ))
            })
            .collect();
        let rows = crate::plan::table_rows(&sel.table, None);
        // Each destination on its own: one whose column would cut the source's values is
        // refused there, as one whose columns differ is — the job stops before copying
        // anything, or copies the rest under --keep-going (recheck66 F4: the whole job was
        // refused, exit 2, --keep-going or not).
        let mut measured = false;
        let mut encoded = Vec::with_capacity(each.len());
        for (i, one) in each {
            let one = [one];
            match crate::plan::values_cut(&mut src, Ok(&rows), &columns, &source_rel, &one) {
                Ok(m) => {
                    measured |= m;
                    encoded.extend(one);
                }
                Err(why) => plans[i] = DestPlan::Refused(TableError::lasting(why)),
            }
        }
        if measured {
            measure_again.push((
                sel.table.clone(),
                crate::plan::Measure::new(rows, &columns, &source_rel, &encoded, false),
            ));
        }
        // A view is read on the source's search_path: values that name objects lose their
        // schema.
        if !crate::sql::reads_pinned(&source_rel.kind)
            && let Some(warning) = crate::plan::named_on_search_path(&source_rel, &columns)
        {
            notes.push(format!("{}: {warning}", sel.table));
        }
        // Binary data carries no type: each side checks, once it holds the table, that the
        // columns still have the types read here.
        let binary = choice.format == Format::Binary;
        for (i, rel) in rels.iter().filter(|_| binary) {
            if let Some(DestPlan::Copy { guard, .. }) = plans.get_mut(*i) {
                let hold = Hold::LockIfAllowed("ROW EXCLUSIVE");
                let version = dests[*i]
                    .as_ref()
                    .and_then(|c| c.session().server_version_num());
                *guard = rel.types_unchanged(&sel.table, hold, &columns, version);
            }
        }
        let source_guard = binary
            .then(|| {
                // (A table the job holds is held by the worker's transaction already: the lock
                // then costs nothing.)
                let hold = Hold::LockIfAllowed("ACCESS SHARE");
                source_rel.types_unchanged(&sel.table, hold, &columns, source_version)
            })
            .flatten();
        let copy = TableCopy {
            table: sel.table.clone(),
            target: None,
            columns: columns.clone(),
            condition: None,
            header: false,
            encoding: None,
        };
        let select = needs_select(&source_rel, Some(&columns));
        // A table emptied first (`--truncate`, or taken up again by a resume) is copied whole:
        // its TRUNCATE must commit with its rows, and ranges in transactions of their own could
        // not wait for its lock (nor, after a DELETE, for the unique keys it frees).
        let emptied = plans
            .iter()
            .any(|p| matches!(p, DestPlan::Copy { truncate: true, .. }));
        let ranges = match options.split_larger_than {
            Some(limit) if limit > 0 && sel.kind == "r" && sel.size > limit && !emptied => {
                match &no_export {
                    None => split(
                        &copy,
                        choice.format,
                        sel.size,
                        limit,
                        block_size,
                        options.jobs,
                    ),
                    Some(why) => {
                        notes.push(format!(
                            "{}: copied whole, not split: without the job's snapshot its ranges \
                             would read one of the table's own, and the source cannot export \
                             one ({why})",
                            sel.table
                        ));
                        Vec::new()
                    }
                }
            }
            Some(limit) if limit > 0 && sel.kind == "r" && sel.size > limit => {
                notes.push(format!(
                    "{}: copied whole, not split: it is emptied first on a destination, and its \
                     TRUNCATE commits with its rows in one transaction",
                    sel.table
                ));
                Vec::new()
            }
            // Said, not left to be guessed (jobs46 F4.4): ranges are an ordinary table's pages.
            Some(limit) if limit > 0 && sel.kind == "p" && sel.size > limit => {
                notes.push(format!(
                    "{}: copied whole, not split: --split-larger-than splits an ordinary table by \
                     its pages, and this one is partitioned (its partitions are read through it \
                     in one COPY); to copy them side by side, select its partitions instead of it",
                    sel.table
                ));
                Vec::new()
            }
            _ => Vec::new(),
        };
        tables.push(TablePlan {
            ranges,
            send: copy.copy_out(choice.format, select, &source_rel.kind),
            receive: copy.copy_in(choice.format),
            table: sel.table,
            kind: sel.kind,
            size: sel.size,
            bytes: sel.bytes.max(sel.size),
            estimate: source_rel.estimate,
            columns,
            format: choice.format,
            format_reason: choice.reason,
            destinations: plans,
            after: Vec::new(),
            referenced_by: Vec::new(),
            locked: false,
            files: None,
            source_guard,
            data_encoding: options.data_encoding.clone(),
            checksum_unconverted,
            read_as,
            compare_forms,
            checksum_reads_in,
        });
        let plan = tables.last().expect("pushed");
        if let Some(shared) = plan
            .data_encoding
            .as_deref()
            .filter(|_| !plan.speaks_ascii())
            && let Some(changed) = copyman_core::statement::changes_through_utf8(shared)
        {
            // Its data goes through UTF8 (its statements could not be sent in `shared`), and
            // the destinations of `shared` get other bytes (enc45 F2: exit 0, not a word).
            notes.push(format!(
                "{}: a name in its statements is beyond ASCII, so its data passes in UTF8, not in \
                 the {shared} every server holds: {changed}, so the {shared} destinations store \
                 other bytes than the source's; to keep them, copy it with `copyman copy` and \
                 ASCII statements (U&\"\\8868\" escapes a name's character)",
                plan.table
            ));
        }
    }
    match resume_refusals.as_slice() {
        [] => {}
        [(_, one)] => return Err(JobError::Refused(one.clone())),
        all => {
            // Numbered, as the error is said on one line (jobs67 F1: "2 tables" of one table
            // on two destinations, its reasons run together).
            let each: Vec<String> = (all.iter().enumerate())
                .map(|(i, (_, why))| {
                    format!(
                        "({}) {}",
                        i + 1,
                        why.strip_prefix("--resume: ").unwrap_or(why)
                    )
                })
                .collect();
            let mut tables: Vec<&str> = all.iter().map(|(t, _)| t.as_str()).collect();
            tables.dedup();
            let what = match tables.as_slice() {
                [one] => format!("{one} on {} destinations", all.len()),
                many => format!("{} tables ({} refusals)", many.len(), all.len()),
            };
            return Err(JobError::Refused(format!(
                "--resume refuses {what}: {}",
                each.join("; ")
            )));
        }
    }
    // The carried sequences each destination's role may not advance, asked once for every
    // table there: said now, not promised (one question a table was a round trip each).
    for (d, slot) in dests.iter_mut().enumerate() {
        let Some(conn) = answering(slot) else {
            continue;
        };
        let oids = tables.iter().flat_map(|t| match &t.destinations[d] {
            DestPlan::Copy { sequences, .. } => sequences.iter().map(|c| c.destination).collect(),
            _ => Vec::new(),
        });
        let denied = sequences::unadvanceable(conn, oids);
        // A table whose source sequence already stands beyond its destination's bounds: its
        // setval would fail the table's copy after every row; refused there now.
        let carried = tables.iter().flat_map(|t| match &t.destinations[d] {
            DestPlan::Copy { sequences, .. } => sequences.iter().collect(),
            _ => Vec::new(),
        });
        let carried: Vec<Carry> = carried.cloned().collect();
        let beyond = sequences::beyond_bounds(&mut src, conn, &carried);
        for t in tables.iter_mut() {
            let why = match &t.destinations[d] {
                DestPlan::Copy { sequences, .. } => {
                    sequences.iter().find_map(|c| beyond.get(&c.destination))
                }
                _ => None,
            };
            if let Some(why) = why {
                let mut refused = TableError::lasting(why.clone());
                refused.sqlstate = Some("22003".to_owned());
                t.destinations[d] = DestPlan::Refused(refused);
            }
        }
        if denied.is_empty() {
            continue;
        }
        for t in tables.iter_mut() {
            let key = t.table.to_string();
            if let DestPlan::Copy { sequences, .. } = &mut t.destinations[d] {
                notes.extend(sequences::unadvanceable_warning(
                    &key,
                    &format!("destination {}", d + 1),
                    sequences,
                    &denied,
                ));
            }
        }
    }
    // A session whose last table's question was given up is replaced, as the next table's
    // would have been (`ensure`): the questions below ask on a session that answers.
    for (slot, server) in dests.iter_mut().zip(destinations) {
        give_up(slot, server);
    }
    // Foreign keys, as every server has them (the destinations enforce theirs; the source's
    // say how the data hangs together): parents first.
    // The destinations' (only they can refuse a row): a cycle the source has and the
    // destinations broke (a constraint dropped for the load) orders the tables all the same.
    let mut edges_on = vec![Vec::new(); dests.len()];
    let mut binding_on = vec![Vec::new(); dests.len()];
    let on_source: HashSet<String> = source_ancestry.iter().map(|(p, _)| p.clone()).collect();
    let mut ancestors = source_ancestry;
    for (d, slot) in dests.iter_mut().enumerate() {
        if let Some(conn) = answering(slot) {
            (edges_on[d], binding_on[d]) = foreign_keys(conn);
        }
        if let Some(conn) = answering(slot) {
            let here = partition_ancestors(conn);
            refuse_emptied_within(&tables, d, &here)?;
            notes.extend(partitions_of_its_own(&tables, d, &here, &on_source));
            ancestors.extend(here);
        }
        if let Some(conn) = answering(slot).filter(|_| options.verify) {
            refuse_unreadable_for_verify(conn, &tables, d)?;
        }
    }
    // Each destination's (whether a group's one TRUNCATE is refused there), and all of them.
    let edges_on: Vec<Vec<(String, String)>> = edges_on
        .into_iter()
        .map(|edges| onto_job_tables(&tables, &ancestors, edges))
        .collect();
    let edges = onto_job_tables(&tables, &ancestors, edges_on.concat());
    let binding_on: Vec<Vec<(String, String)>> = binding_on
        .into_iter()
        .map(|edges| onto_job_tables(&tables, &ancestors, edges))
        .collect();
    notes.extend(parents_left_out(&tables, &edges_on, &mut dests));
    // A table that references itself on a destination is copied whole: a range's row may
    // reference a row of a range not committed yet there (a tree's child before its parent),
    // which would fail every run alike (23503).
    let mut self_referencing: Vec<(String, usize)> = Vec::new();
    for (d, slot) in dests.iter_mut().enumerate() {
        if let Some(conn) = answering(slot) {
            self_referencing.extend(references_itself(conn).into_iter().map(|t| (t, d)));
        }
    }
    for t in tables.iter_mut().filter(|t| !t.ranges.is_empty()) {
        let name = t.table.to_string();
        if let Some((_, d)) = self_referencing.iter().find(|(s, _)| *s == name) {
            t.ranges.clear();
            notes.push(format!(
                "{name}: copied whole, not split: it references itself by a foreign key on \
                 destination {}, and a range's rows could reference rows of a range not \
                 committed yet",
                d + 1
            ));
        }
    }
    let mut cycles = order_by_foreign_keys(&mut tables, &edges);
    // FK-linked tables emptied first are copied as one unit (see `crate::plan::Group`).
    let groups = {
        let names: Vec<String> = tables.iter().map(|t| t.table.to_string()).collect();
        let emptied: Vec<bool> = tables.iter().map(TablePlan::emptied).collect();
        let cyclic: Vec<bool> = names.iter().map(|n| cycles.contains(n)).collect();
        let mut after: Vec<Vec<usize>> = tables.iter().map(|t| t.after.clone()).collect();
        // On a cycle, the keys that are not DEFERRABLE (checked at each row, even in the
        // unit's transaction, which defers the others to its COMMIT) order the tables where
        // they can: the size order put a table before the one its such key references, and
        // the unit failed (23503) where one key of the cycle was DEFERRABLE.
        // Destination by destination: one whose keys no order meets (none of a cycle's
        // DEFERRABLE), or that need another order than those before it, orders nothing, so
        // that the unit loads where it can (recheck63 F2: any such destination left the size
        // order, which met none).
        let at = |name: &String| names.iter().position(|n| n == name);
        for edges in &binding_on {
            let mut tried = after.clone();
            for (c, p) in edges {
                if let (Some(c), Some(p)) = (at(c), at(p))
                    && cyclic[c]
                    && cyclic[p]
                    && !tried[c].contains(&p)
                {
                    tried[c].push(p);
                }
            }
            if !has_cycle(&tried) {
                after = tried;
            }
        }
        crate::plan::fk_groups(&names, (&emptied, &cyclic), &after, &edges_on)
    };
    // A cycle's tables copied as one unit commit together: none waits for another's commit,
    // but a row still meets its foreign key as it is inserted, unless the key is deferred.
    let (grouped, apart): (Vec<String>, Vec<String>) = cycles.drain(..).partition(|name| {
        let i = tables.iter().position(|t| t.table.to_string() == *name);
        groups
            .iter()
            .any(|g| i.is_some_and(|i| g.members.contains(&i)))
    });
    cycles = apart;
    // A unit a resume has nothing of to copy goes unsaid (recheck57 F5: each resume repeated
    // its cycle's notes).
    let settled = |g: &crate::plan::Group| {
        (g.members.iter())
            .all(|&m| (tables[m].destinations.iter()).all(|d| matches!(d, DestPlan::Done(_))))
    };
    for g in groups.iter().filter(|g| !settled(g)) {
        let name = |m: &usize| tables[*m].table.to_string();
        let on_cycle: Vec<String> = (g.members.iter().map(name))
            .filter(|n| grouped.contains(n))
            .collect();
        if on_cycle.is_empty() {
            continue;
        }
        // Where a key that is not DEFERRABLE references a table the unit copies after its own:
        // a destination whose such keys form a cycle themselves (no order meets them), and one
        // whose keys another destination's order does not meet (recheck63 F1: both were said
        // "keys not DEFERRABLE").
        let place = |table: &String| g.members.iter().position(|m| name(m) == *table);
        let (mut none_deferrable, mut other_order) = (Vec::new(), Vec::new());
        for (d, edges) in binding_on.iter().enumerate() {
            let within: Vec<(usize, usize)> = (edges.iter())
                .filter_map(|(c, p)| Some((place(c)?, place(p)?)))
                .collect();
            let Some(&(c, p)) = within.iter().find(|(c, p)| p > c) else {
                continue;
            };
            let mut graph = vec![Vec::new(); g.members.len()];
            for &(c, p) in &within {
                graph[c].push(p);
            }
            match has_cycle(&graph) {
                true => none_deferrable.push((d + 1).to_string()),
                false => other_order.push(format!(
                    "destination {} ({} references {} there by a key that is not DEFERRABLE)",
                    d + 1,
                    name(&g.members[c]),
                    name(&g.members[p])
                )),
            }
        }
        let mut said = format!(
            "{}: their foreign keys on a destination form a cycle; copied as one unit (below), \
             in this order, as the keys that are not DEFERRABLE on a destination need (the \
             unit's transaction defers the others to its COMMIT)",
            on_cycle.join(", ")
        );
        if !none_deferrable.is_empty() {
            said.push_str(&format!(
                "; on destination {} no key of the cycle is DEFERRABLE, so no order meets them \
                 all: a row that references one not inserted yet fails (23503) there: load \
                 them with a constraint of the cycle dropped, or made DEFERRABLE (the unit's \
                 transaction defers it)",
                none_deferrable.join(", ")
            ));
        }
        if !other_order.is_empty() {
            said.push_str(&format!(
                "; this order, an earlier destination's, does not meet the keys of {}: a row \
                 that references one not inserted yet fails (23503) there: copy to {} in a run \
                 of its own, or make that key DEFERRABLE there",
                other_order.join(", "),
                if other_order.len() == 1 { "it" } else { "each" }
            ));
        }
        notes.push(said);
    }
    if !cycles.is_empty() {
        notes.push(format!(
            "{}: their foreign keys on a destination form a cycle, so they are copied side by \
             side and a row may reference one not committed yet there (23503): load them with a \
             constraint of the cycle dropped (or DEFERRABLE and the tables emptied together)",
            cycles.join(", ")
        ));
    }
    for g in groups.iter().filter(|g| !settled(g)) {
        let names: Vec<String> = g
            .members
            .iter()
            .map(|&m| tables[m].table.to_string())
            .collect();
        let emptied = g.members.iter().any(|&m| tables[m].emptied());
        let (why, emptying) = if emptied {
            (
                "linked by foreign keys and emptied first",
                format!("{}, then", group_emptying_words(&tables, g)),
            )
        } else {
            ("in a foreign-key cycle", "then".to_owned())
        };
        notes.push(format!(
            "{}: {why}, so copied as one unit in this order (on each destination one \
             transaction defers its DEFERRABLE constraints (SET CONSTRAINTS ALL DEFERRED: \
             checked before any COMMIT), {emptying} each table's COPY, then one COMMIT, or \
             PREPARE and COMMIT PREPARED under --atomic; not split, one session per \
             destination)",
            names.join(", "),
        ));
    }
    // Truncated with every table that references it, a table takes FREEZE like any other;
    // that is decided on each destination ([`truncates_together`]).
    quiet_after_the_members_before(&mut tables, &groups, &mut dests);
    referenced_from_outside(&mut tables, &groups, &mut dests, &mut src);
    let together = truncated_with_referencing(&tables, &groups, dests.len());
    for (i, t) in tables.iter_mut().enumerate() {
        let referenced = t.referenced();
        for (d, dest) in t.destinations.iter_mut().enumerate() {
            if let DestPlan::Copy {
                freeze,
                quiet_delete,
                ..
            } = dest
            {
                *freeze &= !(referenced && !together[i][d] && *quiet_delete);
            }
        }
    }
    refuse_unprivileged(&mut tables, &together, &mut dests, &|| {
        options.interrupt.reason().is_some()
    });
    // A signal meanwhile ends the planning between two questions, not after them all.
    if let Some(reason) = options.interrupt.reason() {
        return Err(JobError::Interrupted(reason));
    }
    refuse_where_unanswered(&mut tables, &dests, destinations, options, &mut left_out)?;
    // A prepared transaction an earlier run left, which wrote into a table the job writes there:
    // refused (the warning was passed over, and recover committed it beside the job's rows, every
    // row twice: commit48 F4).
    for (d, (conn, label)) in dests.iter_mut().zip(dest_labels(destinations)).enumerate() {
        let Some(conn) = conn.as_mut() else {
            continue;
        };
        let written: Vec<String> = (tables.iter())
            .filter(|t| matches!(t.destinations.get(d), Some(DestPlan::Copy { .. })))
            .map(|t| t.table.regclass_literal())
            .collect();
        if written.is_empty() {
            continue;
        }
        let held = commit::prepared_holding(conn, &written);
        if let Some(message) = commit::prepared_holding_refusal(&label, &held) {
            return Err(JobError::Refused(message));
        }
    }
    drop(dests);

    // The snapshot: exported by a session that stays open, in its transaction, until the job
    // ends (an exported snapshot lives as long as the transaction that exported it). Its tables
    // are locked first (ACCESS SHARE, as pg_dump does, held to the job's end; a LOCK takes no
    // snapshot, so the snapshot comes after every lock): a TRUNCATE or a table-rewriting ALTER
    // TABLE on the source is not MVCC-safe — committed during the job, it would show the table
    // empty to the job's older snapshot, and the table would be copied empty, its count and
    // checksum agreeing. Such DDL now waits for the job.
    // A table the role may read only some columns of cannot be locked so (LOCK needs SELECT on
    // the table): asked before the transaction, whose first query would take the snapshot.
    // Without the job's snapshot, each worker locks its tables before its own.
    let lockable: Vec<(&TableName, &str)> = {
        let names: Vec<&TableName> = tables.iter().map(|t| &t.table).collect();
        let readable = src
            .query(&crate::sql::readable_tables_query(&names))
            .map_err(|e| JobError::Source(describe(&e)))?;
        let readable: HashSet<String> = readable
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        tables
            .iter()
            .filter(|t| {
                readable.contains(&t.table.to_string())
                    && crate::sql::lockable(&t.kind, source_version)
                    && (t.kind != "v" || crate::plan::may_lock_view(&mut src, &t.table))
            })
            .map(|t| (&t.table, t.kind.as_str()))
            .collect()
    };
    let locked: HashSet<String> = lockable.iter().map(|(t, _)| t.to_string()).collect();
    // The others' files, before the snapshot: a TRUNCATE after it is told by its new files.
    let files: HashMap<String, String> = tables
        .iter()
        .filter(|t| matches!(t.kind.as_str(), "r" | "p") && !locked.contains(&t.table.to_string()))
        .filter_map(|t| {
            let files = Some(&mut src)
                .filter(|src| src.is_ready())
                .and_then(|src| crate::identity::table_files(src, &t.table))?;
            Some((t.table.to_string(), files))
        })
        .collect();
    // (Not asked further of a session that stalled: each question would wait its timeout.)
    if let Some(why) = unanswered(&src, options.stall_timeout) {
        return Err(JobError::Source(why));
    }
    // A table the earlier run committed on some destinations and not on others that this
    // resume does not copy (dropped on the source since, or moved to another schema): the
    // destinations differ there, and the job was said done, exit 0 (jobs44 F4) — as one left out
    // by --exclude-table, refused.
    if options.resume {
        let planned: HashSet<String> = tables.iter().map(|t| t.table.to_string()).collect();
        let mut recorded_tables: Vec<&String> = recorded.begun.iter().map(|(t, _)| t).collect();
        recorded_tables.sort();
        recorded_tables.dedup();
        // (One renamed since, whose relations a planned table covers, is copied under that
        // name: recheck50 F1.)
        let now = covers_before.clone().unwrap_or_default();
        let renamed = |t: &str| {
            renamed_from.contains(t)
                || (recorded.covers.get(t)).is_some_and(|was| {
                    (now.iter()).any(|(other, oids)| other != t && !oids.is_empty() && oids == was)
                })
        };
        let split = (recorded_tables.into_iter())
            .filter(|t| !planned.contains(*t) && !renamed(t))
            .find_map(|table| {
                // Where it may hold the earlier run's rows (done, or its COMMIT sent), while
                // not done everywhere (committed everywhere and found different by --verify
                // somewhere: left as it is).
                let holding: Vec<usize> = (keys.iter().enumerate())
                    .filter(|(_, k)| recorded.may_hold_rows(table, k))
                    .map(|(d, _)| d + 1)
                    .collect();
                let done = keys.iter().all(|k| {
                    recorded.done(table, k).is_some() || recorded.mismatched(table, k).is_some()
                });
                (!holding.is_empty() && !done).then_some((table, holding))
            });
        if let Some((table, holding)) = split {
            let on: Vec<String> = holding.iter().map(usize::to_string).collect();
            // Where it is not done: destinations the earlier run had too, or new in this
            // resume (jobs72 F3: a destination added was not named, and the words said the
            // earlier run did not finish a table it had finished on all of its own).
            let lacking: Vec<(usize, bool)> = (keys.iter().enumerate())
                .filter(|(_, k)| !recorded.may_hold_rows(table, k))
                .map(|(d, k)| (d + 1, !recorded.begun.iter().any(|(_, key)| key == k)))
                .collect();
            let new = !lacking.is_empty() && lacking.iter().all(|(_, new)| *new);
            let not_on = match lacking.is_empty() {
                true => " and did not finish it on every destination".to_owned(),
                false => {
                    let each: Vec<String> = (lacking.iter())
                        .map(|(d, new)| {
                            format!("{d}{}", if *new { " (new in this resume)" } else { "" })
                        })
                        .collect();
                    format!(", not on destination {}", each.join(", "))
                }
            };
            let way = match new {
                true => "give the new destinations a job of their own (another --state), ",
                false => "",
            };
            return Err(JobError::Refused(format!(
                "--resume: the earlier run may have committed {table} on destination {}{not_on}, \
                 and this resume cannot copy it (the source has it no more under that name: \
                 dropped, or moved to another schema since): the destinations would differ \
                 there without a word; put it back on the source and resume, {way}or empty it \
                 where it was committed and start a new job",
                on.join(", "),
            )));
        }
    }
    let (coordinator, snapshot) = if options.snapshot {
        src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(|e| JobError::Source(describe(&e)))?;
        if let Some(lock) = crate::sql::lock_for_snapshot(lockable.iter().copied()) {
            src.execute(&lock).map_err(|e| {
                let error = describe(&e);
                // Out of lock slots (53200): the server's limit, not its snapshots.
                if error.sqlstate.as_deref() == Some("53200") {
                    // (What to raise there, `describe` says.)
                    JobError::Source(error.prefixed(&format!(
                        "cannot lock the {} tables before the job's snapshot (copy fewer \
                         tables at once, or take no snapshot: --no-snapshot): ",
                        lockable.len()
                    )))
                } else {
                    JobError::Snapshot(error.prefixed("locking the tables before it: "))
                }
            })?;
        }
        let rows = src
            .query("SELECT pg_catalog.pg_export_snapshot()")
            .map_err(|e| JobError::Snapshot(describe(&e)))?;
        let id = rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .ok_or_else(|| JobError::Snapshot(TableError::new("no snapshot id returned")))?;
        for (table, measure) in &measure_again {
            measure
                .again(&mut src)
                .map_err(|why| JobError::Refused(format!("table {table}: {why}")))?;
        }
        (Some(src), Some(id))
    } else {
        (None, None)
    };
    for t in &mut tables {
        t.locked = locked.contains(&t.table.to_string());
        t.files = files.get(&t.table.to_string()).cloned();
        // Its ranges read it by `ctid`, which needs SELECT on the table as a whole.
        if !t.locked && !t.ranges.is_empty() {
            t.ranges.clear();
            notes.push(format!(
                "{}: copied whole, not split: its ranges read it by ctid, which needs SELECT on \
                 the table, and the source's role may read only its columns",
                t.table
            ));
        }
    }
    // Locked now (under the job's snapshot; else as late as the plan can look): the trees must
    // be what the selection saw.
    let mut asker = match (coordinator, connect(source, "source")) {
        (Some(conn), _) => Some((conn, true)),
        (None, Ok(conn)) => Some((conn, false)),
        (None, Err(_)) => None,
    };
    // Asked in the snapshot's transaction, whose locks last the job, these questions take
    // locks of their own (`pg_partition_tree` locks the partitions it lists, the selection's
    // sizes every table): released at once, or a DDL on a table the job could not lock would
    // wait for the job, and that table's copy for the DDL — a deadlock no server sees.
    let (after, now, columns_after) = match asker.as_mut() {
        Some((conn, ours)) => {
            let ours = *ours && conn.execute("SAVEPOINT copyman_asked").is_ok();
            let after = covers_before
                .as_ref()
                .and_then(|_| source_covers(conn, tables.iter().map(|t| &t.table)));
            let columns = columns_before
                .as_ref()
                .and_then(|_| source_columns(conn, tables.iter().map(|t| &t.table)));
            let now = conn.query(&query).ok();
            if ours {
                conn.execute("ROLLBACK TO SAVEPOINT copyman_asked")
                    .map_err(|e| JobError::Snapshot(describe(&e)))?;
            }
            (after, now, columns)
        }
        None => (None, None, None),
    };
    // (A table the selection did not list then is not compared.)
    if let (Some(before), Some(after)) = (&columns_before, &columns_after)
        && let Some((table, _)) = after.iter().find(|(table, now)| {
            before
                .iter()
                .any(|(then_table, then)| then_table == table && then != now)
        })
    {
        return Err(JobError::Source(TableError::new(format!(
            "{table}'s columns changed on the source while the job planned (a column added, \
             dropped or renamed): its copy would leave a column out; nothing was copied: run \
             the job again"
        ))));
    }
    if let (Some(before), Some(after)) = (&covers_before, &after)
        && let Some((table, _)) = after.iter().find(|a| !before.contains(a))
    {
        return Err(JobError::Source(TableError::new(format!(
            "{table} changed while the job planned (a partition attached, detached or dropped, \
             or the table renamed or dropped): its rows would be copied twice or not at all; \
             nothing was copied: run the job again"
        ))));
    }
    // A table created in the selection while the job planned (after its tables were listed,
    // within its snapshot) is not copied: said, not passed over in silence.
    if let Some(rows) = now
        && let Ok(now) = select::read_selection(&rows)
    {
        notes.extend(
            now.iter()
                .filter(|s| !listed.contains(&s.table.to_string()))
                .map(|s| {
                    format!(
                        "{}: created while the job planned: not copied (run the job again, or \
                         copy it alone)",
                        s.table
                    )
                }),
        );
    }
    // As the job ran: a resume given --truncate of a job that appended deletes the rows the
    // destinations held before it too (jobs48 F4: "with --truncate, as it ran" was said).
    notes.extend(two_moments(&tables, recorded.truncate));
    let coordinator = asker.and_then(|(conn, ours)| ours.then_some(conn));
    Ok(Plan {
        tables,
        groups,
        notes,
        left_out,
        keys,
        source: source_key,
        snapshot,
        recorded,
        selection: selection.key(),
        relatives,
        covers,
        columns: columns_before.unwrap_or_default(),
        confirmed,
        doubted,
        retaken,
        moved,
        parties,
        coordinator,
        block_size,
    })
}

impl Plan {
    /// Whether `table` on destination `d` (0-based) is compared to be recorded done: an earlier
    /// run's `--verify` found it different, or a restart left its copy in doubt.
    pub(super) fn rechecked(&self, table: &str, d: usize) -> bool {
        self.doubted.iter().any(|(t, at)| t == table && *at == d)
            || (self.keys.get(d)).is_some_and(|k| self.recorded.mismatched(table, k).is_some())
    }
}

/// The tables a `--table` pattern without a schema part matches in the source's schemas off its
/// search path (`on_path`), said with the patterns that select them: a pattern without a schema
/// looks on the search path only, as pg_dump's `-t` does. `None` where there is none, or the
/// pattern has a schema part.
fn off_path(src: &mut Connection, pattern: &str, on_path: &[String]) -> Option<String> {
    let query = select::off_path_query(pattern).ok()??;
    let rows = src.query(&query).ok()?;
    let found: Vec<(String, String)> = (rows.into_iter())
        .filter_map(|row| match &row[..] {
            [Some(schema), Some(table)] => Some((schema.clone(), table.clone())),
            _ => None,
        })
        .collect();
    let names: Vec<String> = (found.iter().take(6))
        .map(|(s, t)| format!("{s}.{t}"))
        .collect();
    let mut schemas: Vec<&str> = found.iter().map(|(s, _)| s.as_str()).collect();
    schemas.dedup();
    let (first, _) = found.first()?;
    let path = match on_path {
        [] => "no schema".to_owned(),
        path => path.join(", "),
    };
    let more = match found.len() > names.len() {
        true => ", …",
        false => "",
    };
    let verb = match found.len() {
        1 => "matches",
        _ => "match",
    };
    let way = match schemas.len() {
        1 => format!("--table '{first}.{pattern}'"),
        _ => format!("--table '{first}.{pattern}' for one schema, --table '*.{pattern}' for all"),
    };
    Some(format!(
        "{}{more} {verb} it off the source's search path ({path}), and a pattern without a \
         schema looks on the search path only, as pg_dump's -t: {way}",
        names.join(", ")
    ))
}

/// What a `--table` pattern that matched no table matches of what patterns never select (views,
/// materialized views, foreign tables), as a hint ("`: public.v_a is a view, …`").
fn other_kinds(src: &mut Connection, pattern: &str) -> Option<String> {
    let rows = src.query(&select::other_kinds_query(pattern).ok()?).ok()?;
    let found: Vec<String> = (rows.iter().take(6))
        .filter_map(|row| match &row[..] {
            [Some(name), Some(kind)] => Some(format!(
                "{name} is {}",
                match kind.as_str() {
                    "v" => "a view",
                    "m" => "a materialized view",
                    _ => "a foreign table",
                }
            )),
            _ => None,
        })
        .collect();
    let more = if rows.len() > found.len() {
        ", …"
    } else {
        ""
    };
    (!found.is_empty()).then(|| {
        format!(
            ": {}{more}, which patterns and schemas never select: name {} as a TABLE argument \
             to copy its rows",
            found.join(", "),
            if found.len() == 1 { "it" } else { "each" }
        )
    })
}

/// The schema (`schema`) or table the source has whose name is `pattern` taken literally,
/// but for case, or with its dot between schema and table (a pattern's letters fold to lower
/// case, and a dot parts schema from table, as pg_dump reads them): as a pattern that selects
/// it spells it (quoted), and what it is when patterns never select it (`a view`, `a system
/// catalog`, …). `None` for a pattern with wildcards, or where none is.
fn literally_named(
    src: &mut Connection,
    schema: bool,
    pattern: &str,
) -> Option<(String, Option<&'static str>)> {
    if pattern.contains(['*', '?', '"']) {
        return None;
    }
    let literal = crate::sql::literal(pattern);
    // Folded alike on both sides, in the database's collation (a `name`'s own, "C", folds only
    // ASCII: `ÉTÉ` never met its own spelling and met `été`: enc45 F4); the spelling given
    // first.
    let query = if schema {
        format!(
            "SELECT pg_catalog.quote_ident(nspname), 'n' FROM pg_catalog.pg_namespace \
             WHERE pg_catalog.lower(nspname COLLATE \"default\") = pg_catalog.lower({literal}) \
             ORDER BY nspname = {literal} DESC LIMIT 1"
        )
    } else {
        // A table first, then what patterns never select (a view, a system catalog, …).
        format!(
            "SELECT pg_catalog.quote_ident(n.nspname) || '.' || \
               pg_catalog.quote_ident(c.relname), \
               CASE WHEN n.nspname = 'information_schema' OR n.nspname ~ '^pg_' THEN 'c' \
                 ELSE c.relkind::text END \
             FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND \
               (pg_catalog.lower(c.relname COLLATE \"default\") = pg_catalog.lower({literal}) \
                OR pg_catalog.lower((n.nspname || '.' || c.relname) COLLATE \"default\") = \
                   pg_catalog.lower({literal})) \
             ORDER BY c.relname = {literal} OR n.nspname || '.' || c.relname = {literal} DESC, \
               c.relkind IN ('r', 'p') DESC, n.nspname = 'public' DESC LIMIT 1"
        )
    };
    let rows = src.query(&query).ok()?;
    let row = rows.first()?;
    let name = row.first()?.clone()?;
    let kind = match row.get(1)?.as_deref()? {
        "v" => Some("a view"),
        "m" => Some("a materialized view"),
        "f" => Some("a foreign table"),
        "S" => Some("a sequence (carried with the table whose column takes its values)"),
        "c" => Some("a system catalog"),
        _ => None,
    };
    Some((name, kind))
}

/// A resume that copies tables to a destination beside others an earlier run committed there:
/// that destination holds them as two snapshots of the source saw it (a note, naming the
/// destinations; one table split so has its own, from its plan). Rows written in between to two
/// tables (a transfer and its ledger line) show in one only: a state the source never had, which
/// one snapshot per job is there to prevent. A destination whose tables all come from one run
/// (down in the earlier run, completed now) holds one moment: not said. The way to one moment
/// depends on the job: a `--truncate` job runs again with another state file; an append job's
/// destinations hold rows of their own, which `--truncate` would delete (said so, not advised).
fn two_moments(tables: &[TablePlan], truncate: bool) -> Option<String> {
    let count = tables
        .iter()
        .map(|t| t.destinations.len())
        .max()
        .unwrap_or(0);
    let mut earlier: Vec<String> = Vec::new();
    let mut now: Vec<String> = Vec::new();
    let mut at = Vec::new();
    for d in 0..count {
        let with = |want: fn(&DestPlan) -> bool| -> Vec<String> {
            (tables.iter())
                .filter(|t| t.destinations.get(d).is_some_and(want))
                .map(|t| t.table.to_string())
                .collect()
        };
        let (done, copied) = (
            with(|p| matches!(p, DestPlan::Done(_))),
            with(|p| matches!(p, DestPlan::Copy { .. })),
        );
        if done.is_empty() || copied.is_empty() {
            continue;
        }
        at.push(format!("destination {}", d + 1));
        for name in done {
            if !earlier.contains(&name) {
                earlier.push(name);
            }
        }
        for name in copied {
            if !now.contains(&name) {
                now.push(name);
            }
        }
    }
    if at.is_empty() {
        return None;
    }
    let way = if truncate {
        "for one moment across every table, run the whole job again (with --truncate, as it ran) \
         with another --state"
    } else {
        "one moment across every table would take emptying them: in this append job that deletes \
         the rows the destinations held before it too (--truncate), so it is yours to choose"
    };
    // A table copied now to some destinations and committed earlier on others is counted once,
    // among those copied now (jobs46 F4.1: 18 + 196 tables of a job of 213).
    let both = now.iter().filter(|t| earlier.contains(t)).count();
    let committed_before = earlier.clone();
    earlier.retain(|t| !now.contains(t));
    // (None but those: the names are theirs.)
    let named = if earlier.is_empty() {
        &committed_before
    } else {
        &earlier
    };
    let elsewhere = match both {
        0 => String::new(),
        1 if now.len() == 1 => " (committed earlier on another destination)".to_owned(),
        n => format!(" ({n} of them committed earlier on another destination)"),
    };
    Some(format!(
        "this resume copies {}{elsewhere} from its own snapshot of the source, and {} an \
         earlier run committed came from that run's ({}): {} {} tables of the source as it \
         was at two moments, so rows written in between to two tables show in one only; {way}",
        if now.len() == 1 {
            now[0].clone()
        } else {
            format!("{} tables", now.len())
        },
        match earlier.len() {
            0 => "what".to_owned(),
            1 => "the table".to_owned(),
            n => format!("the {n} tables"),
        },
        super::running::first_names(&named.iter().map(String::as_str).collect::<Vec<_>>()),
        at.join(" and "),
        if at.len() == 1 { "holds" } else { "each hold" },
    ))
}

/// `tables`' names as a `FROM` item, one row each: `t` its name as copyman shows it, `r` as a
/// `regclass` input reads it ([`TableName::regclass_literal`]); `None` for none.
fn names_rows<'a>(tables: impl Iterator<Item = &'a TableName>) -> Option<String> {
    let list: Vec<String> = tables
        .map(|t| {
            format!(
                "({}, {})",
                crate::sql::literal(&t.to_string()),
                t.regclass_literal()
            )
        })
        .collect();
    (!list.is_empty()).then(|| format!("(VALUES {}) AS k(t, r)", list.join(", ")))
}

/// Each of `tables` with its columns on the source, as one text (number and name of each), as
/// the catalog stands in the session's snapshot (no lock taken). `None` if the question fails.
pub(super) fn source_columns<'a>(
    conn: &mut Connection,
    tables: impl Iterator<Item = &'a TableName>,
) -> Option<Vec<(String, String)>> {
    let Some(list) = names_rows(tables) else {
        return Some(Vec::new());
    };
    let sql = format!(
        "SELECT t, coalesce((SELECT pg_catalog.string_agg(a.attnum::pg_catalog.text || ' ' || \
           a.attname::pg_catalog.text, ',' ORDER BY a.attnum) FROM pg_catalog.pg_attribute a \
           WHERE a.attrelid = pg_catalog.to_regclass(r) AND a.attnum > 0 \
             AND NOT a.attisdropped), '') \
         FROM {list}"
    );
    let rows = conn.query(&sql).ok()?;
    Some(
        rows.into_iter()
            .filter_map(|r| {
                let mut r = r.into_iter();
                Some((r.next()??, r.next()??))
            })
            .collect(),
    )
}

/// The partitioned tables above `table` on `conn`'s server, nearest first, then the partitions
/// below it at every level, named as [`TableName`] spells them; none where it is in no
/// partition tree, or that cannot be asked.
fn partition_relatives(conn: &mut Connection, table: &TableName) -> Vec<String> {
    if conn
        .session()
        .server_version_num()
        .is_none_or(|v| v < 120_000)
    {
        return Vec::new();
    }
    let regclass = format!("pg_catalog.to_regclass({})", table.regclass_literal());
    let sql = format!(
        "SELECT {} FROM (\
           SELECT relid, depth FROM pg_catalog.pg_partition_ancestors({regclass}) \
             WITH ORDINALITY a(relid, depth) WHERE depth > 1 \
           UNION ALL \
           SELECT relid, 1000 + level FROM pg_catalog.pg_partition_tree({regclass}) \
             WHERE level > 0) r \
         JOIN pg_catalog.pg_class c ON c.oid = r.relid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         ORDER BY r.depth",
        crate::sql::quoted_relation("n", "c"),
    );
    (conn.query(&sql).unwrap_or_default().into_iter())
        .filter_map(|row| row.into_iter().next().flatten())
        .collect()
}

/// Whether a copy of `by` on `conn`'s server reads every relation a copy of `table` does: `by`
/// is `table`, or a partitioned table above it. A one-table run that pours a partition into its
/// parent with `--target-table` writes rows a job of that parent committed there (recheck67
/// F5: every row twice, exit 0). `false` where it cannot be asked.
pub fn covered_by(conn: &mut Connection, table: &TableName, by: &TableName) -> bool {
    let Some(covers) = source_covers(conn, [by, table].into_iter()) else {
        return false;
    };
    let oids = |name: &TableName| {
        let name = name.to_string();
        (covers.iter())
            .find(|(t, _)| *t == name)
            .map(|(_, o)| o.clone())
    };
    match (oids(by), oids(table)) {
        (Some(theirs), Some(ours)) => !ours.is_empty() && ours.iter().all(|o| theirs.contains(o)),
        _ => false,
    }
}

/// Each of `tables` with the source's oids of the relations its copy covers, sorted (itself, and
/// on PostgreSQL 12 and later every partition below it; none for a table gone). `None` if the
/// question fails.
pub(super) fn source_covers<'a>(
    conn: &mut Connection,
    tables: impl Iterator<Item = &'a TableName>,
) -> Option<Vec<(String, Vec<u64>)>> {
    let Some(list) = names_rows(tables) else {
        return Some(Vec::new());
    };
    let tree = if conn
        .session()
        .server_version_num()
        .is_some_and(|v| v >= 120_000)
    {
        // (A table neither partitioned nor a partition has no tree: itself.)
        "SELECT pg_catalog.to_regclass(r) UNION \
         SELECT p.relid FROM pg_catalog.pg_partition_tree(pg_catalog.to_regclass(r)) p"
    } else {
        "SELECT pg_catalog.to_regclass(r)"
    };
    let sql = format!(
        "SELECT t, (SELECT pg_catalog.string_agg(o::pg_catalog.oid::text, ',') FROM ({tree}) \
         AS x(o)) FROM {list}"
    );
    let rows = conn.query(&sql).ok()?;
    Some(
        rows.into_iter()
            .filter_map(|r| {
                let mut r = r.into_iter();
                let table = r.next()??;
                let mut oids: Vec<u64> = r
                    .next()
                    .flatten()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|o| o.parse().ok())
                    .collect();
                oids.sort_unstable();
                Some((table, oids))
            })
            .collect(),
    )
}

/// The tables the earlier run was to copy by themselves and has not committed everywhere,
/// that this selection no longer copies by themselves: their source relations (the oids its
/// `covers` lines recorded) are now covered by a selected table (`covers`: attached since as its
/// partition), which the earlier run committed on every destination (`keys`), so its copy,
/// done, would not bring their rows. Each is listed as a selected table of its own (named, as
/// the source's catalog lists it now), to be copied by itself as that run planned. One whose
/// covering table is committed on some destinations only is refused: copied by itself it would
/// be there twice where that table is copied again, and with that table only, missing where
/// it is done.
fn reattached(
    src: &mut Connection,
    selected: &[select::Selected],
    covers: &[(String, Vec<u64>)],
    recorded: &Recorded,
    keys: &[String],
) -> Result<Vec<select::Selected>, JobError> {
    let copied: HashSet<String> = selected.iter().map(|s| s.table.to_string()).collect();
    let mut attached = Vec::new();
    for (table, oids) in &recorded.covers {
        if copied.contains(table) || keys.iter().all(|k| recorded.done(table, k).is_some()) {
            continue;
        }
        let Some((within, theirs)) = covers
            .iter()
            .find(|(other, theirs)| other != table && oids.iter().any(|o| theirs.contains(o)))
        else {
            continue;
        };
        // The same relations under a name given since (renamed): its copy is that table's, no
        // partition attached to another (jobs49 F1: the old name, looked up, failed every
        // later resume).
        let same = |a: &[u64], b: &[u64]| a.iter().all(|o| b.contains(o)) && a.len() == b.len();
        if same(oids, theirs) {
            continue;
        }
        let done = keys
            .iter()
            .filter(|k| recorded.done(within, k).is_some())
            .count();
        if done == 0 {
            continue;
        }
        // A copy of that table committed after the attach brought its rows: a later resume's
        // (jobs49 F3: it was taken for a partition attached since, copied by itself again —
        // refused, every resume after, exit 2).
        let brought = |k: &&String| {
            (recorded.done_covers.get(&(within.clone(), (*k).clone())))
                .is_some_and(|c| oids.iter().all(|o| c.contains(o)))
        };
        match keys.iter().filter(brought).count() {
            0 => {}
            n if n == keys.len() => continue,
            _ => {
                return Err(JobError::Refused(format!(
                    "--resume: table {table}, which the earlier run was to copy by itself, is \
                     now a partition of {within}, whose copy on some destinations brought its \
                     rows (committed after it was attached) and on others not (committed \
                     before): copied by itself its rows would be there twice where that copy \
                     brought them, left out they would be missing where it did not; check what \
                     each destination holds, then run the job again without --resume with \
                     --truncate"
                )));
            }
        }
        if done < keys.len() {
            return Err(JobError::Refused(format!(
                "--resume: table {table}, which the earlier run was to copy by itself, is now a \
                 partition of {within}, which it committed to some destinations and not to \
                 others (attached since): copied with {within} its rows would be missing where \
                 that is done, copied by itself they would be there twice where it is not; \
                 detach it again for the resume, or run the job again without --resume with \
                 --truncate"
            )));
        }
        attached.push(TableName::parse(table).map_err(|e| JobError::Selection(e.to_string()))?);
    }
    if attached.is_empty() {
        return Ok(Vec::new());
    }
    let named = Selection {
        tables: attached,
        schemas: Vec::new(),
        include: Vec::new(),
        exclude: Vec::new(),
    };
    let query = select::selection_query(&named).map_err(|e| JobError::Selection(e.to_string()))?;
    let rows = src
        .query(&query)
        .map_err(|e| JobError::Source(describe(&e)))?;
    let listed = select::read_selection(&rows).map_err(JobError::Selection)?;
    Ok(listed
        .into_iter()
        .map(|s| select::Selected { within: None, ..s })
        .collect())
}

/// The tables of this selection (`covers`: each with the source's oids of what its copy covers)
/// that the earlier run committed under another name, which no table of this selection has but
/// one made under it since (`replaced`): the same relations on the source, exactly (renamed
/// since, on the source) — on every destination (`keys`), or on some, where on the others it
/// never began or `nothing` (asked there) says it committed nothing. `(table, its recorded
/// name)`.
fn renamed_done(
    covers: &[(String, Vec<u64>)],
    recorded: &Recorded,
    keys: &[String],
    replaced: &[String],
    nothing: &mut dyn FnMut(usize, &str) -> bool,
) -> Vec<(String, String)> {
    let selected: HashSet<&str> = (covers.iter())
        .map(|(t, _)| t.as_str())
        .filter(|t| !replaced.iter().any(|r| r == t))
        .collect();
    covers
        .iter()
        .filter(|(table, _)| !recorded.covers.contains_key(table) || replaced.contains(table))
        .filter_map(|(table, oids)| {
            let (was, _) = recorded.covers.iter().find(|(was, theirs)| {
                !selected.contains(was.as_str())
                    && *was != table
                    && !oids.is_empty()
                    && *theirs == oids
            })?;
            // Done on some, and where not, never begun or known to have committed nothing.
            let done = |k: &String| recorded.done(was, k).is_some();
            let whole = keys
                .iter()
                .enumerate()
                .all(|(i, k)| done(k) || !recorded.begun(was, k) || nothing(i, was));
            (whole && keys.iter().any(done)).then(|| (table.clone(), was.clone()))
        })
        .filter(|_| !keys.is_empty())
        .collect()
}

/// The renames a resume found (`(table, was)`: the table the earlier run copied as `was`), as
/// the moves of records that apply them, each `(table, Some(was), from)` (the records under
/// `from` are `table`'s): in an order that moves a name's records away before another table's
/// take it (a shift of names, `t_1` → `t_2` and `t` → `t_1`: recheck51 F5, refused). A cycle
/// (two names swapped: recheck51b F5, refused with advice to do what was done) is broken by
/// setting one name's records aside under a name no table has (`(aside, None, was)`), then
/// moving them on. Their records move so: another table made under an old name starts anew
/// (recheck50b F5, refused every resume).
fn in_shifting_order(renamed: Vec<(String, String)>) -> Vec<(String, Option<String>, String)> {
    let mut pending: Vec<(String, Option<String>, String)> = (renamed.into_iter())
        .map(|(table, was)| (table, Some(was.clone()), was))
        .collect();
    let mut moves = Vec::new();
    loop {
        let free = |(table, _, _): &(String, Option<String>, String)| {
            !pending.iter().any(|(_, _, from)| from == table)
        };
        if let Some(i) = pending.iter().position(free) {
            moves.push(pending.remove(i));
            continue;
        }
        let Some((_, _, from)) = pending.first_mut() else {
            return moves;
        };
        // Outside the quotes of a qualified name: no table's.
        let aside = format!("{from} (set aside)");
        moves.push((aside.clone(), None, std::mem::replace(from, aside)));
    }
}

/// The tables of this selection (`covers`) that are other relations on the source than those
/// the earlier run copied under their names (`recorded`'s covers): no oid in common.
fn replaced_since(covers: &[(String, Vec<u64>)], recorded: &Recorded) -> Vec<String> {
    (covers.iter())
        .filter(|(table, now)| {
            recorded.covers.get(table).is_some_and(|then| {
                !now.is_empty() && !then.is_empty() && !then.iter().any(|o| now.contains(o))
            })
        })
        .map(|(table, _)| table.clone())
        .collect()
}

/// Why a resume refuses a table made again under a name the earlier run copied, if it must:
/// `fresh`, each with the destinations where that run's copy of the earlier table may have left
/// rows, one of which `holding` says holds rows in its table of that name (or cannot tell): the
/// new table's rows would join them.
fn replaced_where_held(
    fresh: &[(String, Vec<usize>)],
    holding: &mut dyn FnMut(usize, &str) -> bool,
) -> Option<String> {
    for (table, held) in fresh {
        let on: Vec<String> = (held.iter())
            .filter(|&&d| holding(d, table))
            .map(|d| (d + 1).to_string())
            .collect();
        if !on.is_empty() {
            return Some(format!(
                "--resume: table {table} is another table on the source than the earlier run \
                 copied under that name (dropped and made again, or renamed away and another \
                 made, since), and its table on {} rows (that run's, or others since): the \
                 new table's rows would join them; do on the destinations what was done on the \
                 source (rename or empty that table there) and resume, or run the job again \
                 without --resume with --truncate",
                match on.len() {
                    1 => format!("destination {} holds", on[0]),
                    _ => format!("destinations {} hold", on.join(", ")),
                }
            ));
        }
    }
    None
}

/// Why a resume refuses, if it must: a table of this run that the earlier run never began on a
/// destination, whose rows it copied there under another name all the same — renamed since, or
/// a partition it copied with its partitioned table and detached since (the same relation on
/// the source: an oid the earlier run's record of that other table covers); or one it did not
/// commit there that now covers a table it committed there (attached since as a partition of
/// it, or moved to it from another partitioned table): copied whole, that table's rows would be
/// there twice. (A `--truncate` run's resume empties each table first: nothing twice.) An
/// attempt under the other name that `rolled_back` says committed nothing there (asked of the
/// destination) copied nothing there.
fn copied_under_another_name(
    covers: &[(String, Vec<u64>)],
    recorded: &Recorded,
    keys: &[String],
    rolled_back: &mut dyn FnMut(usize, &str) -> bool,
) -> Option<String> {
    for (table, oids) in covers {
        for (other, theirs) in &recorded.covers {
            if other == table || !oids.iter().any(|o| theirs.contains(o)) {
                continue;
            }
            let taken_in = |k: &String| {
                !recorded.truncate
                    && recorded.done(other, k).is_some()
                    && recorded.done(table, k).is_none()
            };
            // Begun there under the other name, and not known to have committed nothing
            // (jobs49 F4: a copy rolled back, renamed since, was refused as "copied").
            let mut under_another_name = |(i, k): &(usize, &String)| {
                recorded.begun(other, k) && !recorded.begun(table, k) && !rolled_back(*i, other)
            };
            let way = "check what that destination holds, then copy it in a job of its own \
                       (its --state in another directory), or run this job again without --resume with --truncate";
            let on: Vec<String> = (keys.iter().enumerate())
                .filter(&mut under_another_name)
                .map(|(d, _)| (d + 1).to_string())
                .collect();
            if !on.is_empty() {
                return Some(format!(
                    "--resume: table {table} was copied to destination {} by the earlier run as \
                     (a part of) {other} (the same relation on the source: renamed, detached or \
                     attached since): copied again, its rows would be there twice; {way}",
                    on.join(", ")
                ));
            }
            if let Some(d) = keys.iter().position(taken_in) {
                return Some(format!(
                    "--resume: table {other}, which the earlier run committed to destination {}, \
                     is now (a part of) {table}, which it did not (attached or moved since): \
                     copied whole, {other}'s rows would be there twice; {way}",
                    d + 1
                ));
            }
        }
    }
    None
}

/// A foreign key as `(referencing, referenced)` table names.
type Edge = (String, String);

/// Every foreign key on `conn`'s database as `(referencing, referenced)` table names, between
/// the tables themselves and between the roots of their partition trees (a partition selected by
/// itself, or its partitioned table); a self-reference left out. Nothing when the catalog cannot
/// be read (the tables then keep the size order). Second, those of them that are not
/// `DEFERRABLE`: checked at each row, even in a transaction that defers its constraints.
fn foreign_keys(conn: &mut Connection) -> (Vec<Edge>, Vec<Edge>) {
    const SQL: &str = "SELECT DISTINCT cn.nspname::text, c.relname::text, pn.nspname::text, \
          p.relname::text, (NOT k.condeferrable)::text \
        FROM pg_catalog.pg_constraint k \
        CROSS JOIN LATERAL (VALUES (k.conrelid, k.confrelid), \
            (coalesce(pg_catalog.pg_partition_root(k.conrelid), k.conrelid), \
             coalesce(pg_catalog.pg_partition_root(k.confrelid), k.confrelid))) e(child, parent) \
        JOIN pg_catalog.pg_class c ON c.oid = e.child \
        JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace \
        JOIN pg_catalog.pg_class p ON p.oid = e.parent \
        JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace \
        WHERE k.contype = 'f' AND e.child <> e.parent";
    let Ok(rows) = conn.query(SQL) else {
        return (Vec::new(), Vec::new());
    };
    let (mut all, mut binding) = (Vec::new(), Vec::new());
    for row in rows {
        let mut row = row.into_iter();
        let (Some(child), Some(parent)) = (qualified(&mut row), qualified(&mut row)) else {
            continue;
        };
        let edge = (child, parent);
        if row.next().flatten().as_deref() == Some("true") {
            binding.push(edge.clone());
        }
        if !all.contains(&edge) {
            all.push(edge);
        }
    }
    (all, binding)
}

/// `error` (42P01) with where tables of that name are on the source, if in other schemas
/// ([`crate::plan::off_the_search_path`]).
fn elsewhere(src: &mut Connection, mut error: TableError) -> TableError {
    error.message += &crate::plan::off_the_search_path(src, &error.message);
    error
}

/// Refuses, on each destination, a table emptied first with a `DELETE` (it is referenced:
/// [`TablePlan::referenced`]) whose rows a table outside the job references there: its `DELETE`
/// would fail (23503) when its turn came, after whatever the job committed before it; and one
/// emptied with a `TRUNCATE` (a `DELETE` would do more than empty it) that a table outside the
/// job references there by a foreign key, rows or not: the `TRUNCATE` is refused (0A000). So
/// the job (and its dry run) ends before anything is copied, as a refused table does. Not where
/// the session's `session_replication_role` is `replica` (the `DELETE` is refused there
/// anyway, saying why), nor where a question cannot be answered. A member of one of `groups`
/// is asked about rows only (its refusal says the statement that empties the whole group with
/// the table outside): where a table outside the job references one,
/// the group is emptied one by one with `DELETE`s, not a `TRUNCATE`; its failure there would
/// commit nothing of the group, but the job's other tables would have committed before it.
/// A member emptied one by one there ([`truncates_together`] false) is emptied as a table alone
/// is, and refused so too. A referencing table the source (`src`) does not have is the
/// destination's own: its rows are said to be nowhere else, and no way that empties it advised.
fn referenced_from_outside(
    tables: &mut [TablePlan],
    groups: &[crate::plan::Group],
    dests: &mut [Option<Connection>],
    src: &mut Connection,
) {
    let job: HashSet<String> = tables.iter().map(|t| t.table.to_string()).collect();
    // Whether each member of a group is emptied with the others' one TRUNCATE there.
    let together = truncated_with_referencing(tables, groups, dests.len());
    // Asked once a name, whatever number of destinations have it.
    let mut known: HashMap<String, bool> = HashMap::new();
    let mut on_source = |name: &str| {
        *known
            .entry(name.to_owned())
            .or_insert_with(|| crate::plan::has_relation(src, name))
    };
    // The refusal where `r`, a table of the destination's own, references the table.
    let own = |r: &str, constraint: &str, why: &str| {
        format!(
            "{r} there, a table of that destination's own (the source has none), references it \
             (foreign key {constraint}): {why}, and emptying them together would take rows of \
             {r} that no server holds a copy of; copy without --truncate, or drop or change that \
             foreign key there (or empty {r} there yourself, if its rows may go)"
        )
    };
    // What empties a table, or the whole group it is a member of, with `r` there.
    let emptying: Vec<String> = (0..tables.len())
        .map(|i| match groups.iter().find(|g| g.members.contains(&i)) {
            Some(g) => g
                .members
                .iter()
                .map(|&m| own_rows(&tables[m].table, &tables[m].kind))
                .collect::<Vec<_>>()
                .join(", "),
            None => own_rows(&tables[i].table, &tables[i].kind),
        })
        .collect();
    for (d, slot) in dests.iter_mut().enumerate() {
        let Some(conn) = answering(slot) else {
            continue;
        };
        let replica = conn
            .query("SELECT pg_catalog.current_setting('session_replication_role')")
            .ok()
            .and_then(|rows| rows.first().and_then(|r| r.first().cloned().flatten()));
        let origin = replica.as_deref() == Some("origin");
        // For each member a DELETE would not empty quietly: the members emptied before it,
        // whose keys act on nothing (not said as what stops it).
        let before_of: HashMap<usize, HashSet<String>> = (groups.iter())
            .flat_map(|g| (g.members.iter().enumerate()).map(move |(at, &m)| (g, at, m)))
            .filter(|&(_, _, m)| {
                !together[m][d]
                    && matches!(
                        tables[m].destinations[d],
                        DestPlan::Copy {
                            truncate: true,
                            quiet_delete: false,
                            ..
                        }
                    )
            })
            .map(|(g, at, m)| (m, emptied_before(tables, g, d, at)))
            .collect();
        let none = HashSet::new();
        for (i, t) in tables.iter_mut().enumerate() {
            let DestPlan::Copy {
                truncate: true,
                quiet_delete,
                ..
            } = t.destinations[d]
            else {
                continue;
            };
            if !t.referenced() {
                continue;
            }
            // Not asked further of a session that stopped answering (refused below).
            if !conn.is_ready() {
                break;
            }
            let mut outside = t.referenced_by.iter().filter(|r| !job.contains(*r));
            // Emptied with a TRUNCATE (a DELETE of its rows would do more: a partitioned
            // table, foreign keys that act on delete, DELETE triggers or rules), which a
            // foreign key of a table the job does not empty with it makes certain to fail.
            let alone = !together[i][d];
            if !quiet_delete && alone {
                let found = outside.find_map(|r| Some((r, foreign_key(conn, r, &t.table)?)));
                let more = found
                    .as_ref()
                    .map(|_| {
                        delete_effects_words(conn, &t.table, before_of.get(&i).unwrap_or(&none))
                    })
                    .unwrap_or_default();
                if let Some((r, constraint)) = &found
                    && !on_source(r)
                {
                    let why = format!(
                        "its TRUNCATE alone is refused, and a DELETE of its rows would do more \
                         than empty it ({more})"
                    );
                    // Empty, it loses nothing, and emptying it changes nothing (emptying63 F1:
                    // said to lose rows, with "empty it yourself" as the way).
                    let empty = conn
                        .query(&format!("SELECT 1 FROM {r} LIMIT 1"))
                        .is_ok_and(|rows| rows.is_empty());
                    let said = match empty {
                        true => format!(
                            "{r} there, a table of that destination's own (the source has \
                             none), references it (foreign key {constraint}): {why}; {r} holds \
                             no rows, but copyman empties no table it does not copy: copy \
                             without --truncate, make a DELETE of it touch nothing else there, \
                             or drop or change that foreign key there"
                        ),
                        false => own(r, constraint, &why),
                    };
                    t.destinations[d] = DestPlan::Refused(TableError {
                        sqlstate: Some("0A000".to_owned()),
                        ..TableError::lasting(said)
                    });
                } else if let Some((r, constraint)) = found {
                    let (add, truncate) = with_referencing(conn, &t.table, r, &job);
                    t.destinations[d] = DestPlan::Refused(TableError {
                        sqlstate: Some("0A000".to_owned()),
                        ..TableError::lasting(format!(
                            "{r} there, which the job does not copy, references it (foreign \
                             key {constraint}): its TRUNCATE alone is refused, and a DELETE of \
                             its rows would do more than empty it ({more}), so emptying it \
                             first (--truncate) would fail; add {add} to the job (then emptied \
                             together with it), or empty them together there yourself \
                             (TRUNCATE {}{truncate}) and copy without --truncate",
                            own_rows(&t.table, &t.kind)
                        ))
                    });
                }
                continue;
            }
            if !origin {
                // Emptied alone with a DELETE, which the foreign keys do not check under
                // `replica`: refused by the run's own check (55000), so here, as one table's is.
                if alone && replica.as_deref() == Some("replica") {
                    // Selecting the referencing tables too is a way only where the source has
                    // them (a destination's own table cannot be copied).
                    let select = if outside.all(|r| on_source(r)) {
                        "select the tables that reference it too (they are then emptied \
                         together), or "
                    } else {
                        ""
                    };
                    t.destinations[d] = DestPlan::Refused(TableError {
                        sqlstate: Some("55000".to_owned()),
                        ..TableError::lasting(format!(
                            "it is referenced by a foreign key, so copyman would empty it with a \
                             DELETE that the foreign keys check, and its session has \
                             session_replication_role = replica, under which they are not \
                             checked: rows referencing it would be left referencing nothing; \
                             {select}set session_replication_role = origin for that destination \
                             (its CONN's options, or its role's settings)"
                        ))
                    });
                }
                continue;
            }
            let found = outside
                .filter_map(|r| Some((r, referencing_rows(conn, r, &t.table, false)?)))
                .next();
            if let Some((r, constraint)) = &found
                && !on_source(r)
            {
                t.destinations[d] = DestPlan::Refused(TableError {
                    sqlstate: Some("23503".to_owned()),
                    ..TableError::lasting(format!(
                        "rows of {}",
                        own(
                            r,
                            constraint,
                            "emptying it first (--truncate) would fail, and copyman empties no \
                             other table"
                        )
                    ))
                });
            } else if let Some((r, constraint)) = found {
                let (add, truncate) = with_referencing(conn, &t.table, r, &job);
                t.destinations[d] = DestPlan::Refused(TableError {
                    sqlstate: Some("23503".to_owned()),
                    ..TableError::lasting(format!(
                        "rows of {r} there, which the job does not copy, reference it (foreign \
                         key {constraint}): emptying it first (--truncate) would fail, and \
                         copyman empties no other table; add {add} to the job (then emptied \
                         together with it), or empty them together there yourself (TRUNCATE \
                         {}{truncate}) and copy {add} there again yourself",
                        emptying[i]
                    ))
                });
            }
        }
        for g in groups {
            refuse_unemptiable_members(tables, g, &together, d, conn);
        }
    }
}

/// Refuses, on destination `d`, a member of `group` emptied there one by one (a table outside
/// the group references a member: [`truncates_together`] false) that the group's own foreign
/// keys keep from being emptied: a member emptied with a `TRUNCATE` (a `DELETE` would do more)
/// that another member references, rows or not (0A000); a member emptied with a `DELETE` whose
/// rows a member emptied after it (children first; on a cycle, one of them comes after) or not
/// emptied there references by a key that is not `DEFERRABLE` (23503: the group's transaction
/// defers the others, [`crate::sql::GROUP_DEFERS`], checked when the referencing rows are
/// gone). Said while planning, so that the dry run says it and the run tries nothing.
fn refuse_unemptiable_members(
    tables: &mut [TablePlan],
    group: &crate::plan::Group,
    together: &[Vec<bool>],
    d: usize,
    conn: &mut Connection,
) {
    let emptied =
        |t: &TablePlan| matches!(t.destinations[d], DestPlan::Copy { truncate: true, .. });
    for (at, &i) in group.members.iter().enumerate() {
        let DestPlan::Copy {
            truncate: true,
            quiet_delete,
            ..
        } = tables[i].destinations[d]
        else {
            continue;
        };
        if together[i][d] || !tables[i].referenced() || !conn.is_ready() {
            continue;
        }
        let found = group.members.iter().enumerate().find_map(|(before, &k)| {
            let by = tables[k].table.to_string();
            if k == i || !tables[i].referenced_by.contains(&by) {
                return None;
            }
            // Refused there itself, it keeps its rows (emptying63 F4: the advice to make its
            // key DEFERRABLE changed nothing).
            let refused = matches!(tables[k].destinations[d], DestPlan::Refused(_));
            if !quiet_delete {
                return Some((
                    by.clone(),
                    foreign_key(conn, &by, &tables[i].table)?,
                    refused,
                ));
            }
            // (Not one truncated before the others: empty by then.)
            let later = !together[k][d] && (before < at || !emptied(&tables[k]));
            let key = later.then(|| referencing_rows(conn, &by, &tables[i].table, true))??;
            Some((by, key, refused))
        });
        let Some((by, constraint, by_refused)) = found else {
            continue;
        };
        if by_refused {
            tables[i].destinations[d] = DestPlan::Refused(TableError {
                sqlstate: Some("23503".to_owned()),
                ..TableError::lasting(format!(
                    "{by} there, of its group, references it (foreign key {constraint}) and is \
                     refused there itself (said of it), so keeps its rows: this table cannot be \
                     emptied under them; mend what refuses {by} first"
                ))
            });
            continue;
        }
        // Why not one TRUNCATE there (as the group's note says it), and what would allow one.
        let (why, out) = if group.truncate_together[d] {
            (
                "the group is emptied there one by one, not with one TRUNCATE, because a member \
                 that references another emptied there is not emptied there itself"
                    .to_owned(),
                "copy without --truncate, or empty the group there yourself and copy it again"
                    .to_owned(),
            )
        } else {
            let members: Vec<&TableName> =
                group.members.iter().map(|&m| &tables[m].table).collect();
            match outside_reference(conn, &members) {
                Some((outside, key)) => (
                    format!(
                        "the group is emptied there one by one, not with one TRUNCATE, because \
                         {outside}"
                    ),
                    format!("copy without --truncate, or drop or change there {key}"),
                ),
                None => (
                    "the group is emptied there one by one, not with one TRUNCATE, because a \
                     table outside it references a member"
                        .to_owned(),
                    "copy without --truncate, or drop or change there the foreign key that \
                     references the group from outside"
                        .to_owned(),
                ),
            }
        };
        tables[i].destinations[d] = DestPlan::Refused(if quiet_delete {
            TableError {
                sqlstate: Some("23503".to_owned()),
                ..TableError::lasting(format!(
                    "rows of {by} there, of its group and emptied after it, reference it \
                     (foreign key {constraint}): {why}, and its DELETE would fail; make \
                     {constraint} DEFERRABLE there (then deferred in the group's transaction), \
                     or {out}"
                ))
            }
        } else {
            let before = emptied_before(tables, group, d, at);
            let more = delete_effects_words(conn, &tables[i].table, &before);
            TableError {
                sqlstate: Some("0A000".to_owned()),
                ..TableError::lasting(format!(
                    "{by} there, of its group, references it (foreign key {constraint}): {why}, \
                     and its TRUNCATE alone is refused (a DELETE of its rows would do more than \
                     empty it: {more}); {out}"
                ))
            }
        });
    }
}

/// The tables the job copies to a destination that reference there, by a foreign key, a table
/// the job does not copy and that is empty there, said: a row of theirs that references one
/// fails (23503) at its turn (dump63 F5: the dry run said nothing; the run failed, every table
/// of the unit rolled back). Asked where the role may read that table; a table whose source
/// holds no rows by its estimate is left unsaid.
fn parents_left_out(
    tables: &[TablePlan],
    edges_on: &[Vec<(String, String)>],
    dests: &mut [Option<Connection>],
) -> Vec<String> {
    let job: HashMap<String, &TablePlan> =
        tables.iter().map(|t| (t.table.to_string(), t)).collect();
    let mut said = Vec::new();
    for (d, (edges, slot)) in edges_on.iter().zip(dests.iter_mut()).enumerate() {
        let mut empty: HashMap<&str, bool> = HashMap::new();
        for (c, p) in edges {
            let Some(t) = job.get(c.as_str()) else {
                continue;
            };
            if job.contains_key(p.as_str())
                || !matches!(t.destinations.get(d), Some(DestPlan::Copy { .. }))
                || t.estimate == Some(0)
            {
                continue;
            }
            let Some(conn) = answering(slot) else {
                break;
            };
            let is_empty = *empty.entry(p.as_str()).or_insert_with(|| {
                let literal = crate::sql::literal(p);
                let readable = conn.query(&format!(
                    "SELECT pg_catalog.has_table_privilege({literal}, 'SELECT')::text"
                ));
                let readable = readable.ok().and_then(|r| r.first()?.first()?.clone());
                readable.as_deref() == Some("true")
                    && (conn.query(&format!("SELECT 1 FROM {p} LIMIT 1")))
                        .is_ok_and(|rows| rows.is_empty())
            });
            if is_empty {
                said.push(format!(
                    "{c}: it references {p} on destination {} by a foreign key, and the job \
                     does not copy {p}, which is empty there: a row of {c} that references one \
                     of it fails there (23503); copy {p} with it",
                    d + 1
                ));
            }
        }
    }
    said
}

/// A member of a group emptied by a `DELETE` ([`group_emptying_steps`]) whose only effects
/// besides emptying it are foreign keys of members emptied before it there (with the first
/// `TRUNCATE`, or by a `DELETE` before its own, children first), or of itself: they act on
/// empty tables, or on its own rows, and the `DELETE` touches nothing else (emptying63 F2: an
/// `ON DELETE CASCADE` from child to parent inside the group refused the group).
fn quiet_after_the_members_before(
    tables: &mut [TablePlan],
    groups: &[crate::plan::Group],
    dests: &mut [Option<Connection>],
) {
    for g in groups {
        for (d, slot) in dests.iter_mut().enumerate() {
            if truncates_together(tables, g, d) {
                continue;
            }
            let first = truncated_first(tables, g, d);
            for (at, &m) in g.members.iter().enumerate() {
                let DestPlan::Copy {
                    truncate: true,
                    quiet_delete: false,
                    ..
                } = tables[m].destinations[d]
                else {
                    continue;
                };
                if first.contains(&m) || !tables[m].referenced() {
                    continue;
                }
                let Some(conn) = answering(slot) else {
                    break;
                };
                let before = emptied_before(tables, g, d, at);
                let Some(effects) = delete_effects(conn, &tables[m].table) else {
                    continue;
                };
                let only_theirs = !effects.is_empty()
                    && effects.iter().all(|(kind, _, on, _)| {
                        kind == "key" && on.as_ref().is_some_and(|on| before.contains(on))
                    });
                if only_theirs
                    && let DestPlan::Copy { quiet_delete, .. } = &mut tables[m].destinations[d]
                {
                    *quiet_delete = true;
                }
            }
        }
    }
}

/// The members of `g` that destination `d` empties before, or with, its member at `at` (by
/// name): the first `TRUNCATE`'s ([`truncated_first`]), those after it in the group's order
/// (emptied children first), and itself.
fn emptied_before(
    tables: &[TablePlan],
    g: &crate::plan::Group,
    d: usize,
    at: usize,
) -> HashSet<String> {
    let first = match truncates_together(tables, g, d) {
        true => g.members.clone(),
        false => truncated_first(tables, g, d),
    };
    (g.members.iter().enumerate())
        .filter(|&(k, o)| first.contains(o) || k >= at)
        .filter(|&(_, &o)| {
            matches!(
                tables[o].destinations[d],
                DestPlan::Copy { truncate: true, .. }
            )
        })
        .map(|(_, &o)| tables[o].table.to_string())
        .collect()
}

/// One thing a `DELETE` would do besides emptying its table: `(kind, name, table, action)`.
type Effect = (String, String, Option<String>, Option<String>);

/// What a `DELETE` of `table`'s rows on `conn`'s database would do besides emptying it
/// ([`crate::sql::delete_effects_query`]); `None` where that cannot be asked.
fn delete_effects(conn: &mut Connection, table: &TableName) -> Option<Vec<Effect>> {
    let rows = conn.query(&crate::sql::delete_effects_query(table)).ok()?;
    Some(
        rows.into_iter()
            .filter_map(|row| {
                let mut row = row.into_iter();
                let kind = row.next().flatten()?;
                let name = row.next().flatten().unwrap_or_default();
                Some((kind, name, row.next().flatten(), row.next().flatten()))
            })
            .collect(),
    )
}

/// Why a `DELETE` of `table`'s rows would do more than empty it, named (emptying63 F1: "it is
/// partitioned, or foreign keys act on its deletes, or triggers or rules fire on them", the
/// DBA left to find which).
/// Keys of the tables `before` (members emptied before it) are left out: they act on nothing
/// (recheck63b F2: listed as what stopped it).
fn delete_effects_words(
    conn: &mut Connection,
    table: &TableName,
    before: &HashSet<String>,
) -> String {
    let acts = |(kind, _, on, _): &Effect| {
        !(kind == "key" && on.as_ref().is_some_and(|on| before.contains(on)))
    };
    let said: Vec<String> = (delete_effects(conn, table).unwrap_or_default().into_iter())
        .filter(acts)
        .map(|(kind, name, on, action)| match kind.as_str() {
            "partitioned" => {
                "it is partitioned (its partitions may have triggers of their own)".to_owned()
            }
            "key" => format!(
                "foreign key {name} of {} acts on its deletes (ON DELETE {})",
                on.unwrap_or_default(),
                match action.as_deref() {
                    Some("c") => "CASCADE",
                    Some("n") => "SET NULL",
                    _ => "SET DEFAULT",
                }
            ),
            "trigger" => format!("trigger {name} fires on its deletes"),
            _ => format!("rule {name} acts on its deletes"),
        })
        .collect();
    match said.is_empty() {
        true => "it is partitioned, or foreign keys act on its deletes, or triggers or rules \
                 fire on them"
            .to_owned(),
        false => said.join("; "),
    }
}

/// The partitioned tables destination `d` empties first (`--truncate`: a `TRUNCATE` of the
/// table and its partitions) that have partitions there the source has not (`here`: each
/// partition there and its ancestors), said: their rows are the table's there and go with it,
/// though the source holds no copy of them (emptying63 F5: not a word).
fn partitions_of_its_own(
    tables: &[TablePlan],
    d: usize,
    here: &[(String, Vec<String>)],
    on_source: &HashSet<String>,
) -> Vec<String> {
    let mut said = Vec::new();
    for t in tables {
        if !matches!(t.destinations.get(d), Some(DestPlan::Copy { truncate: true, kind, .. }) if kind == "p")
        {
            continue;
        }
        let name = t.table.to_string();
        let own: Vec<&str> = (here.iter())
            .filter(|(p, up)| up.contains(&name) && !on_source.contains(p))
            .map(|(p, _)| p.as_str())
            .collect();
        if !own.is_empty() {
            let (partitions, are, them) = match own.len() {
                1 => ("partition", "is", "it"),
                _ => ("partitions", "are", "them"),
            };
            said.push(format!(
                "{name}: on destination {} its {partitions} {} {are} not the source's: \
                 --truncate empties {them} with it (their rows are the table's there, and the \
                 source holds no copy of them)",
                d + 1,
                own.join(", ")
            ));
        }
    }
    said
}

/// Whether the graph `after` (each node's successors) has a cycle.
fn has_cycle(after: &[Vec<usize>]) -> bool {
    // 0: not seen, 1: on the path, 2: done.
    let mut state = vec![0u8; after.len()];
    for start in 0..after.len() {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            match after[node].get(*next) {
                Some(&to) => {
                    *next += 1;
                    match state.get(to) {
                        Some(1) => return true,
                        Some(0) => {
                            state[to] = 1;
                            stack.push((to, 0));
                        }
                        _ => {}
                    }
                }
                None => {
                    state[node] = 2;
                    stack.pop();
                }
            }
        }
    }
    false
}

/// The tables outside the job (`job`) that a `TRUNCATE` of `table` on `conn`'s database must
/// name with it, `first` (found referencing it) among them: every table that references it
/// there at any depth ([`crate::plan::referencing_tables`]: a TRUNCATE that left out one
/// referencing a table it names is refused as well). Said as a list to add to the job, and as
/// the `, ONLY …` that follows what empties `table` in that TRUNCATE.
fn with_referencing(
    conn: &mut Connection,
    table: &TableName,
    first: &str,
    job: &HashSet<String>,
) -> (String, String) {
    let mut outside = crate::plan::referencing_tables(conn, &table.to_string());
    outside.retain(|(name, _)| !job.contains(name));
    if !outside.iter().any(|(name, _)| name == first) {
        outside.insert(0, (first.to_owned(), String::new()));
    }
    // Each emptied of its own rows (a partitioned table with its partitions: PostgreSQL
    // refuses a TRUNCATE ONLY of one).
    let truncate: String = (outside.iter())
        .map(|(name, kind)| match kind.as_str() {
            "p" => format!(", {name}"),
            _ => format!(", ONLY {name}"),
        })
        .collect();
    let names: Vec<&str> = outside.iter().map(|(name, _)| name.as_str()).collect();
    (names.join(", "), truncate)
}

/// The name of a foreign key of `child` (a quoted, schema-qualified name) to `parent` on
/// `conn`'s database, if it has one, or to a partition of it (then said: `k, to its partition
/// "s"."p1"`: a lone partitioned table whose partition a table outside the job references was
/// planned to be emptied, and its TRUNCATE failed, recheck64 F3); `None` too when that cannot
/// be asked.
fn foreign_key(conn: &mut Connection, child: &str, parent: &TableName) -> Option<String> {
    let (child, parent) = (crate::sql::literal(child), parent.regclass_literal());
    // The partitions' (PostgreSQL 12: pg_partition_root), the declared key's alone (a key to a
    // partitioned table has one more of its name per partition, PostgreSQL 11: conparentid).
    let partitions = format!(
        "SELECT pg_catalog.quote_ident(k.conname)::text || CASE WHEN k.confrelid <> \
           pg_catalog.to_regclass({parent}) THEN ', to its partition \"' || \
           pg_catalog.replace(n.nspname, '\"', '\"\"') || '\".\"' || \
           pg_catalog.replace(c.relname, '\"', '\"\"') || '\"' ELSE '' END \
         FROM pg_catalog.pg_constraint k \
         JOIN pg_catalog.pg_class c ON c.oid = k.confrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE k.contype = 'f' AND k.conparentid = 0 \
           AND k.conrelid = pg_catalog.to_regclass({child}) \
           AND coalesce(pg_catalog.pg_partition_root(k.confrelid), k.confrelid) = \
             pg_catalog.to_regclass({parent}) \
         ORDER BY k.confrelid <> pg_catalog.to_regclass({parent}), 1 LIMIT 1"
    );
    let own = format!(
        "SELECT pg_catalog.quote_ident(k.conname)::text FROM pg_catalog.pg_constraint k \
         WHERE k.contype = 'f' AND k.conrelid = pg_catalog.to_regclass({child}) \
           AND k.confrelid = pg_catalog.to_regclass({parent}) ORDER BY 1 LIMIT 1"
    );
    let rows = match conn.session().server_version_num() >= Some(120_000) {
        true => conn.query(&partitions),
        false => conn.query(&own),
    }
    .ok()?;
    rows.first()?.first()?.clone()
}

/// A foreign key on `conn`'s database from a table outside `members` to one of them or to a
/// partition of one, said: `"{outside}" there, outside the group, references "{member}"
/// (foreign key {key})`, naming the partition where the key references one (emptying63 F3: the
/// refusal named a key inside the group, and not the table that kept it from one `TRUNCATE`).
/// `None` when there is none or it cannot be asked (before PostgreSQL 12: no
/// `pg_partition_root`).
fn outside_reference(conn: &mut Connection, members: &[&TableName]) -> Option<(String, String)> {
    let list: Vec<String> = members.iter().map(|m| m.regclass_literal()).collect();
    let list = format!("ARRAY[{}]::pg_catalog.regclass[]", list.join(", "));
    let root = |rel: &str| format!("coalesce(pg_catalog.pg_partition_root({rel}), {rel})");
    let rows = conn
        .query(&format!(
            "SELECT cn.nspname::text, c.relname::text, pn.nspname::text, p.relname::text, \
                 rn.nspname::text, r.relname::text, pg_catalog.quote_ident(k.conname)::text \
             FROM pg_catalog.pg_constraint k \
             JOIN pg_catalog.pg_class c ON c.oid = k.conrelid \
             JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace \
             JOIN pg_catalog.pg_class p ON p.oid = k.confrelid \
             JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace \
             JOIN pg_catalog.pg_class r ON r.oid = {} \
             JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace \
             WHERE k.contype = 'f' AND k.conparentid = 0 AND {} = ANY ({list}) \
               AND {} <> ALL ({list}) ORDER BY 1, 2, 7 LIMIT 1",
            root("k.confrelid"),
            root("k.confrelid"),
            root("k.conrelid"),
        ))
        .ok()?;
    let mut row = rows.into_iter().next()?.into_iter();
    let outside = qualified(&mut row)?;
    let referenced = qualified(&mut row)?;
    let member = qualified(&mut row)?;
    let key = row.next().flatten()?;
    let what = match referenced == member {
        true => member,
        false => format!("{referenced}, a partition of {member}"),
    };
    Some((
        format!("{outside} there, outside the group, references {what} (foreign key {key})"),
        format!("foreign key {key} of {outside}"),
    ))
}

/// The name of a foreign key of `child` (a quoted, schema-qualified name) to `parent` on
/// `conn`'s database that one of `child`'s rows uses (its key's columns all set), if any; with
/// `immediate`, only a key that cannot be deferred (not `DEFERRABLE`). `None` too when that
/// cannot be asked.
fn referencing_rows(
    conn: &mut Connection,
    child: &str,
    parent: &TableName,
    immediate: bool,
) -> Option<String> {
    let keys = conn
        .query(&format!(
            "SELECT pg_catalog.quote_ident(k.conname)::text, (SELECT pg_catalog.string_agg(\
                 pg_catalog.quote_ident(a.attname::text) || ' IS NOT NULL', ' AND ') \
               FROM pg_catalog.pg_attribute a \
               WHERE a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)) \
             FROM pg_catalog.pg_constraint k WHERE k.contype = 'f' \
               AND k.conrelid = pg_catalog.to_regclass({}) \
               AND k.confrelid = pg_catalog.to_regclass({}){}",
            crate::sql::literal(child),
            parent.regclass_literal(),
            if immediate {
                " AND NOT k.condeferrable"
            } else {
                ""
            }
        ))
        .ok()?;
    keys.into_iter().find_map(|row| {
        let mut row = row.into_iter();
        let name = row.next().flatten()?;
        let used = row.next().flatten()?;
        let found = conn
            .query(&format!(
                "SELECT EXISTS (SELECT 1 FROM {child} WHERE {used})"
            ))
            .ok()?;
        let found = found.first().and_then(|r| r.first().cloned().flatten());
        (found.as_deref() == Some("t")).then_some(name)
    })
}

/// The tables on `conn`'s database with a foreign key to themselves (schema-qualified and
/// quoted). Nothing when the catalog cannot be read.
fn references_itself(conn: &mut Connection) -> Vec<String> {
    const SQL: &str = "SELECT DISTINCT n.nspname::text, c.relname::text \
        FROM pg_catalog.pg_constraint k \
        JOIN pg_catalog.pg_class c ON c.oid = k.conrelid \
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
        WHERE k.contype = 'f' AND k.conrelid = k.confrelid";
    let Ok(rows) = conn.query(SQL) else {
        return Vec::new();
    };
    rows.into_iter()
        .filter_map(|row| qualified(&mut row.into_iter()))
        .collect()
}

/// The next two columns of a catalog row, schema and name, as one quoted schema-qualified name
/// (`None` where either is NULL).
fn qualified(row: &mut impl Iterator<Item = Option<String>>) -> Option<String> {
    let schema = row.next().flatten()?;
    let name = row.next().flatten()?;
    Some(TableName::from_parts(Some(schema), name).to_string())
}

/// Destination `slot`'s planning session if it still answers: not one whose question was given
/// up (its socket's `--stall-timeout`: a frozen backend, a stuck server, a lost network path),
/// nor one lost. Such a session still waits for that answer, and each question after it would
/// wait a timeout of its own in turn — minutes, then hours, over thousands of tables — so it
/// is asked nothing more ([`refuse_where_unanswered`]).
fn answering(slot: &mut Option<Connection>) -> Option<&mut Connection> {
    slot.as_mut().filter(|conn| conn.is_ready())
}

/// A destination whose planning session stopped answering after the tables were looked up
/// ([`answering`]) stops the job before anything is copied, or under `--keep-going` is left
/// out (every table still to copy there refused), as one it cannot reach: the questions it
/// was not asked (its role's privileges, the foreign keys that reference a table there …) are
/// the plan's checks, which a copy must not go without.
fn refuse_where_unanswered(
    tables: &mut [TablePlan],
    dests: &[Option<Connection>],
    destinations: &[Server],
    options: &Options,
    left_out: &mut Vec<String>,
) -> Result<(), JobError> {
    // A signal cuts the planning sessions' waits short: not a destination's failure.
    if let Some(reason) = options.interrupt.reason() {
        return Err(JobError::Interrupted(reason));
    }
    for (d, (conn, server)) in dests.iter().zip(destinations).enumerate() {
        let copied = |t: &TablePlan| matches!(t.destinations.get(d), Some(DestPlan::Copy { .. }));
        // None: given up and not opened again (or left out already: nothing to copy there).
        let why = match conn {
            Some(conn) => unanswered(conn, options.stall_timeout),
            None => Some(lost()).filter(|_| tables.iter().any(copied)),
        };
        let Some(why) = why else { continue };
        let server = format!("destination {} {}", d + 1, server.name);
        if !options.keep_going {
            return Err(JobError::Destination { server, error: why });
        }
        left_out.push(format!("{server}: {why}; left out (--keep-going)"));
        for t in tables.iter_mut().filter(|t| copied(t)) {
            t.destinations[d] = DestPlan::Refused(why.clone());
        }
    }
    Ok(())
}

/// Why `conn`, a planning session, no longer answers ([`answering`]); `None` if it does.
fn unanswered(conn: &Connection, stall: Option<Duration>) -> Option<TableError> {
    if conn.is_ready() {
        return None;
    }
    Some(TableError::new(match stall.filter(|_| !conn.is_closed()) {
        Some(limit) => format!(
            "stalled for {} s while the job planned: no byte moved (stall timeout) on its \
             planning session, whose catalog question was not answered (a frozen backend, a \
             stuck server or a lost network path)",
            limit.as_secs_f64()
        ),
        None => return Some(lost()),
    }))
}

/// A planning session lost: its server closed it (shut down) or the path to it broke. A
/// connection failure, as a server that refuses the job's sessions is (exit 3 of the command),
/// whichever of the two the moment of the loss made it.
fn lost() -> TableError {
    TableError {
        connect: true,
        ..TableError::new(LOST)
    }
}

/// A planning session lost, in [`unanswered`]'s words.
const LOST: &str = "its planning session was lost while the job planned (the server closed it, \
                    or the network path to it broke)";

/// Refuses, on each destination, a table its role there may not copy into
/// ([`crate::plan::write_refusal`]: row security that applies to it, or a missing privilege):
/// `INSERT` on a copied column, or the privilege that empties it first — `TRUNCATE`, or `DELETE` for a referenced
/// table emptied by itself (`together[i][d]`: truncated with its group). Found while planning,
/// as a table not found there is (the job ends before anything is copied, its dry run too, or
/// under `--keep-going` leaves it out there), where its COPY said "permission denied for table"
/// only at its turn, after other tables committed.
fn refuse_unprivileged(
    tables: &mut [TablePlan],
    together: &[Vec<bool>],
    dests: &mut [Option<Connection>],
    interrupted: &dyn Fn() -> bool,
) {
    /// Tables asked of a destination in one question.
    const AT_ONCE: usize = 200;
    for (d, slot) in dests.iter_mut().enumerate() {
        // Each table copied there, its columns and the privilege that empties it first.
        let asked: Vec<(usize, Vec<&Ident>, Option<&str>)> = tables
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let Some(DestPlan::Copy {
                    truncate,
                    quiet_delete,
                    ..
                }) = t.destinations.get(d)
                else {
                    return None;
                };
                let alone = t.referenced() && *quiet_delete && !together[i][d];
                let empty = truncate.then_some(if alone { "DELETE" } else { "TRUNCATE" });
                Some((i, t.columns.iter().collect(), empty))
            })
            .collect();
        let mut refused = Vec::new();
        for batch in asked.chunks(AT_ONCE) {
            let Some(conn) = answering(slot).filter(|_| !interrupted()) else {
                break;
            };
            let written: Vec<crate::sql::Written<'_>> = batch
                .iter()
                .map(|(i, columns, empty)| (&tables[*i].table, &columns[..], *empty))
                .collect();
            let Some(said) = crate::plan::write_refusals(conn, &written) else {
                continue;
            };
            let found = batch.iter().zip(said);
            refused.extend(found.filter_map(|((i, _, _), why)| Some((*i, why?))));
        }
        for (i, (code, why)) in refused {
            // With the SQLSTATE its server would have refused it with.
            tables[i].destinations[d] = DestPlan::Refused(TableError {
                sqlstate: Some(code.to_owned()),
                ..TableError::lasting(why)
            });
        }
    }
}

/// Refuses a job that empties a table of its own which is, on destination `d`, a partition (at
/// any depth, `ancestry` says) of another table of the job: a partitioned table's TRUNCATE
/// empties its partitions (one copied and committed before lost its rows), and a partition's
/// takes the rows its ancestor's copy routed into it. The same where one of them is done there
/// (a resume that empties the other: `--resume --truncate` wiped a partition the job had
/// committed and recorded done, exit 0 — jobs66 F8).
fn refuse_emptied_within(
    tables: &[TablePlan],
    d: usize,
    ancestry: &[(String, Vec<String>)],
) -> Result<(), JobError> {
    let emptied_on = |t: &TablePlan| {
        matches!(
            t.destinations.get(d),
            Some(DestPlan::Copy { truncate: true, .. })
        )
    };
    let copied_on = |t: &TablePlan| {
        matches!(
            t.destinations.get(d),
            Some(DestPlan::Copy { .. } | DestPlan::Done(_))
        )
    };
    for part in tables.iter().filter(|t| copied_on(t)) {
        let name = part.table.to_string();
        let Some((_, above)) = ancestry.iter().find(|(p, _)| *p == name) else {
            continue;
        };
        let Some(parent) = tables.iter().find(|t| {
            copied_on(t)
                && (emptied_on(t) || emptied_on(part))
                && above.contains(&t.table.to_string())
        }) else {
            continue;
        };
        return Err(JobError::Refused(format!(
            "on destination {}, {name} is a partition of {}, which the job copies too: emptying \
             either there (--truncate, or a resume that replaces a table) takes the other's rows \
             with it (a partitioned table's TRUNCATE reaches its partitions; a partition's, the \
             rows routed into it); copy them in separate jobs, or without emptying",
            d + 1,
            parent.table
        )));
    }
    Ok(())
}

/// Under `--verify`, refuses a table destination `d` (`conn`) copies or holds done that its role
/// there may not read back: its checksum would fail on every run and every resume (which keeps
/// `--verify`), the table committed but never recorded done.
fn refuse_unreadable_for_verify(
    conn: &mut Connection,
    tables: &[TablePlan],
    d: usize,
) -> Result<(), JobError> {
    let names: Vec<(&TableName, &[Ident])> = tables
        .iter()
        .filter(|t| {
            matches!(
                t.destinations.get(d),
                Some(DestPlan::Copy { .. } | DestPlan::Done(_))
            )
        })
        .map(|t| (&t.table, t.columns.as_slice()))
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    // Not asked (an old server, a catalog it cannot read): the comparison says it itself.
    let Ok(rows) = conn.query(&crate::sql::readable_columns_query(&names)) else {
        return Ok(());
    };
    let readable: HashSet<String> = rows
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    match names
        .iter()
        .map(|(n, _)| n.to_string())
        .find(|n| !readable.contains(n))
    {
        Some(name) => Err(JobError::Refused(format!(
            "--verify reads each table back on its destinations, and destination {}'s role may \
             not SELECT {name} there: grant it SELECT on the table (or on the columns copied), or \
             copy without --verify",
            d + 1
        ))),
        None => Ok(()),
    }
}

/// Each partition on `conn`'s database with its ancestors, nearest first (schema-qualified and
/// quoted). Nothing when the catalog cannot be read.
fn partition_ancestors(conn: &mut Connection) -> Vec<(String, Vec<String>)> {
    const SQL: &str = "SELECT cn.nspname::text, c.relname::text, an.nspname::text, a.relname::text \
        FROM pg_catalog.pg_class c \
        JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace \
        CROSS JOIN LATERAL pg_catalog.pg_partition_ancestors(c.oid) WITH ORDINALITY u(relid, n) \
        JOIN pg_catalog.pg_class a ON a.oid = u.relid \
        JOIN pg_catalog.pg_namespace an ON an.oid = a.relnamespace \
        WHERE c.relispartition AND u.relid <> c.oid ORDER BY c.oid, u.n";
    let Ok(rows) = conn.query(SQL) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for row in rows {
        let mut row = row.into_iter();
        let (Some(part), Some(ancestor)) = (qualified(&mut row), qualified(&mut row)) else {
            continue;
        };
        match out.last_mut() {
            Some((p, list)) if *p == part => list.push(ancestor),
            _ => out.push((part, vec![ancestor])),
        }
    }
    out
}

/// What a job over whole schemas leaves behind that pg_dump's data would bring
/// ([`select::uncopied_query`]), said with what to do: its materialized views (refreshed on the
/// destinations once the job ends) and its sequences that no copied table takes values from
/// (set there to the source's). `listed` are the selected tables. Nothing where the source
/// cannot be asked: this is advice, not a check.
fn uncopied(src: &mut Connection, selection: &Selection, listed: &HashSet<String>) -> Vec<String> {
    let rows = asked(src, select::uncopied_query(selection));
    let mut views: Vec<String> = Vec::new();
    // Each sequence, and whether a selected table's default takes values from it.
    let mut sequences: Vec<(String, bool)> = Vec::new();
    for row in &rows {
        let [Some(schema), Some(name), Some(kind), user_schema, user_name] = &row[..] else {
            continue;
        };
        let name = TableName::from_parts(Some(schema.clone()), name.clone()).to_string();
        let used = match (user_schema, user_name) {
            (Some(s), Some(n)) => {
                listed.contains(&TableName::from_parts(Some(s.clone()), n.clone()).to_string())
            }
            _ => false,
        };
        match kind.as_str() {
            "m" if !views.contains(&name) => views.push(name),
            "S" => match sequences.iter_mut().find(|(s, _)| *s == name) {
                Some((_, carried)) => *carried |= used,
                None => sequences.push((name, used)),
            },
            _ => {}
        }
    }
    let mut notes = Vec::new();
    if !views.is_empty() {
        let refresh: Vec<String> = views
            .iter()
            .map(|v| format!("REFRESH MATERIALIZED VIEW {v}"))
            .collect();
        notes.push(format!(
            "{} {}: not copied (a job copies tables' rows): refresh {} on each destination \
             once the job ended ({})",
            if views.len() == 1 {
                "materialized view"
            } else {
                "materialized views"
            },
            views.join(", "),
            if views.len() == 1 { "it" } else { "them" },
            refresh.join("; ")
        ));
    }
    let left: Vec<&str> = sequences
        .iter()
        .filter(|(_, carried)| !carried)
        .map(|(s, _)| s.as_str())
        .collect();
    if !left.is_empty() {
        let one = left.len() == 1;
        notes.push(format!(
            "{} {}: not carried (a job sets a sequence only where a copied column takes its \
             values from it): where the destinations' must stand as the source's, set {} there \
             (SELECT setval('{}', n) with n its last_value on the source{})",
            if one { "sequence" } else { "sequences" },
            left.join(", "),
            if one { "it" } else { "each" },
            left[0].replace('\'', "''"),
            if one { "" } else { ", and so for the others" },
        ));
    }
    notes
}

/// The rows of a catalog query `query` asks on the source (none where it cannot be asked:
/// these are notes, not checks).
fn asked(
    src: &mut Connection,
    query: Result<Option<String>, select::PatternError>,
) -> Vec<Vec<Option<String>>> {
    query
        .ok()
        .flatten()
        .and_then(|query| src.query(&query).ok())
        .unwrap_or_default()
}

/// `(key, item)` pairs as each key with its items, keys in the order first met.
fn grouped(pairs: impl Iterator<Item = (String, String)>) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (key, item) in pairs {
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, items)) => items.push(item),
            None => groups.push((key, vec![item])),
        }
    }
    groups
}

/// The partitions a pattern, a schema or the default took that `--exclude-table` leaves out
/// with their partitioned ancestor ([`select::left_out_with_query`]), said per ancestor: pg_dump's
/// `-T` leaves out the table it names alone, and a job over a schema lost their rows without a
/// word (names42 F8).
fn left_out_with(src: &mut Connection, selection: &Selection) -> Vec<String> {
    let rows = asked(src, select::left_out_with_query(selection));
    let by_ancestor = grouped(rows.iter().filter_map(|row| {
        let [Some(schema), Some(name), Some(up_schema), Some(up_name)] = &row[..] else {
            return None;
        };
        let part = TableName::from_parts(Some(schema.clone()), name.clone()).to_string();
        let up = TableName::from_parts(Some(up_schema.clone()), up_name.clone()).to_string();
        Some((up, part))
    }));
    (by_ancestor.into_iter())
        .map(|(up, parts)| {
            let one = parts.len() == 1;
            format!(
                "{}: left out with {} partitioned table {up}, which --exclude-table leaves out \
                 (pg_dump's -T would keep {}): name {} as a TABLE to copy {}",
                parts.join(", "),
                if one { "its" } else { "their" },
                if one { "its rows" } else { "theirs" },
                if one { "it" } else { "each" },
                if one { "it" } else { "them" },
            )
        })
        .collect()
}

/// Each `--exclude-table` pattern that matches relations the selection does not take, leaving
/// out nothing ([`select::idle_exclusions_query`]): an unqualified `t1` matching `public.t1`
/// beside `--schema sales` left `sales.t1` in without a word (names42 F4).
fn idle_exclusions(src: &mut Connection, selection: &Selection) -> Vec<String> {
    let rows = asked(src, select::idle_exclusions_query(selection));
    (rows.iter())
        .filter_map(|row| {
            let [Some(pattern), names] = &row[..] else {
                return None;
            };
            let names = names.as_deref().unwrap_or_default();
            let hint = match (&selection.schemas[..], pattern.contains('.')) {
                ([schema], false) if !schema.contains(['*', '?', '"', '.']) => {
                    format!(" (say {schema}.{pattern} for that schema's)")
                }
                _ => String::new(),
            };
            Some(format!(
                "--exclude-table {pattern} matches only {names}, which the selection does not \
                 take: it leaves nothing out{hint}"
            ))
        })
        .collect()
}

/// The partitions in schemas no `--schema` takes that a job copies with their partitioned
/// table ([`select::outside_schemas_query`]): pg_dump's `-n` would leave their rows out, and two
/// jobs split by schema copied them twice (names42 F2).
/// The note of `table`'s inheritance children (not partitions) that the job does not take
/// (`taken`: every table it copies), if it has any: a COPY of it reads its own rows only, as
/// pg_dump does, and a job that named an old-style partitioned table copied none of its
/// children's rows, exit 0, verified (jobs67 F6: 0 of 7 000; one table's copy warned).
fn children_left_out(
    src: &mut Connection,
    table: &TableName,
    taken: &HashSet<String>,
) -> Option<String> {
    let sql = format!(
        "SELECT {} FROM pg_catalog.pg_inherits i \
         JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE i.inhparent = {}::pg_catalog.regclass AND NOT c.relispartition ORDER BY 1",
        crate::sql::quoted_relation("n", "c"),
        table.regclass_literal()
    );
    let left: Vec<String> = (src.query(&sql).unwrap_or_default().into_iter())
        .filter_map(|row| row.into_iter().next().flatten())
        .filter(|child| !taken.contains(child))
        .collect();
    let names: Vec<&str> = left.iter().map(String::as_str).collect();
    let one = left.len() == 1;
    (!left.is_empty()).then(|| {
        format!(
            "{table}: only its own rows are copied (as COPY and pg_dump read them): {} {} \
             ({}) {} not in the job, and {} rows are not copied (name {} to copy {})",
            left.len(),
            if one {
                "inheritance child"
            } else {
                "inheritance children"
            },
            super::first_names(&names),
            if one { "is" } else { "are" },
            if one { "its" } else { "their" },
            if one { "it" } else { "them" },
            if one { "its rows" } else { "theirs" },
        )
    })
}

fn outside_schemas(
    src: &mut Connection,
    selection: &Selection,
    selected: &[select::Selected],
) -> Vec<String> {
    let partitioned: Vec<TableName> = (selected.iter())
        .filter(|s| s.kind == "p")
        .map(|s| s.table.clone())
        .collect();
    let rows = asked(src, select::outside_schemas_query(selection, &partitioned));
    let by_table = grouped(rows.iter().filter_map(|row| {
        let [Some(table), Some(schema), Some(name)] = &row[..] else {
            return None;
        };
        let part = TableName::from_parts(Some(schema.clone()), name.clone()).to_string();
        Some((table.clone(), part))
    }));
    (by_table.into_iter())
        .map(|(table, parts)| {
            let one = parts.len() == 1;
            format!(
                "{table}: copied whole, with {} {} in a schema --schema does not take (pg_dump's \
                 -n leaves {} out); a job over {} schema copies {} again: to keep to the \
                 schemas, --exclude-table {table} and name the partitions to copy",
                if one {
                    "its partition"
                } else {
                    "its partitions"
                },
                parts.join(", "),
                if one { "its rows" } else { "their rows" },
                if one { "that" } else { "those" },
                if one { "it" } else { "them" },
            )
        })
        .collect()
}

/// How a group's note says its members are emptied ([`plan_all`]'s): with one `TRUNCATE` (as
/// the first destination has them), but where and why otherwise ([`group_emptying_steps`]:
/// those no other table references with one `TRUNCATE`, the others one by one, children first).
fn group_emptying_words(tables: &[TablePlan], g: &crate::plan::Group) -> String {
    // Where one TRUNCATE is not theirs, and why.
    let apart: Vec<String> = (0..tables[g.members[0]].destinations.len())
        .filter(|&d| !truncates_together(tables, g, d))
        .map(|d| {
            let why = if g.truncate_together[d] {
                "a member that references another emptied there is not emptied \
                 there itself"
            } else {
                "a table outside the group references one of them there, and \
                 TRUNCATE is refused there"
            };
            format!("on destination {}: {why}", d + 1)
        })
        .collect();
    if g.truncate_together.iter().any(|&together| together) {
        // As the first destination has them (the plan shows each destination's).
        let list: Vec<String> = g
            .members
            .iter()
            .map(|&m| {
                let t = &tables[m];
                let kind = t
                    .destinations
                    .iter()
                    .find_map(|d| match d {
                        DestPlan::Copy { kind, .. } => Some(kind.as_str()),
                        _ => None,
                    })
                    .unwrap_or(t.kind.as_str());
                own_rows(&t.table, kind)
            })
            .collect();
        format!(
            "empties them with one TRUNCATE {}{}",
            list.join(", "),
            if apart.is_empty() {
                String::new()
            } else {
                format!(" ({BY_PARTS}, {})", apart.join("; "))
            }
        )
    } else {
        format!(
            "empties them {BY_PARTS} (a table outside the group references one of them: a \
             TRUNCATE of them all is refused there)"
        )
    }
}

/// How a group is emptied where one `TRUNCATE` of its members is refused ([`truncated_first`]:
/// not "those no table outside references", which a member referenced by one emptied after it
/// is not, emptying63 F6).
const BY_PARTS: &str = "with one TRUNCATE those that no table references but those truncated \
                        with them, then the others one by one, children first";

/// The foreign keys `edges` between the job's tables as the job copies them: a partition that is
/// not a table of the job but whose ancestor is (its rows are copied, and emptied, with that
/// ancestor's) stands for its nearest such ancestor. A partitioned table's foreign key has a
/// row of its own for each partition (`c1 → p` besides `c → p`): without this, such a
/// partition would count as a table outside the job that references `p`. Self-references and
/// repeats are left out.
fn onto_job_tables(
    tables: &[TablePlan],
    ancestors: &[(String, Vec<String>)],
    edges: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let job: HashSet<String> = tables.iter().map(|t| t.table.to_string()).collect();
    let map = |name: String| -> String {
        if job.contains(&name) {
            return name;
        }
        ancestors
            .iter()
            .filter(|(p, _)| *p == name)
            .find_map(|(_, list)| list.iter().find(|a| job.contains(*a)).cloned())
            .unwrap_or(name)
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for (c, p) in edges {
        let edge = (map(c), map(p));
        if edge.0 != edge.1 && !out.contains(&edge) {
            out.push(edge);
        }
    }
    out
}

/// Fills each table's [`TablePlan::after`] (the job's tables it references, except those on a
/// cycle with it: tables on a cycle keep the size order) and [`TablePlan::referenced_by`].
fn order_by_foreign_keys(tables: &mut [TablePlan], edges: &[(String, String)]) -> Vec<String> {
    let index: HashMap<String, usize> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| (t.table.to_string(), i))
        .collect();
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); tables.len()];
    // Whether `from` waits, through the edges kept so far, for `to`.
    fn waits(after: &[Vec<usize>], from: usize, to: usize) -> bool {
        let mut seen = vec![false; after.len()];
        let mut stack = vec![from];
        while let Some(i) = stack.pop() {
            if i == to {
                return true;
            }
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend(&after[i]);
            }
        }
        false
    }
    let mut pairs: Vec<(usize, usize)> = edges
        .iter()
        .filter_map(|(child, parent)| Some((*index.get(child)?, *index.get(parent)?)))
        .filter(|(c, p)| c != p)
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut all: Vec<Vec<usize>> = vec![Vec::new(); tables.len()];
    for &(child, parent) in &pairs {
        all[child].push(parent);
    }
    // Tables on one cycle keep the size order among themselves: no edge of the cycle is kept.
    let mut on_cycle = vec![false; tables.len()];
    for (child, parent) in pairs {
        if waits(&all, parent, child) {
            on_cycle[child] = true;
            on_cycle[parent] = true;
        } else {
            after[child].push(parent);
        }
    }
    let cycles: Vec<String> = tables
        .iter()
        .zip(&on_cycle)
        .filter(|(_, on)| **on)
        .map(|(t, _)| t.table.to_string())
        .collect();
    for (t, after) in tables.iter_mut().zip(after) {
        t.after = after;
    }
    for t in tables.iter_mut() {
        let me = t.table.to_string();
        let mut by: Vec<&String> = edges
            .iter()
            .filter(|(_, parent)| *parent == me)
            .map(|(child, _)| child)
            .collect();
        by.sort_unstable();
        by.dedup();
        t.referenced_by = by.into_iter().map(|name| name.to_owned()).collect();
    }
    cycles
}

/// The source's statements for a table of `size` bytes split into ranges of about `limit`
/// bytes (at least 2, at most `jobs`), by heap page: `ctid >= '(lo,0)' AND ctid < '(hi,0)'`, the
/// first range open below and the last open above (pages added since the size was read).
pub fn split(
    copy: &TableCopy,
    format: Format,
    size: u64,
    limit: u64,
    block_size: u64,
    jobs: usize,
) -> Vec<String> {
    let n = size.div_ceil(limit.max(1)).clamp(2, (jobs as u64).max(2));
    let pages = (size / block_size.max(1)).max(1);
    let per = pages.div_ceil(n);
    (0..n)
        .map(|i| {
            let (lo, hi) = (i * per, (i + 1) * per);
            let condition = if i == 0 {
                format!("ctid < '({hi},0)'::pg_catalog.tid")
            } else if i == n - 1 {
                format!("ctid >= '({lo},0)'::pg_catalog.tid")
            } else {
                format!("ctid >= '({lo},0)'::pg_catalog.tid AND ctid < '({hi},0)'::pg_catalog.tid")
            };
            TableCopy {
                condition: Some(condition),
                ..copy.clone()
            }
            .copy_out(format, true, "r")
        })
        .collect()
}

/// The note for an `--exclude-table` pattern that matches nothing. pg_dump's rule: unqualified,
/// a pattern sees only the tables on the search path, so `--schema sales --exclude-table
/// 'audit_*'` leaves `sales.audit_log` in: the note says how to name another schema's (the one
/// `--schema` given, if it is one name). Where that schema is on the search path (`on_path`: the
/// source session's `current_schemas`), the pattern did see its tables: misspelt, or not there
/// (it told to "say public.nosuch", jobs41 F6).
fn unmatched_exclusion(pattern: &str, schemas: &[String], on_path: &[String]) -> String {
    let said = format!(
        "--exclude-table {pattern} matches no relation on the source: it leaves nothing out"
    );
    if pattern.contains('.') {
        return said;
    }
    let schema = match schemas {
        [schema] if !schema.contains(['*', '?', '"', '.']) => schema.as_str(),
        _ => "SCHEMA",
    };
    if on_path.iter().any(|s| s == schema) {
        return format!(
            "{said} (unqualified, it matches the tables on the search path, {schema} among \
             them: none of its tables is named so)"
        );
    }
    format!(
        "{said} (unqualified, it matches only tables on the search path; say {schema}.{pattern} \
         for another schema's)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freeze_goes_into_the_options() {
        let t = TablePlan {
            table: TableName::parse("t").unwrap(),
            kind: "r".into(),
            size: 0,
            bytes: 0,
            estimate: None,
            columns: Vec::new(),
            format: Format::Binary,
            format_reason: String::new(),
            send: String::new(),
            receive: r#"COPY "t" ("a") FROM STDIN (FORMAT binary)"#.into(),
            ranges: Vec::new(),
            destinations: Vec::new(),
            after: Vec::new(),
            referenced_by: Vec::new(),
            locked: false,
            files: None,
            source_guard: None,
            data_encoding: None,
            checksum_unconverted: false,
            read_as: Vec::new(),
            compare_forms: Vec::new(),
            checksum_reads_in: Vec::new(),
        };
        assert_eq!(
            t.receive_for(true),
            r#"COPY "t" ("a") FROM STDIN (FORMAT binary, FREEZE)"#
        );
        assert_eq!(t.receive_for(false), t.receive);
    }

    #[test]
    fn a_table_waits_for_the_tables_it_references_except_on_a_cycle() {
        let plan = |name: &str| TablePlan {
            table: TableName::from_parts(Some("s".into()), name.into()),
            kind: "r".into(),
            size: 0,
            bytes: 0,
            estimate: None,
            columns: Vec::new(),
            format: Format::Text,
            format_reason: String::new(),
            send: String::new(),
            receive: String::new(),
            ranges: Vec::new(),
            destinations: Vec::new(),
            after: Vec::new(),
            referenced_by: Vec::new(),
            locked: false,
            files: None,
            source_guard: None,
            data_encoding: None,
            checksum_unconverted: false,
            read_as: Vec::new(),
            compare_forms: Vec::new(),
            checksum_reads_in: Vec::new(),
        };
        let mut tables: Vec<TablePlan> = ["child", "parent", "grand", "a", "b"]
            .into_iter()
            .map(plan)
            .collect();
        let name = |n: &str| format!(r#""s"."{n}""#);
        let edges = [
            (name("child"), name("parent")),
            (name("parent"), name("grand")),
            (name("a"), name("b")),
            (name("b"), name("a")),
            (name("outside"), name("parent")),
            (name("child"), name("parent")),
        ];
        order_by_foreign_keys(&mut tables, &edges);
        assert_eq!(tables[0].after, vec![1]);
        assert_eq!(tables[1].after, vec![2]);
        assert!(tables[2].after.is_empty());
        assert!(
            tables[3].after.is_empty() && tables[4].after.is_empty(),
            "a cycle"
        );
        assert_eq!(
            tables[1].referenced_by,
            vec![name("child"), name("outside")]
        );
        assert_eq!(tables[3].referenced_by, vec![name("b")]);
    }

    #[test]
    fn a_split_covers_every_page_once() {
        let copy = TableCopy {
            table: TableName::parse("t").unwrap(),
            target: None,
            columns: crate::sql::parse_columns("a").unwrap(),
            condition: None,
            header: false,
            encoding: None,
        };
        // 10 pages of 8 KiB in ranges of about 3 pages, at most 4 (--jobs).
        let ranges = split(&copy, Format::Text, 10 * 8192, 3 * 8192, 8192, 4);
        assert_eq!(
            ranges,
            [
                r#"COPY (SELECT "a" FROM ONLY "t" WHERE (ctid < '(3,0)'::pg_catalog.tid)) TO STDOUT (FORMAT text)"#,
                r#"COPY (SELECT "a" FROM ONLY "t" WHERE (ctid >= '(3,0)'::pg_catalog.tid AND ctid < '(6,0)'::pg_catalog.tid)) TO STDOUT (FORMAT text)"#,
                r#"COPY (SELECT "a" FROM ONLY "t" WHERE (ctid >= '(6,0)'::pg_catalog.tid AND ctid < '(9,0)'::pg_catalog.tid)) TO STDOUT (FORMAT text)"#,
                r#"COPY (SELECT "a" FROM ONLY "t" WHERE (ctid >= '(9,0)'::pg_catalog.tid)) TO STDOUT (FORMAT text)"#,
            ]
        );
        // At least two ranges, at most --jobs.
        assert_eq!(
            split(&copy, Format::Text, 100 * 8192, 8192, 8192, 3).len(),
            3
        );
        assert_eq!(split(&copy, Format::Text, 8192, 1, 8192, 1).len(), 2);
    }

    #[test]
    fn an_unqualified_exclusion_that_matches_nothing_says_how_to_name_another_schemas() {
        // The tester's F6: the README's `--schema sales --exclude-table 'audit_*'` copied
        // sales.audit_log, and the note said only that the pattern matches no relation.
        assert_eq!(
            unmatched_exclusion("audit_*", &["sales".to_owned()], &[]),
            "--exclude-table audit_* matches no relation on the source: it leaves nothing out \
             (unqualified, it matches only tables on the search path; say sales.audit_* for \
             another schema's)"
        );
        assert!(
            unmatched_exclusion("audit_*", &[], &[])
                .ends_with("say SCHEMA.audit_* for another schema's)")
        );
        assert!(
            unmatched_exclusion("audit_*", &["s*".to_owned()], &[])
                .ends_with("say SCHEMA.audit_* for another schema's)")
        );
        assert_eq!(
            unmatched_exclusion("sales.audit_*", &["sales".to_owned()], &[]),
            "--exclude-table sales.audit_* matches no relation on the source: it leaves nothing out"
        );
        // A schema on the search path: its tables were seen, no other name to give.
        let on_path = unmatched_exclusion("nosuch", &["public".to_owned()], &["public".to_owned()]);
        assert!(
            on_path.ends_with("public among them: none of its tables is named so)"),
            "{on_path}"
        );
    }

    #[test]
    fn renames_are_applied_as_names_shift_and_a_swap_through_a_name_set_aside() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            (list.iter())
                .map(|(t, w)| (t.to_string(), w.to_string()))
                .collect()
        };
        let moves = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            (in_shifting_order(pairs(list)).into_iter())
                .map(|(table, _, from)| (from, table))
                .collect()
        };
        // t_1 → t_2 before t → t_1.
        assert_eq!(
            moves(&[("t_1", "t"), ("t_2", "t_1")]),
            pairs(&[("t_1", "t_2"), ("t", "t_1")])
        );
        // a ↔ b: a's records aside, b's to a, then a's to b.
        let swap = in_shifting_order(pairs(&[("b", "a"), ("a", "b")]));
        let aside = "a (set aside)".to_string();
        assert_eq!(
            swap,
            vec![
                (aside.clone(), None, "a".to_string()),
                ("a".to_string(), Some("b".to_string()), "b".to_string()),
                ("b".to_string(), Some("a".to_string()), aside),
            ]
        );
    }
}
