//! The job's state file: which table reached which destination.
//!
//! Append-only lines of tab-separated fields (shown here with spaces), each written and fsynced
//! before the job goes on:
//!
//! ```text
//! copyman-job 3
//! selection  "public"."items" "public"."orders"
//! source  system 7301847126395823001 database 16384
//! truncate
//! verify
//! begin  "public"."orders"  system 7301847126395823112 database 16384  exact
//! commit  "public"."orders"  system 7301847126395823112 database 16384  120000  48123
//! done  "public"."orders"  system 7301847126395823112 database 16384  120000
//! begin  "public"."items"  system 7301847126395823112 database 16384  exact
//! commit  "public"."items"  system 7301847126395823112 database 16384  5000  48130,48131
//! mismatch  "public"."items"  system 7301847126395823112 database 16384  5000
//! ```
//!
//! A run also writes, before it begins any table, a `covers  TABLE  OID,OID…` line for each
//! table it copies: the source's oids of the relations its copy covers (the table and every
//! partition below it). A resume refuses a table the earlier run began under another name (one
//! renamed since, or a partition detached from a table copied whole): its rows may be there.
//! A resume that finds a table renamed since (its relations, under a new name) writes
//! `renamed  OLD  NEW`, and one that finds a table of a recorded name made again (other
//! relations) `replaced  TABLE`: the records before such a line are the renamed table's, or
//! forgotten, and those after it the new name's, or the new table's.
//!
//! Each run writes, once it holds the file, a `writer  BOOT  PID  START` line naming its process
//! ([`Writer`]): the file's lock guards it against a second run, but not a copy of it (a backup,
//! another directory); a resume that finds the last writer alive on this host is refused, since
//! the tables it began and did not commit are being copied now.
//!
//! A run also writes, before it begins any table, a `claim  TABLE  DESTINATION` line for
//! each table it will copy (and each partition relative of one) on each destination: while its
//! file is locked (the run is alive), another job of the same state directory that would copy
//! one of those tables there refuses to ([`running`]). Claims are read only from a running
//! job's file; a dead run's claims mean nothing.
//!
//! Before each `begin` (one write with it) a `position  DESTINATION  TIMELINE  LSN` line says
//! where the destination's WAL stood ([`Position`]). A resume refuses, unless it verifies, a
//! destination on another timeline or behind the last one recorded: a failover to a standby
//! that lacked the job's commits, or a restore of an older copy, has the destination's system
//! identifier, and the tables recorded committed there may be missing (a transaction id recorded
//! may even name one of the new server's own). Its two last fields, where the server said them,
//! are when the server started and when its statistics were last reset: a server started or
//! recovered from a crash since (a killed backend's crash recovery keeps the start, not the
//! reset) may have forgotten transaction ids that were never durable, and emptied its UNLOGGED
//! tables.
//!
//! A destination is named by what it is, not by how it was spelled: `system SYSID database OID`
//! ([`identity_key`]: the cluster's `pg_control_system()` identifier and the database's oid), so
//! a resume recognises a destination whatever connection string reaches it (another host name
//! or address, a socket directory with a trailing slash, a user or database from the
//! environment). A destination whose server will not say (`pg_control_system()` revoked) is
//! named `conninfo STRING` ([`unidentified_key`]); a resume refuses it when the file records
//! destinations that run does not have, since it could be one of them spelled otherwise. A
//! clone of a destination (a base backup, a copied data directory) has its identity too: a
//! resume checks that a table recorded done with rows holds some there.
//!
//! `selection` is what the job copies (its tables and patterns, in one order): a resume of
//! another selection is refused. `source` names the source as destinations are named: a resume
//! from another source is refused (a standby of it has its identity). `truncate` says the job
//! began with `--truncate`: its resumes empty the tables they copy as it would have (a resume
//! given `--truncate` writes none: it binds no later resume, since the tables done before it
//! were appended, and a destination's own rows may be beside them). `verify`
//! says it began with `--verify`: a resume without it is refused. `begin` is written before a
//! table's transaction starts on a destination (`exact`: this attempt records its `commit`
//! line, below); `transaction`, once it has, with its id there (a resume of a file restored
//! from a copy taken while the job ran, which lacks a later `commit` line, asks whether it
//! committed); `commit`, before its
//! `COMMIT` (or `PREPARE TRANSACTION`) is sent, with the rows copied and the destination's
//! transaction ids (`txid_current()`; one per range of a split table) (a `storage` line before
//! it, where the table kept its rows, is an earlier version's: read and left aside); `done` only after its
//! `COMMIT` there succeeded, with the rows committed — and, when the job verifies, only once
//! the destination's checksum matched the source's, after a `checksum  TABLE  DESTINATION  SUM`
//! line with the checksum both had: a resume that verifies compares the table there with that,
//! not with the source as it is by then (a live source's rows have changed: every table done
//! earlier differed, and was copied again). `mismatch` says that the table committed
//! there but its checksum differed (or could not be computed): it is not done, and a resume
//! empties it and copies it again in one transaction — that of an append (which may not empty
//! it) refuses it, unless it verifies: it is compared again, and recorded `done` if it matches
//! (mended by hand since).
//!
//! A crash (even `kill -9`) can lose the last record, never records a table that is not
//! committed, and never sends a `COMMIT` the file does not announce. So a resume knows of a
//! table begun and not done: without a `commit` line its earlier attempt never committed (it
//! is copied again, not emptied: rows the destination held of its own stay); with one, the
//! destination's `txid_status()` says whether it committed (then it is done) or not. Only what
//! cannot be told (a `begin` of an older copyman, without `exact`; under `--truncate`, a
//! transaction id too old for the server to remember, ranges of which some committed — an
//! append's resume refuses those) is emptied and copied again in one transaction, as every
//! begun table was before. A line cut short by a crash counts for
//! nothing. A tab, a newline or a backslash in a field is written `\t`, `\n`, `\\`.
//!
//! Format 2 (`copyman-job 2`) wrote no `commit` lines: it is read, its `begin` lines without
//! `exact`. Format 3 is refused by a copyman that knows only format 2 (it would read a table
//! begun as not begun).
//!
//! Format 1 (`copyman-job 1`, before copyman named destinations by identity) named them by
//! their connection strings: it is refused, not read, since its records cannot be matched to
//! destinations safely (a record missed means rows copied twice).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What a job whose state file went while it ran says of it (in [`JobReport::stopped`](crate::job::JobReport::stopped)):
/// a resume has no record of that run.
pub const REMOVED_OR_REPLACED: &str = "was removed or replaced while the job ran";

/// What a job whose state file was moved (renamed) while it ran says of it (in
/// [`JobReport::stopped`](crate::job::JobReport::stopped)): its records are whole at its new
/// name, and a resume given it goes on.
pub const MOVED: &str = "was moved while the job ran";

/// What a job whose state file was cut short or written by another program while it ran says of
/// it (in [`JobReport::stopped`](crate::job::JobReport::stopped)).
pub const ALTERED: &str = "was altered while the job ran";

const HEADER: &str = "copyman-job 3\n";

/// The first line of a state file of format 2 (no `commit` lines): read as well.
const HEADER_V2: &str = "copyman-job 2\n";

// A format-2 file a resume goes on with is marked format 3 in place ([`upgrade_header`]).
const _: () = assert!(HEADER.len() == HEADER_V2.len());

/// Marks a state file of format 2 that a resume is about to add format-3 lines to (`begin …
/// exact`, `commit`, `truncate`) as format 3, so that a copyman knowing only format 2 refuses
/// it (it would skip those lines and take a table begun for one never begun). The two headers
/// are the same length: the first line is overwritten in place (one sector, written whole),
/// through a handle of its own (an `O_APPEND` one would write at the end).
fn upgrade_header(path: &Path) -> io::Result<()> {
    use std::io::Read;
    use std::os::unix::fs::FileExt;

    let mut head = [0u8; HEADER_V2.len()];
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    if file.read_exact(&mut head).is_err() || head != HEADER_V2.as_bytes() {
        return Ok(());
    }
    file.write_all_at(HEADER.as_bytes(), 0)?;
    file.sync_all()
}

/// The last field of a `begin` line whose attempt records its `commit` line before its COMMIT.
const EXACT: &str = "exact";

/// The first line of a state file of format 1 (destinations by connection string).
const HEADER_V1: &str = "copyman-job 1\n";

/// How the state file names a destination whose server said who it is: `system_identifier` is
/// `pg_control_system()`'s, `database` the database's oid.
pub fn identity_key(system_identifier: &str, database: &str) -> String {
    format!("system {system_identifier} database {database}")
}

/// How the state file names a destination whose server would not say who it is: by its
/// connection string as shown (no password).
pub fn unidentified_key(display: &str) -> String {
    format!("conninfo {display}")
}

/// Whether `key` names a destination by its connection string ([`unidentified_key`]).
pub fn is_unidentified(key: &str) -> bool {
    key.starts_with("conninfo ")
}

/// What a state file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The process that last wrote it ([`StateFile::writer`]): a resume of a copy of the file
    /// (no lock of that run beside it) refuses while that process is alive ([`Writer::alive`]).
    pub writer: Option<Writer>,
    /// `(table, destination)` pairs done, with the rows committed.
    pub done: HashMap<(String, String), u64>,
    /// `(table, destination)` pairs done, with the transaction ids their `commit` line recorded
    /// (where it did): a resume looks for rows they wrote in an UNLOGGED table, which a crash
    /// of its server empties whatever was written there since.
    pub done_xids: HashMap<(String, String), Vec<u64>>,
    /// `(table, destination)` pairs done, with their destination's statistics reset time as
    /// the copy began ([`Attempts::reset`], where recorded): reset since, a crash recovery
    /// emptied the table there if it is UNLOGGED, whatever rows it holds since.
    pub done_reset: HashMap<(String, String), i64>,
    /// `(table, destination)` pairs done under `--verify`, with the checksum the destination
    /// and the source had then ([`StateFile::done`]).
    pub checksums: HashMap<(String, String), String>,
    /// `(table, destination)` pairs whose copy began (done or not).
    pub begun: HashSet<(String, String)>,
    /// `(table, destination)` pairs committed whose `--verify` checksum differed from the
    /// source's (not done), with the rows committed.
    pub mismatched: HashMap<(String, String), u64>,
    /// `(table, destination)` pairs begun and not done: what their attempts since the last
    /// `done` or `mismatch` recorded.
    pub attempts: HashMap<(String, String), Attempts>,
    /// `(table, destination)` pairs the run that wrote it claimed: it copies them, or copies a
    /// partition relative of them ([`StateFile::claim`]).
    pub claimed: HashSet<(String, String)>,
    /// Each table a run copied, with the source's oids of the relations its copy covered (itself
    /// and every partition below it: [`StateFile::covers`]).
    pub covers: HashMap<String, Vec<u64>>,
    /// `(table, destination)` pairs done, with the source's oids its copy covered as the run
    /// that committed it recorded them (its last `covers` line before the `done`): a partition
    /// attached since that run is not among them; one attached before it is, and came with it.
    pub done_covers: HashMap<(String, String), Vec<u64>>,
    /// The source of the job that wrote it ([`StateFile::source`]), if it recorded one.
    pub source: Option<String>,
    /// The selection of the job that wrote it ([`Selection::key`](crate::select::Selection::key)),
    /// if it recorded one.
    pub selection: Option<String>,
    /// The job was run with `--truncate`: a resume empties its tables before it copies them
    /// too, whether or not it is given `--truncate` (without it, a table the first run never
    /// began, or one it rolled back, would get the source's rows beside the old ones).
    pub truncate: bool,
    /// The job was run with `--verify`: its tables are recorded done only once their checksum
    /// matched, and a resume must verify too (a table it finds committed and unrecorded would
    /// else be recorded done unchecked).
    pub verify: bool,
    /// The job was run with `--atomic`, its decisions in this log: a resume commits with
    /// two-phase commit too, in the same log, whether or not it is given `--atomic` (jobs46
    /// F3: it committed with plain COMMITs, one destination after the other, unsaid).
    pub atomic: Option<PathBuf>,
    /// Every decision log the job's runs decided in, the job's first: a resume given another
    /// `--decision-log` records it too, so a transaction it left prepared is recovered from the
    /// log that holds its run (recheck48b F1: the refusal named the job's, which has no line
    /// of it).
    pub logs: Vec<PathBuf>,
    /// Where each destination's WAL stood when a table last began there
    /// ([`StateFile::begin_at`]), by destination.
    pub positions: HashMap<String, Position>,
    /// The highest transaction id of a commit recorded done on each destination (its `commit`
    /// line, acknowledged: a `done` line follows it): a server whose next transaction id is not
    /// above it went back in time (a restore of an older copy), however much WAL it has
    /// written since. A commit announced and never acknowledged is not counted: a crash of the
    /// destination forgets an id whose COMMIT never became durable (jobs41 F1).
    pub highest_xid: HashMap<String, u64>,
    /// On each destination, the table recorded done whose `commit` line has the highest
    /// transaction id, among those that copied rows: a resume looks for rows that transaction
    /// wrote there (`xmin`). A server restored from an older copy lacks them, however many
    /// transactions it ran since (one may even have been given the same id).
    pub last_done: HashMap<String, (String, Committing)>,
    /// Each destination's name ([`StateFile::named`]) with its key, as last recorded.
    pub names: HashMap<String, String>,
}

/// Where a server's WAL stands: its timeline and write-ahead log position (LSN). A resume
/// compares a destination's with the one recorded when a table last began there: a failover to
/// a standby that lacked the job's commits (same system identifier, a new timeline) or a
/// restore of an older copy (its WAL behind) is not the destination the records describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The timeline it writes on (`pg_walfile_name`'s first 8 hex digits).
    pub timeline: u32,
    /// Its LSN (`pg_current_wal_lsn()`).
    pub lsn: u64,
    /// When its server started (`pg_postmaster_start_time()`, microseconds since 1970), where
    /// it was asked: a server started since an attempt began may have forgotten the ids it
    /// took that were never durable, and given them again ([`Attempts::started`]).
    pub started: Option<i64>,
    /// When its cumulative statistics were last reset (`pg_stat_bgwriter.stats_reset`,
    /// microseconds since 1970), where it was asked: every crash recovery resets them — one
    /// after a backend was killed too, which keeps the postmaster's start time — and empties
    /// the UNLOGGED tables; a clean restart keeps them.
    pub reset: Option<i64>,
}

impl Position {
    /// Reads `pg_walfile_name(…)` and `pg_current_wal_lsn()` as a server gives them.
    pub fn parse(walfile: &str, lsn: &str) -> Option<Self> {
        let timeline = u32::from_str_radix(walfile.get(..8)?, 16).ok()?;
        Some(Self {
            timeline,
            lsn: lsn_of(lsn)?,
            started: None,
            reset: None,
        })
    }

    /// Why a destination at `self` is not where it stood at `then`, if it is not: another
    /// timeline, or a WAL position behind.
    pub fn went_back_from(&self, then: &Self) -> Option<String> {
        if self.timeline != then.timeline {
            Some(format!(
                "it writes on timeline {} now, on {} when the earlier run last began a table \
                 there (a failover, or a restore, since)",
                self.timeline, then.timeline
            ))
        } else if self.lsn < then.lsn {
            Some(format!(
                "its WAL stands at {self} now, behind {then} where it stood when the earlier \
                 run last began a table there (a restore of an older copy since)"
            ))
        } else {
            None
        }
    }
}

/// An LSN as PostgreSQL writes it (`16/B374D848`).
fn lsn_of(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

impl fmt::Display for Position {
    /// The LSN as PostgreSQL writes it (`16/B374D848`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.lsn >> 32, self.lsn & 0xFFFF_FFFF)
    }
}

/// What the state file says of the attempts at a table on a destination since it was last
/// recorded `done` (or `mismatch`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attempts {
    /// An attempt began that announced no `commit` line (a `begin` without `exact`, written by
    /// an older copyman): it may have committed without a word.
    pub unannounced: bool,
    /// The `commit` lines, oldest first: each attempt that sent (or was about to send) its
    /// COMMIT.
    pub commits: Vec<Committing>,
    /// The destination's transaction ids of the attempts since the last `commit` line (its
    /// `transaction` lines, [`StateFile::transaction`]): none of them announced a COMMIT — but
    /// a state file restored from a copy taken while its job ran lacks the `commit` line of a
    /// transaction that did commit, which a resume asks about (jobs46 F1).
    pub began: Vec<u64>,
    /// When the destination's server had started as its last attempt began (its `position`
    /// line's): one started since may have forgotten a transaction id of that attempt that
    /// was never durable and given it to another transaction, whose commit is not the
    /// attempt's (crash51 F1, recheck51b F1: taken for it, the table done with another's rows).
    pub started: Option<i64>,
    /// When the destination's statistics had last been reset as its last attempt began (its
    /// `position` line's [`Position::reset`]): reset since, the server ran crash recovery.
    pub reset: Option<i64>,
}

/// A `commit` line: an attempt about to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committing {
    /// The rows it copied.
    pub rows: u64,
    /// The destination's transaction ids (`txid_current()`, with epoch): one, or one per range
    /// of a split table.
    pub xids: Vec<u64>,
}

impl Recorded {
    /// What the attempts at `table` on `destination` since its last `done` or `mismatch`
    /// recorded (nothing when none began).
    pub fn attempts(&self, table: &str, destination: &str) -> Attempts {
        self.attempts
            .get(&(table.to_owned(), destination.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// Every destination the file has a record of.
    pub fn destinations(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self.begun.iter().map(|(_, d)| d.as_str()).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The rows committed for `table` on `destination`, if it is done.
    pub fn done(&self, table: &str, destination: &str) -> Option<u64> {
        self.done
            .get(&(table.to_owned(), destination.to_owned()))
            .copied()
    }

    /// Whether the run that wrote it claimed `table` on `destination` ([`StateFile::claim`]).
    pub fn claimed(&self, table: &str, destination: &str) -> bool {
        self.claimed
            .contains(&(table.to_owned(), destination.to_owned()))
    }

    /// Where `destination`'s WAL stood when a table last began there, if recorded.
    pub fn position(&self, destination: &str) -> Option<Position> {
        self.positions.get(destination).copied()
    }

    /// Whether its job may have committed rows of `table` on `destination`: done there (or
    /// found different), or a COMMIT announced (or a copy begun by an older copyman, which
    /// announced none) — not a copy begun and rolled back.
    pub fn may_hold_rows(&self, table: &str, destination: &str) -> bool {
        let attempts = self.attempts(table, destination);
        self.done(table, destination).is_some()
            || self.mismatched(table, destination).is_some()
            || attempts.unannounced
            || !attempts.commits.is_empty()
    }

    /// Every record of `from` taken as `to`'s — its copies on each destination, what they
    /// covered —: a table renamed since, whose earlier copies are its own.
    pub fn move_records(&mut self, from: &str, to: &str) {
        fn rekey<V>(map: &mut HashMap<(String, String), V>, from: &str, to: &str) {
            let keys: Vec<(String, String)> =
                map.keys().filter(|(t, _)| t == from).cloned().collect();
            for (table, destination) in keys {
                if let Some(value) = map.remove(&(table, destination.clone())) {
                    map.insert((to.to_owned(), destination), value);
                }
            }
        }
        rekey(&mut self.done, from, to);
        rekey(&mut self.done_xids, from, to);
        rekey(&mut self.done_reset, from, to);
        rekey(&mut self.checksums, from, to);
        rekey(&mut self.mismatched, from, to);
        rekey(&mut self.attempts, from, to);
        rekey(&mut self.done_covers, from, to);
        for set in [&mut self.begun, &mut self.claimed] {
            let moved: Vec<(String, String)> =
                set.iter().filter(|(t, _)| t == from).cloned().collect();
            for (table, destination) in moved {
                set.remove(&(table, destination.clone()));
                set.insert((to.to_owned(), destination));
            }
        }
        if let Some(oids) = self.covers.remove(from) {
            self.covers.insert(to.to_owned(), oids);
        }
        self.last_done = self.newest_done();
    }

    /// Every record of `table` forgotten: another relation of its name now, never copied.
    pub fn forget(&mut self, table: &str) {
        let other = |(t, _): &(String, String)| t != table;
        self.done.retain(|k, _| other(k));
        self.done_xids.retain(|k, _| other(k));
        self.done_reset.retain(|k, _| other(k));
        self.checksums.retain(|k, _| other(k));
        self.mismatched.retain(|k, _| other(k));
        self.attempts.retain(|k, _| other(k));
        self.done_covers.retain(|k, _| other(k));
        self.begun.retain(other);
        self.claimed.retain(other);
        self.covers.remove(table);
        self.last_done = self.newest_done();
    }

    /// [`Recorded::last_done`] as the records say now: on each destination, the table still
    /// recorded done whose copy's transaction id is the highest (by name among a group's tables
    /// sharing it). One found different since (`mismatch`) is not done: the restore check
    /// asked for its rows refused every resume after a `--verify` had found it so (recheck54
    /// F7).
    fn newest_done(&self) -> HashMap<String, (String, Committing)> {
        let mut newest: HashMap<String, (String, Committing)> = HashMap::new();
        for ((table, dest), xids) in &self.done_xids {
            let Some(&rows) = self.done.get(&(table.clone(), dest.clone())) else {
                continue;
            };
            let top = xids.iter().copied().max();
            let newer = newest.get(dest).is_none_or(|(t, c)| {
                let theirs = c.xids.iter().copied().max();
                top > theirs || (top == theirs && table < t)
            });
            if newer {
                let xids = xids.clone();
                newest.insert(dest.clone(), (table.clone(), Committing { rows, xids }));
            }
        }
        newest
    }

    /// Whether a copy of `table` to `destination` began (and may have committed).
    pub fn begun(&self, table: &str, destination: &str) -> bool {
        self.begun
            .contains(&(table.to_owned(), destination.to_owned()))
    }

    /// The destination's transaction ids of every copy of `table` on `destination` the file
    /// records that may have committed rows there (done, a COMMIT announced, an attempt begun
    /// since); `None` where one may have committed rows it has no id of (an attempt recorded by
    /// an older copyman, a copy found different from the source).
    pub fn copies_xids(&self, table: &str, destination: &str) -> Option<Vec<u64>> {
        let attempts = self.attempts(table, destination);
        if attempts.unannounced || self.mismatched(table, destination).is_some() {
            return None;
        }
        let mut xids: Vec<u64> = (attempts.commits.iter())
            .flat_map(|c| c.xids.iter().copied())
            .chain(attempts.began)
            .collect();
        if self.done(table, destination).is_some_and(|rows| rows > 0) {
            let key = (table.to_owned(), destination.to_owned());
            xids.extend(self.done_xids.get(&key)?);
        }
        Some(xids)
    }

    /// The rows committed for `table` on `destination` by a run whose checksum found them
    /// different from the source's, if that is its last record.
    pub fn mismatched(&self, table: &str, destination: &str) -> Option<u64> {
        self.mismatched
            .get(&(table.to_owned(), destination.to_owned()))
            .copied()
    }
}

/// The state file of a running job.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    /// `None` once a record written in part could not be taken back: no more are written. With
    /// it, where this run's records end.
    file: Mutex<Option<(File, u64)>>,
    /// The file's device and inode: the path must still name it when a record is written.
    identity: (u64, u64),
    /// The file at its path was found altered, and marked so ([`ALTERED_LINE`]).
    marked: std::sync::atomic::AtomicBool,
}

/// The line a run writes into its state file once it found it altered under it (cut short,
/// replaced, written by another program): a resume refuses the file rather than read what is
/// left of its records (recheck45 F1: the cut file, whose torn last line a crash leaves too, was
/// resumed, a table copied twice).
const ALTERED_LINE: &str = "altered";

/// What a resume says of a state file it cannot trust (damaged, or altered under its run), and
/// the way on.
const UNTRUSTED: &str = "what it records cannot be trusted (a table committed may be \
                         missing from it); check what each destination holds, then run the job \
                         again without --resume, with --truncate (which empties each table \
                         first) and another --state";

/// What a job finds at its state file's path before it writes there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Nothing (or nothing readable as a file).
    Nothing,
    /// An empty file: no record of any run (a state file is never empty once started).
    Empty,
    /// A copyman state file (of any format).
    StateFile,
    /// Something else: a user's file.
    Other,
}

/// What is at `path` ([`Found`]).
pub fn found(path: &Path) -> Found {
    use std::io::Read;

    // A device, a FIFO, a directory: nothing a job could keep its records in — told before it
    // is opened (a FIFO's open waits for its other end: recheck54b F5, a run that hung).
    if fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Found::Other;
    }
    let Ok(file) = File::open(path) else {
        return Found::Nothing;
    };
    // Its first line, whole: one of the formats this copyman reads (`copyman-job 3` with a
    // carriage return, or of a version it does not know, is none of them).
    let mut start = Vec::new();
    match file.take(HEADER.len() as u64).read_to_end(&mut start) {
        Ok(0) => Found::Empty,
        Ok(_)
            if [HEADER, HEADER_V2, HEADER_V1]
                .iter()
                .any(|h| start == h.as_bytes()) =>
        {
            Found::StateFile
        }
        Ok(_) | Err(_) => Found::Other,
    }
}

/// Whether `a` and `b` name one file: the same device and inode where both exist, else the same
/// absolute path once their directories are resolved.
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;

    if let (Ok(x), Ok(y)) = (fs::metadata(a), fs::metadata(b)) {
        return (x.dev(), x.ino()) == (y.dev(), y.ino());
    }
    let resolved = |p: &Path| {
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = dir.map_or_else(|| Path::new(".").to_owned(), Path::to_owned);
        fs::canonicalize(dir)
            .ok()
            .map(|d| d.join(p.file_name().unwrap_or_default()))
    };
    resolved(a).is_some_and(|x| Some(x) == resolved(b))
}

fn escape(field: &str) -> String {
    field
        .replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads the records of the state file at `path` (nothing when it does not exist).
///
/// # Errors
/// It exists but cannot be read, or is not a copyman state file.
pub fn read(path: &Path) -> io::Result<Recorded> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Recorded::default()),
        Err(e) => return Err(e),
    };
    if text.starts_with(HEADER_V1) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "written by an older copyman, which named destinations by their connection strings: \
             it cannot be resumed safely; run the job again without --resume (with --truncate to \
             empty the tables it filled)",
        ));
    }
    if !text.is_empty() && !text.starts_with(HEADER) && !text.starts_with(HEADER_V2) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a copyman state file", path.display()),
        ));
    }
    let mut recorded = Recorded::default();
    // Each table's last `covers` line read so far: what a `done` after it covered.
    let mut latest_covers: HashMap<String, Vec<u64>> = HashMap::new();
    // Whole lines only: a torn last line was never fsynced. One that is no record, before it,
    // is damage — a file cut short and written after, two merged, an edit — whose records cannot
    // be trusted (signals45 F3: a `commit` run into a torn line was read past, its table copied
    // again by the resume): refused, by its line.
    let damaged = |n: usize, line: &str| {
        let shown: String = line.trim_end().chars().take(60).collect();
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is damaged: its line {n} is no record this copyman writes ({shown:?}): cut \
                 short and written after, edited, or two files merged, so {UNTRUSTED}",
                path.display()
            ),
        )
    };
    // Marked by its run as altered under it: refused as that, whatever else it holds.
    if text.lines().skip(1).any(|l| l == ALTERED_LINE) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} was altered while its job ran (cut short, replaced or written by another \
                 program), and that run marked it so: {UNTRUSTED}",
                path.display()
            ),
        ));
    }
    let lines = text.split_inclusive('\n').filter(|l| l.ends_with('\n'));
    for (n, line) in lines.enumerate().skip(1) {
        let fields: Vec<String> = line
            .trim_end_matches('\n')
            .split('\t')
            .map(unescape)
            .collect();
        let line_damaged = || damaged(n + 1, line);
        match fields.as_slice() {
            [kind, selection] if kind == "selection" => {
                recorded.selection = Some(selection.clone());
            }
            [kind, source] if kind == "source" => recorded.source = Some(source.clone()),
            [kind] if kind == "truncate" => recorded.truncate = true,
            [kind, table, dest] if kind == "claim" => {
                recorded.claimed.insert((table.clone(), dest.clone()));
            }
            [kind, table, oids] if kind == "covers" => {
                let oids: Vec<u64> = oids.split(',').filter_map(|o| o.parse().ok()).collect();
                let known = recorded.covers.entry(table.clone()).or_default();
                for &oid in &oids {
                    if !known.contains(&oid) {
                        known.push(oid);
                    }
                }
                latest_covers.insert(table.clone(), oids);
            }
            [kind] if kind == "verify" => recorded.verify = true,
            [kind, from, to] if kind == "renamed" => {
                recorded.move_records(from, to);
                if let Some(oids) = latest_covers.remove(from) {
                    latest_covers.insert(to.clone(), oids);
                }
            }
            [kind, table] if kind == "replaced" => {
                recorded.forget(table);
                latest_covers.remove(table);
            }
            [kind, log] if kind == "atomic" => {
                let log = PathBuf::from(log);
                recorded.atomic.get_or_insert_with(|| log.clone());
                if !recorded.logs.contains(&log) {
                    recorded.logs.push(log);
                }
            }
            [kind, key, name] if kind == "named" => {
                recorded.names.insert(name.clone(), key.clone());
            }
            [kind, boot, pid, start] if kind == "writer" => {
                if let (Ok(pid), Ok(start)) = (pid.parse(), start.parse()) {
                    recorded.writer = Some(Writer {
                        boot: boot.clone(),
                        pid,
                        start,
                    });
                }
            }
            [kind, dest, timeline, lsn, started @ ..]
                if kind == "position" && started.len() < 3 =>
            {
                // (A line torn into the next one's fields is damage, not a position.)
                let (Ok(timeline), Some(lsn)) = (timeline.parse(), lsn_of(lsn)) else {
                    return Err(line_damaged());
                };
                let reset = started.get(1).and_then(|s| s.parse().ok());
                let started = started.first().and_then(|s| s.parse().ok());
                let at = Position {
                    timeline,
                    lsn,
                    started,
                    reset,
                };
                recorded.positions.insert(dest.clone(), at);
            }
            [kind, table, dest, sum] if kind == "checksum" => {
                let key = (table.clone(), dest.clone());
                recorded.checksums.insert(key, sum.clone());
            }
            [kind, table, dest] if kind == "begin" => {
                let key = (table.clone(), dest.clone());
                recorded.checksums.remove(&key);
                recorded.begun.insert(key.clone());
                let at = recorded.positions.get(dest);
                let (started, reset) = (at.and_then(|p| p.started), at.and_then(|p| p.reset));
                let attempts = recorded.attempts.entry(key).or_default();
                attempts.unannounced = true;
                attempts.started = started;
                attempts.reset = reset;
            }
            [kind, table, dest, exact] if kind == "begin" && exact == EXACT => {
                let key = (table.clone(), dest.clone());
                recorded.checksums.remove(&key);
                recorded.begun.insert(key.clone());
                let at = recorded.positions.get(dest);
                let (started, reset) = (at.and_then(|p| p.started), at.and_then(|p| p.reset));
                let attempts = recorded.attempts.entry(key).or_default();
                // The transactions of an attempt before it never committed: it would have
                // recorded its `commit` line before this one.
                attempts.began.clear();
                attempts.started = started;
                attempts.reset = reset;
            }
            // Where the table kept its rows, an earlier version wrote: nothing goes by it now.
            [kind, _, _, _] if kind == "storage" => {}
            [kind, table, dest, rows, xids] if kind == "commit" => {
                let xids: Option<Vec<u64>> = xids.split(',').map(|x| x.parse().ok()).collect();
                let (Ok(rows), Some(xids)) = (rows.parse(), xids) else {
                    return Err(line_damaged());
                };
                let key = (table.clone(), dest.clone());
                recorded.begun.insert(key.clone());
                let attempts = recorded.attempts.entry(key).or_default();
                attempts.commits.push(Committing { rows, xids });
                attempts.began.clear();
            }
            [kind, table, dest, xid] if kind == "transaction" => {
                let Ok(xid) = xid.parse() else {
                    return Err(line_damaged());
                };
                let key = (table.clone(), dest.clone());
                if let Some(attempts) = recorded.attempts.get_mut(&key) {
                    attempts.began.push(xid);
                }
            }
            [kind, _, _, rows] if kind == "done" && rows.parse::<u64>().is_err() => {
                return Err(line_damaged());
            }
            [kind, table, dest, rows] if kind == "done" => {
                if let Ok(rows) = rows.parse() {
                    let key = (table.clone(), dest.clone());
                    let acknowledged = recorded.attempts.get(&key).and_then(|a| a.commits.last());
                    if let Some(newest) = acknowledged.and_then(|c| c.xids.iter().copied().max()) {
                        let highest = recorded.highest_xid.entry(dest.clone()).or_default();
                        *highest = (*highest).max(newest);
                    }
                    let committed = recorded
                        .attempts
                        .get(&key)
                        .and_then(|a| a.commits.last())
                        .filter(|c| c.rows > 0)
                        .cloned();
                    if let Some(committed) = committed {
                        recorded
                            .done_xids
                            .insert((table.clone(), dest.clone()), committed.xids);
                    }
                    if let Some(oids) = latest_covers.get(table) {
                        recorded.done_covers.insert(key.clone(), oids.clone());
                    }
                    match recorded.attempts.get(&key).and_then(|a| a.reset) {
                        Some(reset) => recorded.done_reset.insert(key.clone(), reset),
                        None => recorded.done_reset.remove(&key),
                    };
                    recorded.begun.insert(key.clone());
                    recorded.mismatched.remove(&key);
                    recorded.attempts.remove(&key);
                    recorded.done.insert(key, rows);
                }
            }
            // Committed, but not as the source has it: not done (whatever came before).
            [kind, table, dest, rows] if kind == "mismatch" => {
                if let Ok(rows) = rows.parse() {
                    let key = (table.clone(), dest.clone());
                    recorded.begun.insert(key.clone());
                    recorded.done.remove(&key);
                    recorded.checksums.remove(&key);
                    recorded.attempts.remove(&key);
                    recorded.mismatched.insert(key, rows);
                }
            }
            _ => return Err(line_damaged()),
        }
    }
    recorded.last_done = recorded.newest_done();
    Ok(recorded)
}

impl StateFile {
    /// Opens the state file at `path` (its directory is created): kept as it is to resume, or
    /// started anew.
    ///
    /// # Errors
    /// The directory or the file cannot be created or written.
    pub fn open(path: &Path, resume: bool) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        // One run of a job at a time: two would record over each other, and a resume must not
        // redo a table another run is copying. The kernel releases the lock when we die.
        if let Err(e) = file.try_lock() {
            return Err(match e {
                fs::TryLockError::WouldBlock => held_by_another_run(),
                fs::TryLockError::Error(e) => e,
            });
        }
        if !resume || file.metadata()?.len() == 0 {
            file.set_len(0)?;
            file.write_all(HEADER.as_bytes())?;
            file.sync_all()?;
            sync_dir(path)?;
        } else {
            upgrade_header(path)?;
            cut_torn_line(&file)?;
        }
        let (identity, end) = {
            use std::os::unix::fs::MetadataExt;
            let meta = file.metadata()?;
            ((meta.dev(), meta.ino()), meta.len())
        };
        Ok(Self {
            path: path.to_owned(),
            file: Mutex::new(Some((file, end))),
            identity,
            marked: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Records this process as the file's writer ([`Writer`]): a resume of a copy of the file
    /// (which no lock of this run guards) refuses while it is alive. Nothing where `/proc`
    /// cannot say.
    ///
    /// # Errors
    /// Writing or syncing failed.
    pub fn writer(&self) -> io::Result<()> {
        match Writer::this() {
            Some(w) => self.append(&["writer", &w.boot, &w.pid.to_string(), &w.start.to_string()]),
            None => Ok(()),
        }
    }

    /// Records the job's selection ([`Selection::key`](crate::select::Selection::key)): a resume
    /// of another selection is refused (a partitioned table and its partitions, selected one
    /// way and then the other, would be copied twice).
    ///
    /// # Errors
    /// Writing or syncing failed.
    pub fn selection(&self, selection: &str) -> io::Result<()> {
        self.append(&["selection", selection])
    }

    /// Records the job's source, as it names itself ([`identity_key`]): a resume from another
    /// source is refused (its rows would join the first one's).
    ///
    /// # Errors
    /// Writing or syncing failed.
    pub fn source(&self, key: &str) -> io::Result<()> {
        self.append(&["source", key])
    }

    /// Records how a destination was named (`name`, its [`Server::name`](crate::job::Server))
    /// beside what it is (`key`): a resume that cannot reach it (`--keep-going`) still knows
    /// what the file records there, and reports its tables recorded done as such (they were
    /// said failed, jobs41 F2).
    ///
    /// # Errors
    /// Writing or syncing failed.
    pub fn named(&self, key: &str, name: &str) -> io::Result<()> {
        self.append(&["named", key, name])
    }

    /// Records that the table the earlier runs copied as `from` is `to` now (renamed since, on
    /// the source): their records of `from` are `to`'s ([`Recorded::move_records`]), and
    /// `from`'s later ones another table's.
    ///
    /// # Errors
    /// Writing or syncing failed.
    pub fn renamed(&self, from: &str, to: &str) -> io::Result<()> {
        self.append(&["renamed", from, to])
    }

    /// Records that `table` is another table on the source than the earlier runs copied under
    /// its name (made again since): their records of it are forgotten ([`Recorded::forget`]).
    ///
    /// # Errors
    /// Writing or syncing failed.
    pub fn replaced(&self, table: &str) -> io::Result<()> {
        self.append(&["replaced", table])
    }

    /// Records that the job empties its tables before it copies them (`--truncate`), for its
    /// resumes ([`Recorded::truncate`]).
    ///
    /// # Errors
    /// Writing or syncing failed.
    pub fn truncate(&self) -> io::Result<()> {
        self.append(&["truncate"])
    }

    /// Records that the job commits its tables with two-phase commit (`--atomic`), its
    /// decisions in `log`, for its resumes ([`Recorded::atomic`]).
    ///
    /// # Errors
    /// Writing or syncing failed.
    pub fn atomic(&self, log: &Path) -> io::Result<()> {
        self.append(&["atomic", &log.to_string_lossy()])
    }

    /// Records that the job verifies its tables (`--verify`), for its resumes
    /// ([`Recorded::verify`]).
    ///
    /// # Errors
    /// Writing or syncing failed.
    pub fn verify(&self) -> io::Result<()> {
        self.append(&["verify"])
    }

    /// Records, in one write, that this run copies each of `pairs` (table, destination): a job
    /// of the same directory started while this one runs refuses them ([`running`]).
    ///
    /// # Errors
    /// Writing or syncing failed.
    pub fn claim<'a>(&self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> io::Result<()> {
        let mut lines = String::new();
        for (table, destination) in pairs {
            lines.push_str(&line(&["claim", table, destination]));
        }
        self.write(&lines, Durable::Now)
    }

    /// Records, in one write, the source's oids of the relations each table's copy covers
    /// (`covers  TABLE  OID,OID…`: the table and every partition below it), so that a resume
    /// knows a table renamed, detached or attached since by what it is on the source.
    ///
    /// # Errors
    /// Writing or syncing failed.
    pub fn covers<'a>(
        &self,
        tables: impl IntoIterator<Item = (&'a str, &'a [u64])>,
    ) -> io::Result<()> {
        let mut lines = String::new();
        for (table, oids) in tables {
            let oids: Vec<String> = oids.iter().map(u64::to_string).collect();
            lines.push_str(&line(&["covers", table, &oids.join(",")]));
        }
        self.write(&lines, Durable::Now)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&self, fields: &[&str]) -> io::Result<()> {
        self.write(&line(fields), Durable::Now)
    }

    fn write(&self, lines: &str, durable: Durable) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        // A poisoned lock only means another worker panicked mid-write; the file is append-only.
        let mut slot = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some((file, end)) = slot.as_mut() else {
            return Err(io::Error::other(
                "an earlier record was written in part (a full disk?) and could not be taken \
                 back: the state file takes no more records",
            ));
        };
        // The file this run holds, as it left it: one removed, replaced (an editor's save, a
        // `sed -i`) or cut short (`> file`, a restored copy) while the job runs has lost or
        // will lose records — a `commit` written to a replaced file is nowhere a resume reads,
        // and one appended to a cut file runs into a torn line (signals45 F3, F4: tables
        // copied twice by the resume, exit 0). Nothing more is written (each record said why):
        // the table in flight is not committed, no other is begun.
        let held = file.metadata()?;
        let before = held.len();
        if let Some(altered) = self.altered(&held, *end) {
            if !self.marked.swap(true, std::sync::atomic::Ordering::SeqCst) {
                self.mark_altered();
            }
            return Err(altered);
        }
        let written = file
            .write_all(lines.as_bytes())
            .and_then(|()| match durable {
                Durable::Now => file.sync_data(),
                Durable::WithTheNext => Ok(()),
            });
        // A record written in part (a disk full part-way) would run into the next one, whose
        // write then succeeds while the line they make reads as nothing: a `commit` lost so, its
        // table committed and copied again by a resume. It is cut off, or nothing more is written.
        match written {
            Ok(()) => *end = before + lines.len() as u64,
            Err(_) => {
                if file
                    .set_len(before)
                    .and_then(|()| file.sync_data())
                    .is_err()
                {
                    *slot = None;
                }
            }
        }
        written
    }

    /// Marks the file at its path as altered under this run ([`ALTERED_LINE`], after a line end:
    /// a torn line before it ends there), where there is one. Best effort: a removed file has
    /// nothing to mark, and a resume finds no state file.
    fn mark_altered(&self) {
        use std::os::unix::fs::FileExt;

        let Ok(mut file) = OpenOptions::new().read(true).append(true).open(&self.path) else {
            return;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut last = [b'\n'];
        if len > 0 {
            let _ = file.read_exact_at(&mut last, len - 1);
        }
        let start = if last[0] == b'\n' { "" } else { "\n" };
        let _ = file
            .write_all(format!("{start}{}", line(&[ALTERED_LINE])).as_bytes())
            .and_then(|()| file.sync_data());
    }

    /// Why the file at its path is no longer as this run left it (`held`: the file this run
    /// holds, as it is now; its records ending at `end`): moved, removed or replaced, cut
    /// short, or written by another program.
    fn altered(&self, held: &fs::Metadata, end: u64) -> Option<io::Error> {
        use std::os::unix::fs::MetadataExt;

        let len = held.len();
        let here = fs::metadata(&self.path).map(|m| (m.dev(), m.ino()));
        // Moved (`mv`), not removed: the file this run holds still has a name, and its records
        // are whole there (jobs46 F5: "no record of this run" sent the user to copy every
        // table again). Looked for beside its old path.
        if here.as_ref().ok() != Some(&self.identity) && held.nlink() > 0 && len == end {
            let found = (self.path.parent())
                .and_then(|dir| {
                    fs::read_dir(if dir.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        dir
                    })
                    .ok()
                })
                .into_iter()
                .flatten()
                .flatten()
                .map(|entry| entry.path())
                .find(|p| {
                    fs::symlink_metadata(p).is_ok_and(|m| (m.dev(), m.ino()) == self.identity)
                });
            let (at, resume) = match &found {
                Some(new) => (
                    format!(" to {}", new.display()),
                    format!("--resume --state {}", new.display()),
                ),
                None => (
                    " (it still has a name, in another directory)".to_owned(),
                    "--resume and --state at its new path".to_owned(),
                ),
            };
            return Some(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} {MOVED}{at}: its records up to now are whole there, but this run keeps no \
                     lock at its new path, so nothing more is recorded: no other table is begun \
                     and none in flight commits; run the job again with {resume}",
                    self.path.display()
                ),
            ));
        }
        let what = if here.ok() != Some(self.identity) {
            format!(
                "{REMOVED_OR_REPLACED}: its records (and the lock that keeps another run of this job out) are no longer there"
            )
        } else if len != end {
            format!(
                "{ALTERED}: it holds {len} bytes where this run's records end at {end} (cut short, \
                 or written by another program), so its records cannot be trusted"
            )
        } else {
            return None;
        };
        Some(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} {what}; nothing more is recorded, so no other table is begun and none in \
                 flight commits; another run started since finds no record of what this one \
                 committed",
                self.path.display()
            ),
        ))
    }

    /// Records that the copy of `table` to `destination` begins (before its transaction does),
    /// and that it will record its [`commit`](Self::commit) before it commits.
    ///
    /// # Errors
    /// Writing or syncing failed. A state file removed, replaced or cut short while its job runs
    /// (a cache cleaner, a `mv`, an editor's save, `> file`) is refused here, as at every record:
    /// its records, and the lock that keeps another run of the job out, are no longer at its
    /// path or no longer whole, so the job begins nothing more.
    pub fn begin(&self, table: &str, destination: &str) -> io::Result<()> {
        self.begin_at(&[table], destination, None)
    }

    /// [`begin`](Self::begin) for each of `tables` on `destination`, and where the destination's
    /// WAL stands (`at`, read on a session there just before: a `position` line), in one write.
    ///
    /// # Errors
    /// As [`begin`](Self::begin).
    pub fn begin_at(
        &self,
        tables: &[&str],
        destination: &str,
        at: Option<Position>,
    ) -> io::Result<()> {
        let mut lines = String::new();
        if let Some(at) = at {
            // (The reset only after the start: a field's place says what it is.)
            let started = at.started.map(|s| s.to_string());
            let reset = at
                .reset
                .filter(|_| started.is_some())
                .map(|s| s.to_string());
            let (timeline, lsn) = (at.timeline.to_string(), at.to_string());
            let mut fields = vec!["position", destination, timeline.as_str(), lsn.as_str()];
            fields.extend(started.as_deref());
            fields.extend(reset.as_deref());
            lines.push_str(&line(&fields));
        }
        for table in tables {
            lines.push_str(&line(&["begin", table, destination, EXACT]));
        }
        // Not synced: a process that dies leaves it written all the same, and an operating
        // system that crashes ends every transaction it began (none committed: a COMMIT waits
        // for its durable `commit` record, whose sync takes this line along).
        self.write(&lines, Durable::WithTheNext)
    }

    /// Records the id of a transaction begun on `destination` (`txid_current()`, with epoch)
    /// to copy `tables` there (after their [`begin`](Self::begin_at)): a resume whose state
    /// file lacks their `commit` line — a copy of the file taken while the job ran, restored —
    /// asks the destination whether it committed, rather than copy them there twice.
    ///
    /// # Errors
    /// As [`begin`](Self::begin).
    pub fn transaction(&self, tables: &[&str], destination: &str, xid: u64) -> io::Result<()> {
        let xid = xid.to_string();
        let lines: String = (tables.iter())
            .map(|table| line(&["transaction", table, destination, &xid]))
            .collect();
        // Not synced, as `begin`: a crash of the system ends the transaction uncommitted.
        self.write(&lines, Durable::WithTheNext)
    }

    /// Records that `table`, `rows` rows copied to `destination` in its transactions `xids`
    /// (one per range of a split table), is about to commit there. Call before sending the
    /// `COMMIT` (or `PREPARE TRANSACTION`), and send none if this fails: a resume takes an
    /// attempt without this record for one that never committed.
    ///
    /// Under `--verify`, `source_sum` is the source's checksum of the table in the run's
    /// snapshot, recorded first (a `checksum` line): a run stopped between the COMMIT and its
    /// comparison leaves a resume what to compare the destination with — not the source as it
    /// is then, which a live source has changed since (a faithful copy was called different,
    /// and every resume refused it).
    ///
    /// # Errors
    /// Writing or syncing failed.
    pub fn commit(
        &self,
        table: &str,
        destination: &str,
        rows: u64,
        xids: &[u64],
        source_sum: Option<&str>,
    ) -> io::Result<()> {
        let xids = xids
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut lines = source_sum
            .map(|sum| line(&["checksum", table, destination, sum]))
            .unwrap_or_default();
        lines.push_str(&line(&[
            "commit",
            table,
            destination,
            &rows.to_string(),
            &xids,
        ]));
        self.write(&lines, Durable::Now)
    }

    /// Records that `table` is committed on `destination` with `rows` rows, and under
    /// `--verify` the `checksum` it matched the source's with. Call only after the COMMIT
    /// succeeded (and the checksums matched).
    ///
    /// # Errors
    /// Writing or syncing failed (the table then counts as not done: it is copied again).
    pub fn done(
        &self,
        table: &str,
        destination: &str,
        rows: u64,
        checksum: Option<&str>,
    ) -> io::Result<()> {
        // Not synced: lost in an operating system's crash, the table's durable `commit` record
        // (its transaction ids) remains, and a resume asks the destination: done if they
        // committed (`txid_status`). The checksum first, in the same write.
        let mut lines = checksum
            .map(|sum| line(&["checksum", table, destination, sum]))
            .unwrap_or_default();
        lines.push_str(&line(&["done", table, destination, &rows.to_string()]));
        self.write(&lines, Durable::WithTheNext)
    }

    /// Records that `table` committed on `destination` with `rows` rows, but its checksum
    /// differed from the source's (or could not be compared): not done, so that a resume
    /// copies it again (emptying it first, in the same transaction).
    ///
    /// # Errors
    /// Writing or syncing failed (the table counts as not done all the same: it has no `done`
    /// record).
    pub fn mismatch(&self, table: &str, destination: &str, rows: u64) -> io::Result<()> {
        self.append(&["mismatch", table, destination, &rows.to_string()])
    }
}

/// Whether a record is synced to disk before its write returns ([`StateFile::write`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durable {
    /// Now (`fdatasync`): what a resume needs after any crash (the header, the claims, a
    /// `commit` announced before its COMMIT is sent, a `mismatch`).
    Now,
    /// With the next record synced, or whenever the kernel writes it: what a resume can do
    /// without after an operating system's crash (a `begin`, a `done`). A process that dies
    /// leaves it written all the same. (One sync per table and destination instead of three:
    /// thousands of tables to several destinations spent seconds syncing, serialised.)
    WithTheNext,
}

/// Cuts a last line a crash left without its newline (never fsynced, read as nothing): the
/// next record appended would else be glued to it and lost.
fn cut_torn_line(file: &File) -> io::Result<()> {
    use std::os::unix::fs::FileExt;

    let len = file.metadata()?.len();
    let mut at = len;
    let mut block = [0u8; 4096];
    while at > 0 {
        let start = at.saturating_sub(block.len() as u64);
        let chunk = &mut block[..(at - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(newline) = chunk.iter().rposition(|&b| b == b'\n') {
            let end = start + newline as u64 + 1;
            if end < len {
                file.set_len(end)?;
                file.sync_all()?;
            }
            return Ok(());
        }
        at = start;
    }
    Ok(())
}

/// One record: its fields escaped, tab-separated, with its newline.
fn line(fields: &[&str]) -> String {
    let mut line = fields
        .iter()
        .map(|f| escape(f))
        .collect::<Vec<_>>()
        .join("\t");
    line.push('\n');
    line
}

/// A process that writes a state file, as this host knows it for as long as it lives: the
/// host's boot, its process id and its start (in clock ticks since the boot), so that a process
/// id given again to another process is not taken for it. Recorded as a `writer BOOT PID START`
/// line when a run opens the file ([`StateFile::writer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot: String,
    /// Its process id.
    pub pid: u32,
    /// Its start, field 22 of `/proc/PID/stat`.
    pub start: u64,
}

impl Writer {
    /// This process, where `/proc` says it.
    pub fn this() -> Option<Self> {
        let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let pid = std::process::id();
        Some(Self {
            boot: boot.trim().to_owned(),
            pid,
            start: Self::start_of(pid)?,
        })
    }

    /// When process `pid` started (field 22 of its `/proc/PID/stat`, after the command's
    /// parenthesised name, which may hold spaces).
    fn start_of(pid: u32) -> Option<u64> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after_name = &stat[stat.rfind(')')? + 1..];
        after_name.split_whitespace().nth(19)?.parse().ok()
    }

    /// Whether it is another process than this one, alive on this host now (the same boot, its
    /// process id started when it did).
    pub fn alive(&self) -> bool {
        let Some(this) = Self::this() else {
            return false;
        };
        self.boot == this.boot
            && self.pid != this.pid
            && Self::start_of(self.pid) == Some(self.start)
    }
}

/// The error of a run whose state file another run holds: one run of a job at a time.
pub fn held_by_another_run() -> io::Error {
    io::Error::new(
        io::ErrorKind::WouldBlock,
        "another copyman is running this job (the state file is locked)",
    )
}

/// The copyman state files beside `path` (in its directory, `path` itself left out however it
/// is spelt; a file is one where it starts with a state file's header): the earlier jobs whose
/// records a new job of that directory reads, as the default directory's (jobs43 F4: two append
/// jobs whose `--state` files shared a directory copied a table they shared twice, exit 0).
pub fn beside(path: &Path) -> Vec<PathBuf> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let itself = fs::canonicalize(path).ok();
    // A file that cannot be opened for its permissions counts where it is named as one (its
    // records unknown, which the job says).
    let is_state = |p: &Path| {
        let mut start = [0; HEADER.len()];
        match File::open(p) {
            Ok(mut f) => {
                io::Read::read_exact(&mut f, &mut start).is_ok()
                    && [HEADER, HEADER_V2].iter().any(|h| start == h.as_bytes())
            }
            Err(e) => {
                e.kind() == io::ErrorKind::PermissionDenied
                    && p.extension().is_some_and(|x| x == "state")
            }
        }
    };
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|p| p.is_file() && fs::canonicalize(p).ok() != itself && is_state(p))
        .collect()
}

/// The state files beside `path` (in its directory, `path` itself left out however it is
/// spelt) that a copyman run holds now ([`running`]): the jobs whose claims a job of that
/// directory must see.
pub fn running_beside(path: &Path) -> Vec<PathBuf> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let itself = fs::canonicalize(path).ok();
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|p| p.is_file() && fs::canonicalize(p).ok() != itself)
        .filter(|p| running(p))
        .collect()
}

/// Whether a copyman run holds the state file at `path` now (its lock is taken): its claims
/// count. A file that cannot be opened has no run.
pub fn running(path: &Path) -> bool {
    File::open(path).is_ok_and(|file| {
        // Taken for an instant if free (a run starting in that instant is refused as "another
        // copyman is running this job", and may be started again).
        matches!(file.try_lock_shared(), Err(fs::TryLockError::WouldBlock))
    })
}

fn sync_dir(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_state_file_removed_or_replaced_under_its_job_begins_nothing_more() {
        let dir = std::env::temp_dir().join(format!("copyman-state-moved-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("job.state");
        let state = StateFile::open(&path, false).unwrap();
        state.begin("t", "d").unwrap();
        fs::rename(&path, dir.join("moved.state")).unwrap();
        let err = state.begin("u", "d").unwrap_err();
        // Moved: where its records are, whole, is said (jobs46 F5).
        let moved = dir.join("moved.state");
        assert!(
            err.to_string().contains(&format!(
                "was moved while the job ran to {}: its records up to now are whole there",
                moved.display()
            )),
            "{err}"
        );
        // Removed (a second name taken away): no record of it anywhere.
        let other = dir.join("other.state");
        let second = StateFile::open(&other, false).unwrap();
        fs::remove_file(&other).unwrap();
        let err = second.begin("u", "d").unwrap_err();
        assert!(err.to_string().contains("was removed or replaced"), "{err}");
        // Another file there now (a second run's) is not this job's either.
        fs::write(&path, HEADER).unwrap();
        assert!(state.begin("u", "d").is_err());
        fs::remove_file(&path).unwrap();
        assert!(state.begin("u", "d").is_err());
        assert_eq!(found(&path), Found::Nothing);
        fs::write(&path, "").unwrap();
        assert_eq!(found(&path), Found::Empty);
        fs::write(&path, "id,name\n").unwrap();
        assert_eq!(found(&path), Found::Other);
        assert_eq!(found(&dir.join("moved.state")), Found::StateFile);
        // A first line like a state file's that is none this copyman reads.
        for head in ["copyman-job 3\r\n", "copyman-job 99\n", "copyman-job "] {
            fs::write(&path, head).unwrap();
            assert_eq!(found(&path), Found::Other, "{head:?}");
        }
        fs::write(&path, HEADER_V1).unwrap();
        assert_eq!(found(&path), Found::StateFile);
        assert!(same_file(&path, &dir.join(".").join("job.state")));
        assert!(same_file(&dir.join("new.log"), &dir.join("./new.log")));
        assert!(!same_file(&path, &dir.join("moved.state")));
        fs::remove_dir_all(&dir).unwrap();
    }

    use super::*;

    #[test]
    fn a_position_read_back_tells_a_failover_and_a_restore() {
        let at = Position::parse("0000000100000016000000B3", "16/B374D848").unwrap();
        assert_eq!((at.timeline, at.lsn), (1, 0x16_B374_D848));
        assert_eq!(at.to_string(), "16/B374D848");
        let later = Position::parse("0000000100000017000000B3", "17/0").unwrap();
        assert_eq!(later.went_back_from(&at), None);
        assert_eq!(at.went_back_from(&at), None);
        assert!(at.went_back_from(&later).unwrap().contains("behind 17/0"));
        let promoted = Position::parse("0000000200000016000000B3", "16/B374D900").unwrap();
        assert!(
            promoted
                .went_back_from(&at)
                .unwrap()
                .contains("timeline 2 now, on 1")
        );
        assert_eq!(Position::parse("xyz", "16/B3"), None);
        assert_eq!(Position::parse("0000000100000016000000B3", "16B3"), None);

        let dir = std::env::temp_dir().join(format!("copyman-position-{}", std::process::id()));
        let path = dir.join("job.state");
        let state = StateFile::open(&path, false).unwrap();
        state.begin_at(&["\"a\""], "host=x", Some(at)).unwrap();
        state
            .begin_at(&["\"b\"", "\"c\""], "host=x", Some(later))
            .unwrap();
        let recorded = read(&path).unwrap();
        assert_eq!(recorded.position("host=x"), Some(later));
        assert!(recorded.begun("\"c\"", "host=x"));
        let _ = fs::remove_dir_all(&dir);
    }

    /// A `storage` line an earlier version wrote before a `commit` is read and left aside.
    #[test]
    fn an_earlier_versions_storage_line_is_read() {
        let dir = std::env::temp_dir().join(format!("copyman-job-storage-{}", std::process::id()));
        let path = dir.join("job.state");
        let state = StateFile::open(&path, false).unwrap();
        state.begin("\"a\"", "host=x").unwrap();
        state
            .write(
                &line(&["storage", "\"a\"", "host=x", "16384"]),
                Durable::Now,
            )
            .unwrap();
        state.commit("\"a\"", "host=x", 7, &[41], None).unwrap();
        state.done("\"a\"", "host=x", 7, None).unwrap();
        assert_eq!(read(&path).unwrap().done("\"a\"", "host=x"), Some(7));
        let _ = fs::remove_dir_all(&dir);
    }

    /// A line that is no record before the last one (a file cut short and written after: a
    /// torn `position` run into a `commit`) is damage: the file is refused, by its line.
    #[test]
    fn a_torn_line_within_the_file_is_damage() {
        let dir = std::env::temp_dir().join(format!("copyman-job-torn-{}", std::process::id()));
        let path = dir.join("job.state");
        let state = StateFile::open(&path, false).unwrap();
        state.begin("\"a\"", "host=x").unwrap();
        state.commit("\"a\"", "host=x", 7, &[41], None).unwrap();
        drop(state);
        assert!(read(&path).is_ok());
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"position\tsystem commit\t\"b\"\thost=x\t5\t42\n")
            .unwrap();
        f.write_all(b"done\t\"a\"\thost=x\t7\n").unwrap();
        let err = read(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(
            err.to_string()
                .contains("is damaged: its line 4 is no record"),
            "{err}"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    /// The newest table done on a destination is the one a resume's restore check reads; once
    /// found different (`mismatch`), the newest still done is (recheck54 F7).
    #[test]
    fn the_newest_table_done_is_one_still_done() {
        let dir = std::env::temp_dir().join(format!("copyman-job-newest-{}", std::process::id()));
        let path = dir.join("job.state");
        let state = StateFile::open(&path, false).unwrap();
        for (table, xid) in [("a", 10), ("c", 12), ("b", 11)] {
            state.begin(table, "d1").unwrap();
            state.commit(table, "d1", 5, &[xid], None).unwrap();
            state.done(table, "d1", 5, None).unwrap();
        }
        let newest = |path: &Path| read(path).unwrap().last_done.get("d1").cloned().unwrap();
        assert_eq!(newest(&path).0, "c");
        state.mismatch("c", "d1", 5).unwrap();
        assert_eq!(newest(&path).0, "b");
        assert_eq!(newest(&path).1.xids, [11]);
        drop(state);
        let _ = fs::remove_dir_all(&dir);
    }

    /// A `position` line's server start reads back as the start of each attempt begun after it
    /// (crash51 F1), and one without it (an older copyman's) as unknown.
    #[test]
    fn an_attempt_knows_when_its_server_had_started() {
        let dir = std::env::temp_dir().join(format!("copyman-job-started-{}", std::process::id()));
        let path = dir.join("job.state");
        let state = StateFile::open(&path, false).unwrap();
        let mut at = Position::parse("0000000100000016000000B3", "16/B374D848").unwrap();
        state.begin_at(&["a"], "d1", Some(at)).unwrap();
        at.started = Some(1_764_000_000_123_456);
        state.begin_at(&["b"], "d1", Some(at)).unwrap();
        at.reset = Some(1_764_000_000_123_999);
        state.begin_at(&["c"], "d1", Some(at)).unwrap();
        state.done("c", "d1", 5, None).unwrap();
        drop(state);
        let recorded = read(&path).unwrap();
        assert_eq!(recorded.attempts("a", "d1").started, None);
        assert_eq!(
            recorded.attempts("b", "d1").started,
            Some(1_764_000_000_123_456)
        );
        assert_eq!(recorded.attempts("b", "d1").reset, None);
        assert_eq!(
            recorded.done_reset.get(&("c".into(), "d1".into())),
            Some(&1_764_000_000_123_999)
        );
        assert_eq!(recorded.position("d1"), Some(at));
        let _ = fs::remove_dir_all(&dir);
    }

    /// A `renamed` line makes the records before it the new name's, the old name's after it
    /// another table's; a `replaced` line forgets the records before it.
    #[test]
    fn renamed_and_replaced_lines_read_back_as_the_tables_records() {
        let dir = std::env::temp_dir().join(format!("copyman-job-renamed-{}", std::process::id()));
        let path = dir.join("job.state");
        let state = StateFile::open(&path, false).unwrap();
        state.covers([("b", &[10][..]), ("c", &[20][..])]).unwrap();
        for table in ["b", "c"] {
            state.begin(table, "d1").unwrap();
            state.commit(table, "d1", 5, &[41], None).unwrap();
            state.done(table, "d1", 5, None).unwrap();
        }
        state.renamed("b", "b_old").unwrap();
        state.replaced("c").unwrap();
        state.covers([("b", &[11][..])]).unwrap();
        state.begin("b", "d1").unwrap();
        drop(state);
        let recorded = read(&path).unwrap();
        assert_eq!(recorded.done("b_old", "d1"), Some(5));
        assert_eq!(recorded.covers.get("b_old"), Some(&vec![10]));
        assert_eq!(
            recorded.done_xids.get(&("b_old".into(), "d1".into())),
            Some(&vec![41])
        );
        assert_eq!(recorded.done("b", "d1"), None);
        assert!(recorded.begun("b", "d1"));
        assert_eq!(recorded.covers.get("b"), Some(&vec![11]));
        assert_eq!(recorded.done("c", "d1"), None);
        assert!(!recorded.begun("c", "d1") && !recorded.covers.contains_key("c"));
        let _ = fs::remove_dir_all(&dir);
    }

    /// A file cut short under its run refuses the run's next record, and is marked so: a
    /// resume refuses it, though what is left reads as a crash's file (a torn last line).
    #[test]
    fn a_file_cut_under_its_run_is_marked_altered() {
        let dir = std::env::temp_dir().join(format!("copyman-job-cut-{}", std::process::id()));
        let path = dir.join("job.state");
        let state = StateFile::open(&path, false).unwrap();
        state.begin("\"a\"", "host=x").unwrap();
        state.commit("\"a\"", "host=x", 7, &[41], None).unwrap();
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let err = state.done("\"a\"", "host=x", 7, None).unwrap_err();
        assert!(err.to_string().contains(ALTERED), "{err}");
        drop(state);
        let err = read(&path).unwrap_err();
        assert!(
            err.to_string().contains("was altered while its job ran"),
            "{err}"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    /// A table's done copy covered what its run's `covers` line said, not what a later run
    /// recorded (a partition attached since) nor what every run's lines add up to.
    #[test]
    fn a_done_copy_covers_what_its_run_recorded() {
        let dir = std::env::temp_dir().join(format!("copyman-job-covers-{}", std::process::id()));
        let path = dir.join("job.state");
        let state = StateFile::open(&path, false).unwrap();
        state.covers([("m", &[1, 2][..]), ("x", &[3][..])]).unwrap();
        state.begin("m", "d1").unwrap();
        state.done("m", "d1", 5, None).unwrap();
        // The next run: 3 attached to m since; m copied again to d2 only.
        state.covers([("m", &[1, 2, 3][..])]).unwrap();
        state.begin("m", "d2").unwrap();
        state.done("m", "d2", 7, None).unwrap();
        drop(state);
        let read = read(&path).unwrap();
        let covered = |d: &str| {
            read.done_covers
                .get(&("m".to_owned(), d.to_owned()))
                .cloned()
        };
        assert_eq!(covered("d1"), Some(vec![1, 2]));
        assert_eq!(covered("d2"), Some(vec![1, 2, 3]));
        assert_eq!(read.covers.get("m"), Some(&vec![1, 2, 3]));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn records_are_read_back_and_a_torn_line_counts_for_nothing() {
        let dir = std::env::temp_dir().join(format!("copyman-job-state-{}", std::process::id()));
        let path = dir.join("sub/job.state");
        let state = StateFile::open(&path, false).unwrap();
        state.begin("\"a\"", "host=x").unwrap();
        state.done("\"a\"", "host=x", 10, None).unwrap();
        state.begin("\"b\tc\"", "host=x\\y").unwrap();
        // A table whose checksum differed is not done, and a later done (a resume) makes it so.
        state.begin("\"m\"", "host=x").unwrap();
        state.mismatch("\"m\"", "host=x", 3).unwrap();
        state.begin("\"n\"", "host=x").unwrap();
        state.mismatch("\"n\"", "host=x", 4).unwrap();
        state.done("\"n\"", "host=x", 4, Some("4:99")).unwrap();
        // An attempt announces its commit; a `begin` of format 2 does not; done forgets both.
        state.begin("\"c\"", "host=x").unwrap();
        state.commit("\"c\"", "host=x", 7, &[41, 42], None).unwrap();
        state.begin("\"c\"", "host=x").unwrap();
        state.append(&["begin", "\"c\"", "host=x"]).unwrap();
        state.begin("\"d\"", "host=x").unwrap();
        state.commit("\"d\"", "host=x", 2, &[43], None).unwrap();
        state.done("\"d\"", "host=x", 2, None).unwrap();
        drop(state);
        let recorded = read(&path).unwrap();
        let c = recorded.attempts("\"c\"", "host=x");
        assert!(c.unannounced);
        assert_eq!(
            c.commits,
            vec![Committing {
                rows: 7,
                xids: vec![41, 42]
            }]
        );
        assert_eq!(recorded.attempts("\"d\"", "host=x"), Attempts::default());
        assert_eq!(recorded.attempts("\"a\"", "host=x"), Attempts::default());
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"done\t\"b\tc\"\thost=x\\\\y\t5").unwrap();
        let read = read(&path).unwrap();
        assert_eq!(read.done("\"a\"", "host=x"), Some(10));
        assert!(read.begun("\"b\tc\"", "host=x\\y"));
        assert_eq!(read.done("\"m\"", "host=x"), None);
        assert!(read.begun("\"m\"", "host=x"));
        assert_eq!(read.mismatched("\"m\"", "host=x"), Some(3));
        assert_eq!(read.done("\"n\"", "host=x"), Some(4));
        assert_eq!(read.mismatched("\"n\"", "host=x"), None);
        // Its checksum with it; none for a table done without one, or begun again since.
        let sum = |t: &str| {
            read.checksums
                .get(&(t.to_owned(), "host=x".to_owned()))
                .cloned()
        };
        assert_eq!(sum("\"n\""), Some("4:99".to_owned()));
        assert_eq!(sum("\"a\""), None);
        // A second run of the same job is refused while the first holds the file; a job of
        // the same directory reads its claims only then. The torn line above is cut as the
        // file is opened: the records appended after it are read.
        assert!(!running(&path));
        let held = StateFile::open(&path, true).unwrap();
        held.claim([("\"e\"", "host=x"), ("\"f\"", "host=y")])
            .unwrap();
        assert!(running(&path));
        let claims = super::read(&path).unwrap();
        assert!(claims.claimed("\"e\"", "host=x") && claims.claimed("\"f\"", "host=y"));
        assert!(!claims.claimed("\"e\"", "host=y") && !claims.begun("\"e\"", "host=x"));
        let err = StateFile::open(&path, true).unwrap_err();
        assert!(err.to_string().contains("another copyman"), "{err}");
        drop(held);
        assert!(!running(&path));
        assert_eq!(read.done("\"b\tc\"", "host=x\\y"), None, "torn line");
        // Resuming keeps the records; starting anew drops them.
        drop(StateFile::open(&path, true).unwrap());
        assert_eq!(super::read(&path).unwrap().done.len(), 3);
        drop(StateFile::open(&path, false).unwrap());
        assert!(super::read(&path).unwrap().done.is_empty());
        // Format 2 is read: its `begin` lines announce no commit.
        fs::write(&path, "copyman-job 2\nbegin\t\"a\"\thost=x\n").unwrap();
        assert!(
            super::read(&path)
                .unwrap()
                .attempts("\"a\"", "host=x")
                .unannounced
        );
        // A resume that goes on with it marks it format 3 (an older copyman then refuses the
        // lines it adds), keeping every record.
        drop(StateFile::open(&path, true).unwrap());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "copyman-job 3\nbegin\t\"a\"\thost=x\n"
        );
        assert!(
            super::read(&path)
                .unwrap()
                .attempts("\"a\"", "host=x")
                .unannounced
        );
        fs::write(&path, "something else\n").unwrap();
        assert!(super::read(&path).is_err());
        fs::write(&path, "copyman-job 1\ndone\t\"a\"\thost=x\t10\n").unwrap();
        let err = super::read(&path).unwrap_err();
        assert!(err.to_string().contains("older copyman"), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }
}
