//! `copyman table` with many tables: the flags of a job, and its progress and report. The job
//! itself (selection, snapshot, workers, state file) is copyman-job's.
//!
//! A `copyman table` runs a job when it names more or fewer than one table, or gives any of the
//! selection or job flags; one plain `TABLE` keeps the single-table copy.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::Hasher;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use copyman_job::commit::Action;
use copyman_job::job::{
    self, Answer, DEFAULT_JOBS, DestPlan, Event, Interrupt, JobError, JobReport, Options, Server,
    Side, Status,
};
use copyman_job::select::{self, Selection};
use indicatif::{HumanBytes, HumanCount, MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::args::{ArgError, Endpoint, LowTable, Output, Safety, endpoints};
use crate::conn::{Env, ServerSpec};
use crate::fit::{Demand, Rooms};
use crate::report::{self, Exit, Fatal};
use crate::run::Unreachable;
use crate::signals;
use crate::sql::{Format, TableName};
use crate::watch::{JobWatch, NoteFn};

/// The flags of a job (`copyman table` with many tables).
#[derive(clap::Args, Debug, Default)]
pub(crate) struct LowJob {
    /// Copy every table of the schemas matching PATTERN (as pg_dump's -n; given with -t, both
    /// select: every table either takes, where pg_dump takes only -t's); repeatable. A table
    /// the source's role cannot read is refused, never left out; a partition whose partitioned
    /// table is selected too is copied through it, once.
    #[arg(short = 'n', long = "schema", value_name = "PATTERN")]
    pub(crate) schemas: Vec<String>,
    /// Copy the tables matching PATTERN (as pg_dump's -t: `*`, `?`, "Quoted", schema.table);
    /// ordinary and partitioned tables only, not views or foreign tables (name one as TABLE to
    /// copy it); repeatable.
    #[arg(short = 't', long = "table", value_name = "PATTERN")]
    pub(crate) include: Vec<String>,
    /// Leave out the tables matching PATTERN; repeatable. A partitioned table's partitions are
    /// left out with it, unless named.
    #[arg(short = 'T', long = "exclude-table", value_name = "PATTERN")]
    pub(crate) exclude: Vec<String>,
    /// Leave out the tables of the schemas matching PATTERN (as pg_dump's -N; the same as
    /// --exclude-table 'PATTERN.*'); repeatable.
    #[arg(short = 'N', long = "exclude-schema", value_name = "PATTERN")]
    pub(crate) exclude_schemas: Vec<String>,
    /// Tables copied at once, each to every destination [default: 4]; capped, with a warning,
    /// to what every server accepts now (max_connections less the connections in use and the
    /// slots reserved for superusers, which a job leaves free).
    #[arg(short = 'j', long, value_name = "N")]
    pub(crate) jobs: Option<usize>,
    /// Copy each table under a snapshot of its own (for a source that cannot export one): the
    /// tables then come from different moments of the source.
    #[arg(long)]
    pub(crate) no_snapshot: bool,
    /// The state file [default: a file under $XDG_CACHE_HOME/copyman/jobs or
    /// ~/.cache/copyman/jobs named for the servers (by identity, not spelling) and the selection].
    #[arg(long, value_name = "PATH")]
    pub(crate) state: Option<PathBuf>,
    /// Skip the tables the state file records as done (one that holds none of the rows recorded
    /// there — emptied since, or a clone of the recorded server — is copied again, said in a
    /// note; the last one done on a destination, whose rows name that run's transaction, is
    /// refused instead, with the way: --resume --verify; with --verify a done table is compared
    /// too, and one that differs is said and no longer recorded done: the next --resume of a
    /// job that empties its tables copies it again, that of an append leaves it to you — mended,
    /// a --resume --verify compares it again, done if it matches); copy the others again, asking
    /// each destination whether an earlier run's transaction committed (done if it did; copied
    /// again, without emptying the table, if not); a table is emptied first, in the same
    /// transaction, only where that cannot be told. Refused when there is no state file to resume
    /// from.
    #[arg(long)]
    pub(crate) resume: bool,
    /// Compare an order-independent checksum of every table's copied columns (a column
    /// generated there is computed, not copied) on the source (in the job's
    /// snapshot) and on each destination (after its commit; with --resume, the tables done
    /// earlier too, with the checksum recorded when they matched, so that a source that changed
    /// since is no difference); a table that differs is not recorded as done there (--resume
    /// copies it again where the job empties its tables; an append's leaves it to you: mended,
    /// a --resume --verify compares it again).
    #[arg(long)]
    pub(crate) verify: bool,
    /// Cap the read rate from the source, across all jobs (bytes per second, at least 32k; k,
    /// M, G suffixes are powers of 1024).
    #[arg(long, value_name = "BYTES/s")]
    pub(crate) max_rate: Option<String>,
    /// Copy an ordinary table whose heap is larger than SIZE (bytes on disk, its TOAST aside:
    /// the ranges split the heap; k, M, G suffixes) as several
    /// ctid ranges side by side, all in one snapshot (the job's; under --no-snapshot, one of the
    /// table's own) (at most --jobs ranges, at least 2); every range's count and the table's
    /// total are checked against the source. A table emptied first (--truncate, or taken up
    /// again by --resume) is copied whole, its TRUNCATE committing with its rows.
    #[arg(long, value_name = "SIZE")]
    pub(crate) split_larger_than: Option<String>,
}

impl LowJob {
    fn any(&self) -> bool {
        !self.schemas.is_empty()
            || !self.include.is_empty()
            || !self.exclude.is_empty()
            || !self.exclude_schemas.is_empty()
            || self.jobs.is_some()
            || self.no_snapshot
            || self.state.is_some()
            || self.resume
            || self.verify
            || self.max_rate.is_some()
            || self.split_larger_than.is_some()
    }
}

/// Whether `copyman table` runs a job: not exactly one `TABLE`, or a flag of the job given.
pub(crate) fn is_job(low: &LowTable) -> bool {
    low.tables.len() != 1 || low.job.any()
}

/// Why `copyman table` runs a job, in the user's words: "2 TABLEs", "--verify given".
fn why_a_job(low: &LowTable) -> String {
    let job = &low.job;
    let flags = [
        (!job.schemas.is_empty(), "--schema"),
        (!job.include.is_empty(), "--table"),
        (!job.exclude.is_empty(), "--exclude-table"),
        (!job.exclude_schemas.is_empty(), "--exclude-schema"),
        (job.jobs.is_some(), "--jobs"),
        (job.no_snapshot, "--no-snapshot"),
        (job.state.is_some(), "--state"),
        (job.resume, "--resume"),
        (job.verify, "--verify"),
        (job.max_rate.is_some(), "--max-rate"),
        (job.split_larger_than.is_some(), "--split-larger-than"),
    ];
    let given: Vec<&str> = flags
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, f)| *f)
        .collect();
    match (low.tables.len(), given.is_empty()) {
        (1, false) => format!("{} given", given.join(", ")),
        (0, true) => "no TABLE given: every table".to_owned(),
        (0, false) => format!("{} given", given.join(", ")),
        (n, true) => format!("{n} TABLEs"),
        (n, false) => format!("{n} TABLEs, {}", given.join(", ")),
    }
}

/// A validated job.
#[derive(Debug)]
pub(crate) struct JobArgs {
    pub(crate) source: ServerSpec,
    destinations: Vec<ServerSpec>,
    selection: Selection,
    options: Options,
    /// Where the default state file goes (no `--state`): its name comes from the servers'
    /// identities ([`default_state`]).
    state_dir: Option<PathBuf>,
    dry_run: bool,
    /// `--lock-timeout`: `lock_timeout` of every session of the job.
    lock_timeout: Option<Duration>,
    /// `--decision-log` given to a `--resume` without `--atomic`: the log of a job that began
    /// with `--atomic`, in place of the one its state file names.
    resume_log: Option<PathBuf>,
    /// `--decision-log` was given (with `--atomic` or not).
    log_given: bool,
}

/// The directory of the jobs' default state files: `$XDG_CACHE_HOME/copyman/jobs`, or
/// `~/.cache/copyman/jobs`; `None` where neither variable is set.
pub(crate) fn default_state_dir(env: &Env) -> Option<PathBuf> {
    let cache = (env.xdg_dir("XDG_CACHE_HOME").map(PathBuf::from))
        .or_else(|| env.home().map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("copyman").join("jobs"))
}

/// The lowest `--max-rate`, in bytes per second (pg_basebackup's).
const MIN_RATE: u64 = 32 << 10;

/// Reads a size: a number (a fraction with a unit: `1.5M`) with an optional k, M or G (powers of
/// 1024; `KiB`, `MiB`, `GiB` as copyman prints them too: ux70 F5), an optional `B` and `/s`.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let t = t.strip_suffix(['B', 'b']).unwrap_or(t);
    let t = t.strip_suffix(['i', 'I']).unwrap_or(t);
    let (digits, factor) = match t.chars().last()? {
        'k' | 'K' => (&t[..t.len() - 1], 1u64 << 10),
        'm' | 'M' => (&t[..t.len() - 1], 1 << 20),
        'g' | 'G' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let digits = digits.trim_end();
    match digits.split_once('.') {
        Some((whole, fraction)) if factor > 1 && !fraction.is_empty() => {
            let ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
            if !ok(whole) || !ok(fraction) || whole.is_empty() || fraction.len() > 9 {
                return None;
            }
            let scale = 10u64.pow(fraction.len() as u32);
            let whole = whole.parse::<u64>().ok()?.checked_mul(factor)?;
            let part = fraction.parse::<u64>().ok()?.checked_mul(factor)? / scale;
            whole.checked_add(part)
        }
        _ => digits.parse::<u64>().ok()?.checked_mul(factor),
    }
}

/// A stable 64-bit FNV-1a hash (the default state file's name).
#[derive(Clone)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl JobArgs {
    /// Validates a `copyman table` that runs a job.
    ///
    /// # Errors
    /// Flags of the single-table copy, files as endpoints, bad names or patterns.
    pub(crate) fn from_low(low: LowTable, env: &Env) -> Result<Self, ArgError> {
        for (given, flag) in [
            (low.columns.is_some(), "--columns"),
            (low.condition.is_some(), "--where"),
            (low.target_table.is_some(), "--target-table"),
            (low.header, "--header"),
        ] {
            // One table named: what made it a job is to leave out (types46 F4: "this is a job"
            // said of one table, and no way forward).
            if given && low.tables.len() == 1 {
                return Err(ArgError::usage(format!(
                    "{flag} is for one table copied alone, and {} makes this run a job, which \
                     copies whole tables under their own names between servers (its --verify \
                     checks only such copies): leave that out",
                    why_a_job(&low)
                )));
            }
            if given {
                return Err(ArgError::usage(format!(
                    "{flag} is for one table copied alone, and this is a job ({}): a job \
                     copies whole tables between servers",
                    why_a_job(&low)
                )));
            }
        }
        let tables = low
            .tables
            .iter()
            .map(|t| {
                crate::args::note_truncated("TABLE", t);
                TableName::parse(t).map_err(|e| {
                    let tip = (crate::conn::piece_tip(t))
                        .or_else(|| crate::args::table_list_tip(t))
                        .or_else(|| crate::args::table_pattern_tip(t))
                        .map(|tip| format!(" ({tip})"));
                    ArgError::usage(format!("TABLE: {e}{}", tip.unwrap_or_default()))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // A schema left out is its tables left out (jobs43 F2: pg_dump's -N was refused).
        let mut exclude = low.job.exclude.clone();
        for schema in &low.job.exclude_schemas {
            select::parse_schema_pattern(schema)
                .map_err(|e| ArgError::usage(format!("--exclude-schema: {e}")))?;
            exclude.push(format!("{schema}.*"));
        }
        // A pattern with a comma matches a name with one: said, as it is likely a list.
        for pattern in &low.job.include {
            if let Some(tip) = crate::args::table_list_tip(pattern) {
                report::warn(format_args!("--table {pattern}: {tip}"));
            }
        }
        // No table and no selection flag is every table: with --truncate, every table of each
        // destination emptied — also what a `copyman table $T … --truncate` with `$T` unset
        // says (ux70 F13). Said in words, as pg_dump's --clean takes no default either. (Not a
        // resume's: its selection is the earlier run's, whose first command chose it.)
        if low.truncate
            && !low.job.resume
            && tables.is_empty()
            && low.job.schemas.is_empty()
            && low.job.include.is_empty()
            && exclude.is_empty()
        {
            return Err(ArgError::usage(
                "--truncate with no TABLE and no --schema or --table would empty every table of \
                 each destination and refill it from the source: name the tables, or say every \
                 table with --schema '*'",
            ));
        }
        let selection = Selection {
            tables,
            schemas: low.job.schemas.clone(),
            include: low.job.include.clone(),
            exclude,
        };
        select::selection_query(&selection).map_err(|e| ArgError::usage(e.to_string()))?;
        let jobs = low.job.jobs.unwrap_or(DEFAULT_JOBS);
        if jobs == 0 {
            return Err(ArgError::usage("--jobs must be at least 1"));
        }
        // Each job holds a session on every server (more for a split table): no server takes
        // more than a few hundred, and the plan sizes its workers from it before the servers
        // are asked how many they accept.
        if jobs > MAX_JOBS {
            return Err(ArgError::usage(format!(
                "--jobs {jobs}: at most {MAX_JOBS} (each one holds a connection to every server; \
                 copyman caps it further to what the servers accept)"
            )));
        }
        let max_rate = match &low.job.max_rate {
            Some(text) => {
                let rate = parse_size(text).filter(|&r| r > 0).ok_or_else(|| {
                    ArgError::usage(format!(
                        "--max-rate {text:?}: give bytes per second, a number with K, M or G \
                         (1024-based, B optional: KiB, MiB), e.g. 50M or 1.5MiB"
                    ))
                })?;
                // pg_basebackup's floor: below it a job of any size runs for days, and a bare
                // number is bytes, not pg_basebackup's kilobytes nor megabytes.
                if rate < MIN_RATE {
                    return Err(ArgError::usage(format!(
                        "--max-rate {text:?} is {rate} bytes per second: at least 32K (a bare \
                         number is bytes; e.g. 50M for 50 MiB/s)"
                    )));
                }
                Some(rate)
            }
            None => None,
        };
        let split_larger_than = match &low.job.split_larger_than {
            Some(text) => Some(parse_size(text).filter(|&r| r > 0).ok_or_else(|| {
                ArgError::usage(format!(
                    "--split-larger-than {text:?}: give a size in bytes, a number with K, M or \
                     G (1024-based, B optional), e.g. 1G"
                ))
            })?),
            None => None,
        };
        let (source, destinations) = endpoints(&low.from, &low.to, env, low.safety.stall_timeout)?;
        crate::args::refuse_other_client_encodings(&source, &destinations)?;
        // The limits and checks mean what they mean for one table (and `--encoding`, for file
        // and stdin endpoints only, is refused as for any copy between servers).
        let safety = Safety::from_low(&low.safety, &source, &destinations)?;
        // One table made a job by a job's option (--max-rate, --verify …): said as that.
        let why = why_a_job(&low);
        let server = |e: Endpoint| match e {
            Endpoint::Server(spec) => Ok(*spec),
            other if low.tables.len() == 1 => Err(ArgError::usage(format!(
                "{why}: a job's options copy between servers, and {} is not a server (a file, \
                 a directory, stdin or stdout): leave them out to copy one table to or from a \
                 file",
                other.display()
            ))),
            other => Err(ArgError::usage(format!(
                "a job of many tables copies between servers: {} is not a server (a file, a \
                 directory, stdin or stdout)",
                other.display()
            ))),
        };
        let source = server(source)?;
        let destinations = destinations
            .into_iter()
            .map(server)
            .collect::<Result<Vec<_>, _>>()?;
        // The default state file is named once the servers said who they are (in `run`).
        let (state, state_dir) = match &low.job.state {
            Some(path) => (crate::args::to_be_written("--state", path)?, None),
            None => {
                let dir = default_state_dir(env).ok_or_else(|| {
                    ArgError::usage("--state is needed: neither XDG_CACHE_HOME nor HOME is set")
                })?;
                (dir.clone(), Some(dir))
            }
        };
        low.atomic.decision_log_alone(low.job.resume)?;
        let options = Options {
            jobs,
            truncate: low.truncate,
            format: low.format.map(Format::from),
            keep_going: low.keep_going,
            snapshot: !low.job.no_snapshot,
            verify: low.job.verify,
            max_rate,
            state,
            resume: low.job.resume,
            split_larger_than,
            two_phase: if low.atomic.atomic {
                Some(crate::args::decision_log_to_write(
                    low.atomic.decision_log.clone(),
                    env,
                )?)
            } else {
                None
            },
            stall_timeout: safety.stall_timeout,
            allow_count_mismatch: safety.allow_count_mismatch,
            interrupt: Interrupt::new(),
            other_states: Vec::new(),
            data_encoding: None,
            left_out: Vec::new(),
            unreachable: Vec::new(),
        };
        Ok(Self {
            source,
            destinations,
            selection,
            options,
            state_dir,
            dry_run: low.dry_run,
            lock_timeout: safety.lock_timeout,
            log_given: low.atomic.decision_log.is_some(),
            resume_log: low.atomic.decision_log.filter(|_| !low.atomic.atomic),
        })
    }

    /// Every server, for `-W`.
    pub(crate) fn servers_mut(&mut self) -> Vec<&mut ServerSpec> {
        std::iter::once(&mut self.source)
            .chain(&mut self.destinations)
            .collect()
    }
}

/// The default state file in `dir`: named for the source and the destinations as the servers
/// identify themselves (so that a resume finds it however they are spelled; a server that
/// cannot say is named by its connection string) and for the selection. A `resume` that adds
/// `--exclude-table` patterns (which it may) finds the earlier run's file, named for fewer.
///
/// # Errors
/// A server that cannot be reached (under `keep_going` a destination that cannot is named by
/// its connection string: the job leaves it out).
fn default_state(
    dir: &Path,
    source: &Server,
    dests: &[Server],
    selection: &Selection,
    (keep_going, resume): (bool, bool),
    passed_over: &[usize],
) -> Result<(PathBuf, bool), Unreachable> {
    let identity = |server: &Server, role: String| {
        let mut conn = (server.connect)().map_err(|e| Unreachable {
            role,
            endpoint: server.name.clone(),
            error: report::describe(&e),
        })?;
        Ok::<_, Unreachable>(
            job::identity(&mut conn)
                .unwrap_or_else(|| copyman_job::state::unidentified_key(&server.name)),
        )
    };
    // The source, then the destinations and the selection in one order whatever order they
    // were given in: the same job finds the same file.
    let mut hash = Fnv(0xcbf2_9ce4_8422_2325);
    hash.write(identity(source, "source".to_owned())?.as_bytes());
    let mut unasked = Vec::new();
    let mut destinations = dests
        .iter()
        .enumerate()
        .map(|(i, d)| {
            // Not asked again where it could not be reached (it would be another wait).
            let asked =
                (!passed_over.contains(&i)).then(|| identity(d, format!("destination {}", i + 1)));
            match asked {
                Some(Ok(id)) => Ok(id),
                Some(Err(e)) if !keep_going => Err(e),
                _ => {
                    unasked.push(format!("destination {}", i + 1));
                    Ok(copyman_job::state::unidentified_key(&d.name))
                }
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    destinations.sort_unstable();
    for id in destinations {
        hash.write(b"\0");
        hash.write(id.as_bytes());
    }
    hash.write(b"\0");
    let named = |key: String| {
        let mut hash = hash.clone();
        hash.write(key.as_bytes());
        dir.join(format!("{:016x}.state", hash.finish()))
    };
    let path = named(selection.key());
    // A file named before patterns were spelled one way (`--table BULK` then named another
    // file than `--table bulk`): still this job's.
    let spelled = named(selection.spelled_key());
    let path = if !path.exists() && spelled.exists() {
        spelled
    } else {
        path
    };
    // A resume with exclusions the earlier run did not have: its file is named for the
    // selection without them (the most of them kept first; at most 2^10 names asked).
    let path = match (resume && !path.exists()).then_some(&selection.exclude) {
        Some(exclude) if !exclude.is_empty() && exclude.len() <= 10 => {
            let n = exclude.len();
            let mut subsets: Vec<u32> = (0..(1u32 << n) - 1).collect();
            subsets.sort_by_key(|kept| std::cmp::Reverse(kept.count_ones()));
            subsets
                .into_iter()
                .map(|kept| {
                    named(
                        Selection {
                            exclude: (0..n)
                                .filter(|i| kept & (1 << i) != 0)
                                .map(|i| exclude[i].clone())
                                .collect(),
                            ..selection.clone()
                        }
                        .key(),
                    )
                })
                .find(|earlier| earlier.exists())
                .unwrap_or(path)
        }
        _ => path,
    };
    // Named by its connection string now, by what it is once it answers: a later resume would
    // look for another file (said again with the advice at the end). Where no destination
    // answered, the job begins nothing and writes no file: the same command again is the way.
    if !unasked.is_empty() && unasked.len() < dests.len() {
        let who = match unasked.len() {
            1 => "it is",
            _ => "they are",
        };
        report::warn(format_args!(
            "{} could not be asked who {who}, and the default state file's name depends on it: \
             a later --resume must name the file: --state {}",
            unasked.join(" and "),
            path.display()
        ));
    }
    Ok((path, !unasked.is_empty()))
}

/// A server of the job: every session it opens gets `lock_timeout` (`--lock-timeout`).
/// Each session it opens is told to `watch` as server `index` (0: the source, then each
/// destination): the sessions that plan the job are watched for lock waits.
fn server(
    spec: &ServerSpec,
    (lock_timeout, stall_timeout): (Option<Duration>, Option<Duration>),
    watch: &Arc<JobWatch>,
    index: usize,
) -> Server {
    let own = spec.own_settings();
    let spec = Arc::new(spec.clone());
    let watch = Arc::clone(watch);
    Server {
        name: spec.display.clone(),
        own_settings: Some(Arc::new(move || own.connect())),
        connect: Arc::new(move || {
            watch.connecting(index, true);
            let conn = spec.connect();
            watch.connecting(index, false);
            let mut conn = conn?;
            // The planning sessions get --stall-timeout's socket timeouts, as a single table's
            // do; a worker's sessions get them from the job, around each copy only.
            if watch.connected(index, &conn) && stall_timeout.is_some() {
                conn.set_timeout(stall_timeout)?;
            }
            if let Some(limit) = lock_timeout {
                conn.execute(&crate::limits::lock_timeout_sql(limit))?;
            }
            Ok(conn)
        }),
    }
}

/// Stops the watch however the run ends (the servers' connect functions hold it too).
struct StopWatch(Arc<JobWatch>);

impl Drop for StopWatch {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// The host each CONN naming several reached (the source's, each destination's): the CONN
/// alone does not say which of its servers holds the tables (recheck41 F6: said by a one-table
/// run's summary only).
struct Reached {
    source: Option<String>,
    destinations: Vec<Option<String>>,
}

impl Reached {
    fn of(source: &ServerSpec, destinations: &[ServerSpec]) -> Self {
        Self {
            source: source.reached(),
            destinations: destinations.iter().map(ServerSpec::reached).collect(),
        }
    }

    /// `copyman: destination 1 (u@a:5432,b:5432/db) is b:5432`, for each that names several.
    fn lines(&self, dests: &[Server]) -> Vec<String> {
        let source = (self.source.as_ref()).map(|host| format!("copyman: the source is {host}"));
        let each = (self.destinations.iter().zip(dests).enumerate()).filter_map(|(i, (at, s))| {
            Some(format!(
                "copyman: destination {} ({}) is {}",
                i + 1,
                s.name,
                at.as_ref()?
            ))
        });
        source.into_iter().chain(each).collect()
    }

    /// `reached` beside each record's destination, and the source's.
    fn add_to(&self, value: &mut Value) {
        value["source_reached"] = json!(self.source);
        if let Some(records) = value["tables"].as_array_mut() {
            for record in records {
                let at = (record["server"].as_str())
                    .and_then(|s| s.strip_prefix("destination "))
                    .and_then(|n| n.parse::<usize>().ok());
                let reached = (at.and_then(|n| n.checked_sub(1)))
                    .and_then(|i| self.destinations.get(i).cloned().flatten());
                record["reached"] = json!(reached);
            }
        }
    }
}

/// Whether the job's failures were all failures to connect ([`job::TableError::connect`], to
/// the source or a destination), and there was one.
fn only_connections_failed(report: &JobReport) -> bool {
    let mut failed = report.tables.iter().flat_map(|t| {
        let failed = t.destinations.iter().filter(|d| d.status == Status::Failed);
        failed.map(|d| d.error.as_ref().is_some_and(|e| e.connect))
    });
    failed.next() == Some(true) && failed.all(|connect| connect)
}

/// Whether a table is committed (or may be) on some destinations and not on the others: the
/// destinations disagree (exit 4), whatever stopped the job — a signal that came while its
/// COMMITs ran lets them finish, and one may fail (it exited 130, "interrupted", the table
/// committed on one destination).
fn split_across(report: &JobReport) -> bool {
    report.tables.iter().any(|t| {
        let committed = |d: &&job::DestResult| {
            matches!(
                d.status,
                Status::Committed | Status::PartlyCommitted | Status::InDoubt
            )
        };
        t.destinations.iter().any(|d| committed(&d))
            && t.destinations.iter().any(|d| !d.status.is_done())
    })
}

/// Whether a destination holds a table an earlier run committed (a resume found it done): the
/// destinations are then partly copied, whatever this run committed.
fn holds_earlier(report: &JobReport) -> bool {
    report.tables.iter().any(|t| {
        t.destinations
            .iter()
            .any(|d| matches!(d.status, Status::AlreadyDone | Status::Differs))
    })
}

/// [`fatal`], for a job whose destinations hold tables earlier runs committed (`earlier`): a
/// resume that stops before committing anything — its planning session lost, its state file
/// not written — leaves them, so the job is partly copied (exit 4), not "nothing committed"
/// (exit 1), and the words say so and what to do.
fn fatal_after(error: JobError, earlier: bool) -> anyhow::Error {
    match fatal(error).downcast::<Fatal>() {
        Ok(f) if earlier && f.exit == Exit::CopyFailed => Fatal {
            exit: Exit::Partial,
            message: format!(
                "{}; what earlier runs of the job committed stays committed: run again with \
                 --resume once this is mended",
                f.message
            ),
            ..f
        }
        .into(),
        Ok(f) => f.into(),
        Err(other) => other,
    }
}

/// Whether the state file at `path` records a table done.
fn done_earlier(path: &Path) -> bool {
    copyman_job::state::read(path).is_ok_and(|recorded| !recorded.done.is_empty())
}

fn fatal(error: JobError) -> anyhow::Error {
    if let JobError::Connect {
        role,
        server,
        error,
    } = error
    {
        return Unreachable {
            role,
            endpoint: server,
            error: report::ErrorInfo {
                sqlstate: error.sqlstate,
                message: error.message,
            },
        }
        .into();
    }
    let exit = match &error {
        JobError::Connect { .. } | JobError::Unreachable(_) => Exit::Connect,
        JobError::Destination { error, .. } if error.connect => Exit::Connect,
        JobError::Selection(_)
        | JobError::NotOnSource(_)
        | JobError::Empty(_)
        | JobError::Refused(_)
        | JobError::DecisionLog { .. } => Exit::Usage,
        // Another run of this job holds its state file: refused before anything, as the same
        // tables claimed by another job are (it exited 1, "the copy failed").
        JobError::State { error, .. } if error.kind() == io::ErrorKind::WouldBlock => Exit::Usage,
        // One that cannot be resumed from (damaged, altered under its run, an older format):
        // refused before anything, as a file that is none (exit 2).
        JobError::State { error, .. } if error.kind() == io::ErrorKind::InvalidData => Exit::Usage,
        _ => Exit::CopyFailed,
    };
    // What the source said, for `--json`'s `server` and `sqlstate`.
    let server = match &error {
        JobError::Snapshot(said) | JobError::Source(said) | JobError::NotOnSource(said) => Some((
            "source".to_owned(),
            report::ErrorInfo {
                sqlstate: said.sqlstate.clone(),
                message: said.message.clone(),
            },
        )),
        JobError::Destination { server, error } => Some((
            server.clone(),
            report::ErrorInfo {
                sqlstate: error.sqlstate.clone(),
                message: error.message.clone(),
            },
        )),
        _ => None,
    };
    Fatal {
        exit,
        message: error.to_string(),
        server,
    }
    .into()
}

/// Runs a job to its end and reports how it went.
///
/// # Errors
/// [`Fatal`] for what ends it before any table is copied; a broken pipe on stdout.
pub(crate) fn run(args: &JobArgs, output: Output) -> anyhow::Result<Exit> {
    let mut warned = BTreeSet::new();
    for spec in std::iter::once(&args.source).chain(&args.destinations) {
        for warning in &spec.warnings {
            if warned.insert(warning.clone()) {
                report::warn(warning);
            }
        }
    }
    // Signals: the first interrupts the job (the watch below carries it out), a second exits.
    if let Err(e) = signals::install_with(signals::JOB_STOPPING) {
        report::warn(format_args!("cannot handle signals: {e}"));
    }
    // A signal that exits at once (while connecting) prints a document too (it printed none).
    signals::set_json(output.json);
    // The progress display exists once the job runs; the watch starts before, for the plan.
    let display: Arc<OnceLock<Arc<Render>>> = Arc::new(OnceLock::new());
    let note: NoteFn = {
        let display = Arc::clone(&display);
        Arc::new(move |worker, note| {
            if let Some(render) = display.get() {
                render.note(worker, note);
            }
        })
    };
    let servers = std::iter::once((format!("source ({})", args.source.display), &args.source))
        .chain(
            args.destinations
                .iter()
                .enumerate()
                .map(|(i, d)| (format!("destination {} ({})", i + 1, d.display), d)),
        )
        .map(|(label, spec)| (label, spec.clone()))
        .collect();
    let watch = Arc::new(JobWatch::start(
        servers,
        args.options.jobs,
        args.options.interrupt.clone(),
        note,
        output.quiet,
    ));
    let _stop = StopWatch(Arc::clone(&watch));
    // After a first signal, the reminder names what the job waits for; a second signal says
    // what is known right then (from the plan and the job's events) before exiting.
    {
        let watch = Arc::clone(&watch);
        signals::set_waiting(move || watch.waiting_for());
    }
    {
        let watch = Arc::clone(&watch);
        signals::set_standby_waits(move || watch.standby_waits());
    }
    let ledger: Arc<Mutex<Ledger>> = Arc::new(Mutex::new(Ledger::default()));
    {
        let ledger = Arc::clone(&ledger);
        signals::set_committing(move || {
            crate::watch::lock_briefly(&ledger)
                .map(|ledger| ledger.committing())
                .unwrap_or_default()
        });
    }
    {
        let ledger = Arc::clone(&ledger);
        let json = output.json;
        signals::set_at_once(move |signal| match crate::watch::lock_briefly(&ledger) {
            Some(ledger) => ledger.exit_at_once(signal, json),
            None => {
                report::warn("what committed is not known right now: see the state file");
                // Not known: may have, as far as a script reading the status can tell.
                signals::at_once_exit(signal, true)
            }
        });
    }
    let limits = (args.lock_timeout, args.options.stall_timeout);
    crate::watch::set_stall_timeout(args.options.stall_timeout);
    crate::watch::set_keep_going(args.options.keep_going);
    let source = server(&args.source, limits, &watch, 0);
    let dests: Vec<Server> = args
        .destinations
        .iter()
        .enumerate()
        .map(|(i, d)| server(d, limits, &watch, i + 1))
        .collect();
    watch.planning(true);
    signals::job_planning(true);
    // Until planning proper: a signal while these connect (a server that accepts and never
    // answers) exits at once, nothing began anywhere.
    signals::connecting(true);
    let (encodings, left_out, unreached) = crate::identity::check_job(
        &source,
        &dests,
        args.options.keep_going,
        args.options.truncate,
    )?;
    // Between SQL_ASCII databases the data passes as it is, as a single table's does: through
    // UTF8 a byte beyond ASCII failed the job (22021) where one table copied it.
    let named = std::iter::once(&args.source)
        .chain(&args.destinations)
        .any(ServerSpec::names_client_encoding);
    // Between databases of one other encoding the data passes in it too (a table at a time,
    // where its statements are ASCII: copyman's are UTF-8): through UTF8 EUC_JP's NEC and IBM
    // duplicates came back as their canonical codes (other bytes, exit 0). So too where some
    // destinations hold the source's encoding and the others are UTF8, which convert from it as
    // the source would have converted to it (as one table's run: `limits::pass_server_encoding`).
    let shared = encodings.first().filter(|first| {
        !named
            && encodings[1..].iter().all(|e| e == *first || e == "UTF8")
            && !matches!(first.as_str(), "UTF8" | "SQL_ASCII")
    });
    let data_encoding = shared.cloned();
    if data_encoding.is_none()
        && let Some((source_encoding, dest_encodings)) = encodings.split_first()
    {
        let servers: Vec<(String, String)> = (dest_encodings.iter().enumerate())
            .map(|(i, e)| (format!("destination {}", i + 1), e.clone()))
            .collect();
        crate::limits::warn_if_rewritten(source_encoding, &args.source.client_encoding(), &servers);
    }
    if !named
        && encodings.first().is_some_and(|e| e == "SQL_ASCII")
        && !encodings.iter().all(|e| e == "SQL_ASCII")
    {
        report::set_sql_ascii_source();
    }
    let (source, dests) = if !named && encodings.iter().all(|e| e == "SQL_ASCII") {
        let ascii = |spec: &ServerSpec| {
            let mut spec = spec.clone();
            spec.startup
                .push(("client_encoding".to_owned(), "SQL_ASCII".to_owned()));
            spec
        };
        let source = server(&ascii(&args.source), limits, &watch, 0);
        let dests = (args.destinations.iter().enumerate())
            .map(|(i, d)| server(&ascii(d), limits, &watch, i + 1))
            .collect();
        (source, dests)
    } else {
        (source, dests)
    };
    let mut options = args.options.clone();
    options.data_encoding = data_encoding;
    options.left_out = left_out;
    // Each later step passes over a destination that could not be reached (conn42 F8: four
    // connects to a dead host, four failed logins, before it was left out).
    let passed_over: Vec<usize> = unreached.iter().map(|(i, _)| *i).collect();
    options.unreachable = unreached;
    // The default state file is named by a destination that could not say who it is: a resume
    // must name it.
    if let Some(dir) = &args.state_dir {
        let keep_going = options.keep_going;
        let resume_names_state;
        (options.state, resume_names_state) = default_state(
            dir,
            &source,
            &dests,
            &args.selection,
            (keep_going, options.resume),
            &passed_over,
        )?;
        STATE_MUST_BE_NAMED.store(resume_names_state, std::sync::atomic::Ordering::Relaxed);
        // The default directory's other state files: a table an earlier job (another selection,
        // another spelling) began on these destinations is not copied again over its rows.
        options.other_states = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .filter(|p| *p != options.state && p.is_file())
            .collect();
    } else {
        // A state file of the user's: the other state files of its directory, read as the
        // default directory's are (two jobs started side by side with their own --state both
        // appended a table, every row twice; one after the other too, jobs43 F4). A state file
        // in another directory is how to copy again on purpose.
        options.other_states = copyman_job::state::beside(&options.state);
    }
    report::job_state(&options.state);
    // A resume commits as the job began: with two-phase commit if it began with --atomic, in
    // its decision log (jobs46 F3: it went on with plain COMMITs, unsaid), or the one given.
    // (No state file: its own refusal says so, not this: recheck57 F3.)
    let recorded = (options.resume && options.state.exists())
        .then(|| copyman_job::state::read(&options.state).ok())
        .flatten()
        .map(|r| r.atomic);
    // `--resume --atomic` without `--decision-log`: the log the job began with, where the
    // earlier run's decisions are (commit48 F1: the default log's, said as where to recover
    // from, and its own decisions recorded there, unsaid).
    if let (Some(Some(log)), Some(default)) = (&recorded, &options.two_phase)
        && !args.log_given
        && log != default
    {
        crate::progress::println(&format!(
            "copyman: note: the job began with --decision-log {}: it is resumed with it",
            log.display()
        ));
        options.two_phase = Some(log.clone());
    }
    let recorded = recorded.filter(|_| options.two_phase.is_none());
    if let (Some(None), Some(given)) = (&recorded, &args.resume_log) {
        return Err(Fatal {
            exit: Exit::Usage,
            message: format!(
                "--decision-log {}: the job did not begin with --atomic, and is resumed without \
                 it (a job commits as it began)",
                given.display()
            ),
            server: None,
        }
        .into());
    }
    if let Some(Some(log)) = recorded {
        let log = args.resume_log.clone().unwrap_or(log);
        crate::progress::println(&format!(
            "copyman: note: the job began with --atomic: it is resumed with it, its commit \
             decisions recorded in {}",
            log.display()
        ));
        options.two_phase = Some(log);
    }
    // Its waits for its decision log's lock said while they last (recheck66 F9: silent).
    let _log_wait = options
        .two_phase
        .as_deref()
        .map(crate::watch::LogWait::watch);
    let options = &options;
    report::log(format_args!("planning the job: {}", args.selection));
    // --jobs within what the servers accept (max_connections, max_prepared_transactions),
    // asked before the plan's own sessions count against it: the workers an unsplit job takes
    // first (a table is split into no more ranges than that), then fitted to what the plan
    // holds (which tables are split), said once.
    report::set_atomic(options.two_phase.is_some());
    let rooms = Rooms::ask(&source, &dests, options.two_phase.is_some(), &passed_over);
    let wanted = options.jobs;
    let (unsplit_jobs, _) = rooms.fit(wanted, &Demand::unsplit, 0)?;
    let mut options = options.clone();
    options.jobs = unsplit_jobs;
    // A resume goes on as the job began: verifying if it began with --verify (a table found
    // committed and not recorded done is then recorded only once its checksum matched).
    if options.resume
        && !options.verify
        && copyman_job::state::read(&options.state).is_ok_and(|r| r.verify)
    {
        options.verify = true;
        // Notes are said under --quiet too (it hides progress and the summary).
        crate::progress::println(
            "copyman: note: the job began with --verify: it is resumed with it",
        );
    }
    signals::connecting(false);
    let options = &options;
    // What planning waits for (a resume waiting for an earlier run's transaction) is said at
    // once, and kept for --json's notes.
    let waited: Mutex<Vec<String>> = Mutex::new(Vec::new());
    // A long planning (thousands of tables, each server's catalog read a few hundred at a
    // time) is said, after a few seconds and then every few seconds, so that it is never silent.
    let planning_said = Mutex::new(Instant::now());
    let planned = job::plan_with(&source, &dests, &args.selection, options, &|event| {
        if let Event::Planning { done, total } = event {
            watch.planned_one();
            // A test can change the source while the job plans.
            crate::finish::test_pause(&format!("planning:{done}"));
            let mut said = planning_said.lock().unwrap_or_else(PoisonError::into_inner);
            if !output.quiet && said.elapsed() >= PLANNING_SAID_EVERY {
                crate::progress::println(&format!(
                    "copyman: planning: {done} of {total} tables looked up on every server"
                ));
                *said = Instant::now();
            }
        }
        if let Event::ResumeWait(wait) = event {
            let note = wait.to_string();
            crate::progress::println(&format!("copyman: note: {note}"));
            waited
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(note);
        }
    });
    let planning_failed = |e| match (e, signals::received()) {
        // A resume's destinations hold what earlier runs committed: not "nothing committed".
        (JobError::Interrupted(reason), Some(signal)) if options.resume => Fatal {
            exit: Exit::interrupted(signal),
            server: None,
            message: format!(
                "{reason}; stopped while the job was being planned: this run began nothing and \
                 committed nothing; the tables earlier runs committed stay committed, recorded \
                 in the state file {}: run again with --resume to copy what is missing",
                options.state.display()
            ),
        }
        .into(),
        // (A state file that cannot be read now says nothing either way.)
        (e, _) => fatal_after(e, options.resume && done_earlier(&options.state)),
    };
    let mut plan = planned.map_err(planning_failed)?;
    let plan_ranges = plan
        .tables
        .iter()
        .map(|t| t.ranges.len())
        .max()
        .unwrap_or(0);
    let demand = |jobs: usize| Demand::of(&plan, jobs);
    let (jobs, cap_warnings) = rooms.fit(wanted, &demand, plan_ranges)?;
    let jobs = jobs.min(unsplit_jobs);
    let ranges = demand(jobs).ranges;
    if let Some(limit) = options.split_larger_than.filter(|_| ranges < plan_ranges) {
        plan.cap_ranges(ranges, limit);
    }
    let fitted;
    let options = if jobs < options.jobs {
        let mut capped = options.clone();
        capped.jobs = jobs;
        fitted = capped;
        &fitted
    } else {
        options
    };
    for warning in &cap_warnings {
        report::warn(warning);
    }
    // A test can change the source once the job's snapshot is taken.
    crate::finish::test_pause("planned");
    watch.planning(false);
    signals::job_planning(false);
    let waited = waited.into_inner().unwrap_or_else(PoisonError::into_inner);
    // A destination left out is a warning, as in a one-table run (`--json`'s `warnings`).
    for why in &plan.left_out {
        report::warn(why);
    }
    // Not reached, its tables recorded done are not checked there (a resume checks each, and
    // one the destination lost since is copied again): the job is partial however they stand
    // (it said "ok", exit 0, "done", of a destination that had lost a table: jobs66 F16).
    let left_out = !plan.left_out.is_empty();
    if args.dry_run {
        // A signal that came as the planning ended stops the dry run as one during it does
        // (it said it stopped, then printed the whole plan and exited 0); one while the plan is
        // printed exits at once: a dry run began nothing anywhere.
        if let Some(reason) = options.interrupt.reason() {
            return Err(planning_failed(JobError::Interrupted(reason)));
        }
        signals::printing_dry_run();
        plan.notes.splice(0..0, waited);
        let reached = Reached::of(&args.source, &args.destinations);
        return dry_run(
            &plan,
            &dests,
            (options.keep_going, &options.state),
            &reached,
            output,
        );
    }
    // Said under --quiet too, as --help promises: a note may change what is copied (an
    // --exclude-table that matches nothing leaves its table in). One note said alike of many
    // tables is said once, naming them (`--json` keeps each).
    for note in grouped_notes(&plan.notes) {
        crate::progress::println(&format!("copyman: note: {note}"));
    }
    if !output.quiet {
        crate::progress::println(&format!("copyman: state file: {}", options.state.display()));
    }
    *ledger.lock().unwrap_or_else(PoisonError::into_inner) = Ledger::new(&plan, &dests, options);
    let names = (!output.quiet).then(|| dests.iter().map(|d| d.name.clone()).collect());
    let render = Arc::new(Render::new(output, options.jobs, names, options.keep_going));
    (render
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .estimates) = (plan.tables.iter())
        .filter_map(|t| Some((t.table.to_string(), t.estimate?)))
        .collect();
    let _ = display.set(Arc::clone(&render));
    render.start_ticking();
    let notes: Vec<String> = waited.into_iter().chain(plan.notes.clone()).collect();
    let statements = match report::verbose() {
        true => statements(&plan, &dests),
        false => HashMap::new(),
    };
    // The tables of a unit (linked by foreign keys: one transaction) each told of its steps
    // before the last one is.
    let told_before_the_last: HashSet<String> = (plan.groups.iter())
        .flat_map(|g| g.members.iter().rev().skip(1))
        .map(|&m| plan.tables[m].table.to_string())
        .collect();
    let report = job::run(plan, &source, &dests, options, &|e| {
        // A test can stop the job where a crash would leave a decided run half committed: once
        // the step is known as answered, for every table of its transaction (sweep58 F3,
        // recheck59 F1: paused before, an exit at once then said an answered COMMIT "sent, not
        // answered" and "committed: none", or a unit's table "committed", another "in doubt").
        let pause = match &e {
            Event::CommitStep {
                table,
                destination,
                action,
                answer: Answer::TookEffect,
                ..
            } if !told_before_the_last.contains(&table.to_string()) => match action {
                Action::Prepare(_) => Some(format!("prepared:{}", destination + 1)),
                Action::CommitPrepared(_) => Some(format!("commit-prepared:{}", destination + 1)),
                Action::Commit => Some(format!("committed:{}", destination + 1)),
                _ => None,
            },
            _ => None,
        };
        if let Event::VerifyingAgain {
            destination,
            tables,
            triggers,
        } = &e
            && !output.quiet
        {
            crate::progress::println(&format!(
                "copyman: verify: comparing {tables} table(s) on destination {} ({}) again, now \
                 that the job's writes are over: triggers of {} ran there",
                destination + 1,
                dests[*destination].name,
                triggers.join(", ")
            ));
        }
        log_step(&e, &dests, &statements);
        if let Event::TableFinished { report, .. } = &e {
            report::print_notices(&notices(report).collect::<Vec<_>>());
            if report.notices_dropped > 0 {
                report::warn(format_args!(
                    "{}: {} more notices not kept",
                    report.table, report.notices_dropped
                ));
            }
        }
        watch.event(&e);
        ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .event(&e);
        // What a stop meanwhile waits for: copyman's own write, not the servers (the ledger
        // knows whose decision it is).
        if let Event::Recording { log, .. } = &e {
            signals::recording(log.as_deref(), signals::Written::Decision, &[]);
            if log.is_some() {
                crate::finish::test_pause("recording");
            }
        }
        if let Some(point) = pause {
            crate::finish::test_pause(&point);
        }
        render.event(e);
    })
    .map_err(|error| {
        render.finish();
        let ledger = ledger.lock().unwrap_or_else(PoisonError::into_inner);
        let earlier = (ledger.tables.iter()).any(|(_, cells)| cells.contains(&Cell::AlreadyDone));
        fatal_after(error, earlier)
    })?;
    watch.stop();
    render.finish();
    let mut report = report;
    if signals::received().is_some() {
        own_cancels(&mut report);
    }
    waited_on_itself(&mut report, watch.waited_on_itself());
    let exit = if report.succeeded() && !left_out {
        Exit::Success
    } else if let Some(signal) =
        (signals::received()).filter(|_| report.interrupted.is_some() && !split_across(&report))
    {
        // Interrupted: the tables it committed stay (and are recorded); the exit status says
        // why the rest is missing, as a shell's would for a killed process.
        Exit::interrupted(signal)
    } else if !report.committed_any() && !differs(&report) && !holds_earlier(&report) {
        // 1 says nothing was committed anywhere; a table --verify found different was (by this
        // run, or by an earlier one that a resume compared), and a table a resume found done
        // is there from an earlier run. Where every failure was a server refusing a
        // connection (down, its connection limit reached after planning), 3 says so, as a
        // refusal met before the job began does: a script retries a busy server.
        match only_connections_failed(&report) {
            true => Exit::Connect,
            false => Exit::CopyFailed,
        }
    } else {
        Exit::Partial
    };
    // The exit status stands whoever reads the report: a reader gone from stdout or stderr
    // (`… | head`) must not turn a failed job's status into 0 (main's quiet exit on a broken
    // pipe), nor end it before it is returned.
    let reached = Reached::of(&args.source, &args.destinations);
    if output.json {
        let mut value = to_json(&report, &dests, options, exit, &notes);
        reached.add_to(&mut value);
        let _ = report::print_json(&value);
    }
    let mut human = Vec::new();
    write_human(&mut human, &report, &dests, options, output)?;
    if !output.quiet {
        for line in reached.lines(&dests) {
            writeln!(human, "{line}")?;
        }
    }
    crate::progress::eprint(&String::from_utf8_lossy(&human));
    Ok(exit)
}

/// `notes` with those said alike of several tables (`"s"."t": the same words`: an audit
/// trigger on each of 500 tables made 500 notes of 530 characters) said once, naming the first
/// tables and counting the rest; in the order each was first said. Words alike but for the
/// names in their first parenthesis (each table's own trigger, `(t1_audit)`, `(t2_audit)`) are
/// alike: that parenthesis names the first of them, counting the rest.
fn grouped_notes(notes: &[String]) -> Vec<String> {
    // The words with their first parenthesis' content taken out, and that content.
    let masked = |words: &str| -> (String, Option<String>) {
        let Some(open) = words.find('(') else {
            return (words.to_owned(), None);
        };
        let mut depth = 0;
        for (at, c) in words[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' if depth == 1 => {
                    let close = open + at;
                    let inner = &words[open + 1..close];
                    // Names only (`t1_audit`, `audit, route`): words there say something.
                    if inner
                        .split(", ")
                        .any(|name| name.contains(char::is_whitespace))
                    {
                        break;
                    }
                    let key = format!("{}(){}", &words[..open], &words[close + 1..]);
                    return (key, Some(inner.to_owned()));
                }
                ')' => depth -= 1,
                _ => {}
            }
        }
        (words.to_owned(), None)
    };
    struct Group<'a> {
        words: &'a str,
        tables: Vec<&'a str>,
        inner: Vec<String>,
    }
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut order: Vec<Result<usize, &str>> = Vec::new();
    for note in notes {
        // A table's note: its quoted name, then ": ". (Not one of several tables: two foreign-key
        // cycles' notes were said as one of "2 tables" naming five, recheck63 F3.)
        let split = note
            .starts_with('"')
            .then(|| note.find("\": "))
            .flatten()
            .map(|end| (&note[..=end], &note[end + 3..]))
            .filter(|(table, _)| !table.contains("\", \""));
        let Some((table, words)) = split else {
            order.push(Err(note));
            continue;
        };
        let (key, inner) = masked(words);
        match index.get(&key) {
            Some(&i) => {
                let group = &mut groups[i];
                group.tables.push(table);
                if let Some(inner) = inner.filter(|inner| !group.inner.contains(inner)) {
                    group.inner.push(inner);
                }
            }
            None => {
                index.insert(key, groups.len());
                order.push(Ok(groups.len()));
                groups.push(Group {
                    words,
                    tables: vec![table],
                    inner: inner.into_iter().collect(),
                });
            }
        }
    }
    order
        .into_iter()
        .map(|item| match item {
            Err(note) => note.to_owned(),
            Ok(i) => {
                let group = &groups[i];
                let words = match group.inner.len() {
                    0 | 1 => group.words.to_owned(),
                    _ => {
                        let (key, _) = masked(group.words);
                        let inner: Vec<&str> = group.inner.iter().map(String::as_str).collect();
                        key.replacen("()", &format!("({})", job::first_names(&inner)), 1)
                    }
                };
                match group.tables.len() {
                    1 => format!("{}: {words}", group.tables[0]),
                    n => format!("{n} tables ({}): {words}", job::first_names(&group.tables)),
                }
            }
        })
        .collect()
}

/// How often a long planning says how far it is.
const PLANNING_SAID_EVERY: Duration = Duration::from_secs(5);

/// The most `--jobs` taken.
const MAX_JOBS: usize = 1024;

/// A job interrupted by a signal: a statement that failed because the watch cancelled it
/// (SQLSTATE 57014 "canceling statement due to user request": a planning lookup waiting for a
/// lock, on any destination) was interrupted, not failed; and the job did not stop for it.
/// Known by its SQLSTATE alone: the words are the server's `lc_messages`' (German's
/// "storniere Anfrage wegen Benutzeraufforderung" read as a failure that stopped the job).
fn own_cancels(report: &mut JobReport) {
    let Some(why) = report.interrupted.clone() else {
        return;
    };
    let ours = |e: &job::TableError| e.sqlstate.as_deref() == Some("57014");
    for d in report.tables.iter_mut().flat_map(|t| &mut t.destinations) {
        if d.status == Status::Failed && d.error.as_ref().is_some_and(ours) {
            d.status = Status::Interrupted;
            d.error = Some(job::TableError {
                connect: false,
                lasting: false,
                sqlstate: None,
                message: format!("{why}: its statement was cancelled, nothing of it committed"),
            });
        }
    }
    if report
        .stopped
        .as_deref()
        .is_some_and(|s| s.contains("SQLSTATE 57014"))
    {
        report.stopped = None;
    }
}

/// A table's copy the watch cancelled because it waited on itself: its error (SQLSTATE 57014
/// "canceling statement due to user request") says why, and is one a rerun meets again (the
/// same sessions would wait on each other again).
fn waited_on_itself(report: &mut JobReport, waits: Vec<crate::watch::SelfWait>) {
    for wait in waits {
        let Some(t) = report
            .tables
            .iter_mut()
            .find(|t| t.table.to_string() == wait.table)
        else {
            continue;
        };
        // The waiting session's destination; a source session fails the table everywhere.
        // Its error is the cancel's, or, when the copy's other sessions still waited on each
        // other in a cycle PostgreSQL sees, the deadlock detector's (40P01) that came first.
        for (i, d) in t.destinations.iter_mut().enumerate() {
            let cancelled = d
                .error
                .as_ref()
                .is_some_and(|e| match e.sqlstate.as_deref() {
                    // The cancel's, in whatever language the server speaks.
                    Some("57014" | "40P01") => true,
                    _ => false,
                });
            if cancelled
                && wait.destination.is_none_or(|w| w == i)
                && let Some(e) = d.error.as_mut()
            {
                e.message = format!("{}; {}", wait.why, e.message);
                e.lasting = true;
            }
        }
    }
}

fn dry_run(
    plan: &job::Plan,
    dests: &[Server],
    (keep_going, state): (bool, &Path),
    reached: &Reached,
    output: Output,
) -> anyhow::Result<Exit> {
    // What the run would end with: a table refused on a destination stops the job before
    // anything is copied (exit 1), unless --keep-going leaves it out (an unreachable
    // destination among them): partial, or a failure when no destination would hold anything;
    // so `--dry-run && run` stops where the run would not succeed.
    let planned = plan.tables.iter().flat_map(|t| &t.destinations);
    let refused = planned.clone().any(|d| matches!(d, DestPlan::Refused(_)));
    // Every refusal a server that cannot be reached: a connection failure, as the run says.
    let unreachable = planned
        .clone()
        .all(|d| !matches!(d, DestPlan::Refused(why) if !why.connect));
    let exit = if !refused {
        Exit::Success
    } else if !keep_going && unreachable {
        Exit::Connect
    } else if !keep_going {
        Exit::CopyFailed
    } else if planned
        .clone()
        .any(|d| matches!(d, DestPlan::Copy { .. } | DestPlan::Done(_)))
    {
        Exit::Partial
    } else {
        Exit::CopyFailed
    };
    if output.json {
        let tables: Vec<Value> = plan
            .tables
            .iter()
            .enumerate()
            .map(|(ti, t)| {
                json!({
                    "table": t.table.to_string(),
                    "size": t.bytes,
                    // The source's statistics (pg_class.reltuples), where it has them.
                    "estimated_rows": t.estimate,
                    "format": t.format.name(),
                    "format_reason": t.format_reason,
                    "statement": t.send,
                    "ranges": t.ranges,
                    // The tables it starts after (it references them): the run's order is not
                    // the list's (jobs64 F5).
                    "after": after(plan, t),
                    // Named as a run's records name theirs (docs45 F1).
                    "destinations": t.destinations.iter().zip(dests).enumerate().map(|(i, (d, s))| {
                        json!({
                            "server": format!("destination {}", i + 1),
                            "endpoint": s.name,
                            "reached": reached.destinations.get(i).cloned().flatten(),
                            "plan": dest_plan(plan, ti, i, d),
                        })
                    }).collect::<Vec<_>>(),
                })
            })
            .collect();
        // Why it would not succeed: its first table refused on a destination.
        let refused = (plan.tables.iter())
            .flat_map(|t| {
                t.destinations
                    .iter()
                    .enumerate()
                    .map(move |(i, d)| (t, i, d))
            })
            .find_map(|(t, i, d)| match d {
                DestPlan::Refused(why) => Some((t, i, why)),
                _ => None,
            })
            .filter(|_| exit != Exit::Success);
        report::print_json(&json!({
            "status": status_word(exit),
            "exit_code": exit.code(),
            "error": refused.map(|(t, i, why)| format!("{} on destination {}: {}", t.table, i + 1, why.message)),
            "server": refused.map(|(_, i, _)| format!("destination {}", i + 1)),
            "endpoint": refused.and_then(|(_, i, _)| dests.get(i).map(|s| s.name.clone())),
            "sqlstate": refused.and_then(|(.., why)| why.sqlstate.clone()),
            "dry_run": true,
            // Where the run would keep its records (jobs41 F5): not written by a dry run.
            "state": state.display().to_string(),
            "snapshot": plan.snapshot,
            "notes": plan.notes,
            "warnings": report::warnings(),
            "tables": tables,
            // The host each CONN naming several reached (recheck42 F7); a destination's, in its
            // records.
            "source_reached": reached.source,
        }))?;
        return Ok(exit);
    }
    let mut text = format!(
        "copyman: dry run, nothing copied: {}, largest first{}\n  state file: {} (the run \
         would keep its records there; not written now)\n",
        plural(plan.tables.len(), "table"),
        match plan.tables.iter().any(|t| !t.after.is_empty()) {
            true => ", each after the tables it references",
            false => "",
        },
        state.display()
    );
    for line in reached.lines(dests) {
        text.push_str(&format!("  {}\n", line.trim_start_matches("copyman: ")));
    }
    for note in &plan.notes {
        text.push_str(&format!("  note: {note}\n"));
    }
    for (ti, t) in plan.tables.iter().enumerate() {
        // Its rows as the source's statistics count them (progress62 F10: sizes on disk only).
        let rows = t
            .estimate
            .map(|n| format!(", about {}", crate::progress::rows(n)))
            .unwrap_or_default();
        let after = match after(plan, t).as_slice() {
            [] => String::new(),
            names => format!("; after {}", names.join(", ")),
        };
        text.push_str(&format!(
            "  {} ({}{rows}, {}{after})\n    {}\n",
            t.table,
            HumanBytes(t.bytes),
            t.format.name(),
            t.send
        ));
        for (i, range) in t.ranges.iter().enumerate() {
            text.push_str(&format!("    range {}: {range}\n", i + 1));
        }
        for (i, (d, s)) in t.destinations.iter().zip(dests).enumerate() {
            text.push_str(&format!(
                "    destination {} ({}): {}\n",
                i + 1,
                s.name,
                dest_plan(plan, ti, i, d)
            ));
        }
    }
    // A reader gone (`… | head`) wanted no more; a stdout closed or full lost the plan: said,
    // the exit status standing (it exited 0 without a word).
    if crate::closed_at_start(1) {
        report::warn(
            "--dry-run: stdout is closed: the plan goes nowhere (redirect it: > FILE); the exit \
             status says how the run would end",
        );
    }
    match report::print_stdout(&text) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Err(e.into()),
        Err(e) => report::warn(format_args!(
            "the plan could not be written to stdout ({e}); the exit status says how the run \
             would end"
        )),
        Ok(()) => {}
    }
    // How the run would end, where it would not succeed, said last on stderr as the run's last
    // line is (the reasons stood deep in the plan, and stderr said nothing at exit 1).
    if exit != Exit::Success {
        let mut refused = 0;
        let mut by_destination = Vec::new();
        for (i, s) in dests.iter().enumerate() {
            let tables: Vec<String> = (plan.tables.iter())
                .filter(|t| matches!(t.destinations.get(i), Some(DestPlan::Refused(_))))
                .map(|t| t.table.to_string())
                .collect();
            refused += tables.len();
            if !tables.is_empty() {
                let listed = named_briefly(&tables, 10, "the plan above says each");
                by_destination.push(format!("destination {} ({}): {listed}", i + 1, s.name));
            }
        }
        let would = match exit {
            Exit::Partial => "would be partial",
            _ => "would fail",
        };
        crate::progress::println(&format!(
            "copyman: the run {would} (exit {}): {} refused; {}",
            exit.code(),
            plural(refused, "table copy"),
            by_destination.join("; ")
        ));
    }
    Ok(exit)
}

/// `names` on one line, as a job's report says a list of tables: "none", every one, or the
/// first `shown` and how many more, with where each is said (`lists`): "a, b and 12 more
/// (--verbose lists each)". A job of thousands of tables said every one on one line. One more
/// is named, not counted (jobs64 F4: "and 1 more" took a name's room).
fn named_briefly(names: &[String], shown: usize, lists: &str) -> String {
    let shown = if names.len() == shown + 1 {
        names.len()
    } else {
        shown
    };
    let (first, rest) = names.split_at(names.len().min(shown));
    match rest.len() {
        _ if names.is_empty() => "none".to_owned(),
        0 => first.join(", "),
        more => format!("{} and {more} more ({lists})", first.join(", ")),
    }
}

/// Where a run's report says a list it cut short is said whole: after the run, not by running
/// again with `--verbose` (another run: jobs64 F4). The state file records each table's
/// outcome on each destination, and the resume's dry run says them.
const LISTED_AFTER: &str = "the same command with --resume --dry-run lists each";

/// The `status` word of a job's `--json` for its exit: the words of a one-table run's
/// (report.rs).
fn status_word(exit: Exit) -> &'static str {
    match exit {
        Exit::Success => "ok",
        Exit::Partial => "partial",
        exit if exit.is_interruption() => "interrupted",
        _ => "failed",
    }
}

/// What destination `dest` does with table `i` of `plan`: its steps, or why not.
/// The tables `t` starts after in a run (those of the job it references by a foreign key:
/// [`job::TablePlan::after`]), named: the dry run lists the tables largest first, which a
/// table waiting for a smaller one it references does not keep (jobs64 F5).
fn after(plan: &job::Plan, t: &job::TablePlan) -> Vec<String> {
    (t.after.iter())
        .filter_map(|&p| plan.tables.get(p))
        .map(|p| p.table.to_string())
        .collect()
}

fn dest_plan(plan: &job::Plan, i: usize, dest: usize, d: &DestPlan) -> String {
    let t = &plan.tables[i];
    let group = plan.group_of(i);
    match d {
        DestPlan::Copy {
            truncate,
            freeze,
            sequences,
            kind,
            quiet_delete,
            guard,
            triggers: _,
        } => {
            let mut steps = vec!["BEGIN".to_owned()];
            match group {
                // Emptied with its group, in the group's one transaction.
                // The group's statement said once, at its first member: each member's line
                // said the whole group's (N² names, hundreds of MB for a chain of thousands).
                Some(g) => {
                    steps.push(crate::sql::GROUP_DEFERS.to_owned());
                    let first = g.members.iter().min().copied().unwrap_or(i);
                    if first == i {
                        if let Some(emptying) = plan.group_emptying(g, dest) {
                            steps.push(format!("{emptying} (with its group)"));
                        }
                    } else if *truncate {
                        steps.push(format!(
                            "emptied with its group (the statement at {})",
                            plan.tables[first].table
                        ));
                    }
                }
                None if *truncate => steps.push(t.emptying(kind, *quiet_delete)),
                None => {}
            }
            if guard.is_some() {
                // Binary data carries no type (the statement: `sql::types_unchanged`).
                steps.push("lock it and check its columns' types".to_owned());
            }
            steps.push(t.receive_for(*freeze));
            for carry in sequences {
                steps.push(format!(
                    "advance the sequence of {} to the source's",
                    carry.column
                ));
            }
            steps.join("; ")
        }
        DestPlan::Done(rows) => format!(
            "done earlier ({rows} row{}): skipped",
            if *rows == 1 { "" } else { "s" }
        ),
        DestPlan::Refused(e) => format!("refused: {e}"),
        _ => "?".to_owned(),
    }
}

/// What the servers said during table `t`'s copy, as a one-table run says it, each after the
/// table and its side (`"public"."t" on destination 2: WARNING:  …`).
fn notices(t: &job::TableReport) -> impl Iterator<Item = report::Notice> + '_ {
    t.notices.iter().map(|n| report::Notice {
        endpoint: match n.side {
            Side::Destination(d) => format!("{} on destination {}", t.table, d + 1),
            _ => format!("{} on the source", t.table),
        },
        notice: n.notice.clone(),
        times: n.times,
    })
}

fn to_json(
    report: &JobReport,
    dests: &[Server],
    options: &Options,
    exit: Exit,
    notes: &[String],
) -> Value {
    let mut records = Vec::new();
    for t in &report.tables {
        for (i, (d, s)) in t.destinations.iter().zip(dests).enumerate() {
            records.push(json!({
                "table": t.table.to_string(),
                "source_rows": t.source_rows,
                "destination": s.name,
                "server": format!("destination {}", i + 1),
                "endpoint": s.name,
                "status": d.status.name(),
                "rows": d.rows,
                "bytes": d.bytes,
                "seconds": d.seconds,
                "duration_secs": d.seconds,
                "verified": d.verified,
                "warning": d.warning,
                "error": d.error.as_ref().map(|e| json!({
                    "sqlstate": e.sqlstate,
                    "message": e.message,
                })),
            }));
        }
    }
    // Why it failed, as a one-table run says it: why it stopped, else the first table that
    // failed, with its SQLSTATE and where.
    // A destination where a table failed, before one that rolled it back because it failed
    // elsewhere (a bystander's error named as `server`, the SQLSTATE dropped).
    let results = || {
        (report.tables.iter()).flat_map(|t| {
            t.destinations
                .iter()
                .enumerate()
                .map(move |(d, r)| (t, d, r))
        })
    };
    let failed = (results().filter(|(_, _, r)| r.status == Status::Failed))
        .chain(results())
        .find_map(|(t, d, r)| Some((t, d, r.error.as_ref()?)))
        // Interrupted, the signal is why, not a server (a table rolled back on destination 1,
        // copyman's own cancel of a checksum, 57014), as a one-table run says it.
        .filter(|_| exit != Exit::Success && !exit.is_interruption());
    let interrupted = report
        .interrupted
        .clone()
        .filter(|_| exit.is_interruption());
    let error = interrupted.or_else(|| report.stopped.clone()).or_else(|| {
        let (t, d, e) = failed?;
        Some(format!(
            "{} on destination {}: {}",
            t.table,
            d + 1,
            e.message
        ))
    });
    let (server, endpoint, sqlstate) = match failed {
        // The source's error, which every destination's record carries (a source backend
        // terminated): the source's, not destination 1's.
        Some((_, _, e)) if e.message.starts_with("source: ") => {
            (Some("source".to_owned()), None, e.sqlstate.clone())
        }
        Some((_, d, e)) => (
            Some(format!("destination {}", d + 1)),
            dests.get(d).map(|s| s.name.clone()),
            e.sqlstate.clone(),
        ),
        None => (None, None, None),
    };
    let bytes = sent_bytes(report);
    let per_second = |n: u64| match report.seconds > 0.0 {
        true => n as f64 / report.seconds,
        false => 0.0,
    };
    json!({
        // The words of a one-table run's `--json` (report.rs).
        "status": status_word(exit),
        "exit_code": exit.code(),
        "error": error,
        "server": server,
        "endpoint": endpoint,
        "sqlstate": sqlstate,
        "state": options.state.display().to_string(),
        // The totals the human summary says (a script summed the records itself).
        // `rows` and `bytes` as a one-table run's document has them, the source's (they were the
        // sums over the destinations: a `table T` that became a job with --verify doubled
        // them, scale44 F3, docs43 F2); what the destinations committed in `committed_rows`.
        "source_rows": totals(report).0,
        "rows": totals(report).0,
        "committed_rows": totals(report).1,
        "bytes": bytes,
        // As a one-table document has them, over `seconds` (progress62 F9).
        "rows_per_sec": per_second(totals(report).0),
        "bytes_per_sec": per_second(bytes),
        "snapshot": report.snapshot,
        "notes": notes,
        "waits": crate::watch::lock_waits(),
        "warnings": report::warnings(),
        "stopped": report.stopped,
        "interrupted": report.interrupted,
        // What to do next, as stderr's closing line says it (a one-table run's `advice`).
        "advice": closing_advice(report, options).map(|a| a.replacen("copyman: ", "", 1)),
        "seconds": report.seconds,
        "tables": records,
        "notices": report.tables.iter().flat_map(notices).map(|n| n.to_json()).collect::<Vec<_>>(),
    })
}

/// Whether a split table's ranges ended apart on a destination: some committed, or may have,
/// and others not ([`job::DestResult::ranges_apart`]).
fn partly_committed(report: &JobReport) -> bool {
    report
        .tables
        .iter()
        .flat_map(|t| &t.destinations)
        .any(job::DestResult::ranges_apart)
}

/// Whether a table's end on a destination is in doubt (under `--atomic`: perhaps prepared).
/// Whether a table is in doubt somewhere, or may be held there by a prepared transaction.
fn in_doubt(report: &JobReport) -> bool {
    report.tables.iter().flat_map(|t| &t.destinations).any(|d| {
        d.status == Status::InDoubt || d.error.as_ref().is_some_and(|e| e.holds_prepared())
    })
}

fn differs(report: &JobReport) -> bool {
    report
        .tables
        .iter()
        .any(|t| t.destinations.iter().any(|d| d.verified == Some(false)))
}

/// Whether the job empties each table before it copies it: given `--truncate`, or a resume of
/// a job that began with it (which its resumes inherit).
fn truncating(options: &Options) -> bool {
    options.truncate || copyman_job::state::read(&options.state).is_ok_and(|r| r.truncate)
}

fn write_human(
    out: &mut dyn Write,
    report: &JobReport,
    dests: &[Server],
    options: &Options,
    output: Output,
) -> io::Result<()> {
    let pairs = report.tables.len() * dests.len();
    // Done: committed as the source has it (a table --verify found different is committed, not
    // done: it is not recorded so, and a resume copies it again).
    let done = report
        .tables
        .iter()
        .flat_map(|t| &t.destinations)
        .filter(|d| d.status.is_done() && d.verified != Some(false) && !d.unverified)
        .count();
    let (source_rows, rows) = totals(report);
    // Tables an earlier run committed beside tables this one copied: two snapshots.
    let earlier_run = rows > 0
        && report
            .tables
            .iter()
            .flat_map(|t| &t.destinations)
            .any(|d| matches!(d.status, Status::AlreadyDone | Status::Differs));
    // Under --verify, how many of those done its checksum compared equal (a mismatch is said
    // at length; a match was said nowhere but in --json).
    let verified = (report.tables.iter())
        .flat_map(|t| &t.destinations)
        .filter(|d| d.verified == Some(true))
        .count();
    let verified = match options.verify {
        true => format!(
            ", {verified} verified (row count and checksum of the copied columns as the source's)"
        ),
        false => String::new(),
    };
    // The copy's time leaves planning out: one that took long is said beside it (progress45
    // F6: "in 0.0 s" for a job that sat 10 s planning, on a lock).
    let before = report::running_for().as_secs_f64() - report.seconds;
    let planned = match before >= 1.0 {
        true => format!(" (after {before:.1} s of planning)"),
        false => String::new(),
    };
    // Its data and rate, as a one-table run's closing line says them (progress62 F7).
    let bytes = sent_bytes(report);
    let rate = match (bytes, report.seconds > 0.0) {
        (0, _) => String::new(),
        (_, true) => format!(
            " ({}, {}/s)",
            HumanBytes(bytes),
            HumanBytes((bytes as f64 / report.seconds) as u64)
        ),
        (_, false) => format!(" ({})", HumanBytes(bytes)),
    };
    // The source's rows are counted of the tables committed somewhere: one that failed
    // everywhere is said beside them (recheck74 F4: "0 source rows" beside the bytes sent).
    let uncounted = (report.tables.iter())
        .filter(|t| (t.destinations.iter()).all(|d| d.status == Status::Failed))
        .count();
    let uncounted = match uncounted {
        0 => String::new(),
        n => format!(
            " (of the tables committed somewhere; {} failed everywhere)",
            plural(n, "table")
        ),
    };
    if !output.quiet {
        writeln!(
            out,
            "copyman: {} of {} tables × destinations done ({} to {}){verified}, {} source \
             {}{uncounted}, {} {} committed on the destinations in {:.1} s{rate}{planned}{}",
            done,
            pairs,
            plural(report.tables.len(), "table"),
            plural(dests.len(), "destination"),
            HumanCount(source_rows),
            if source_rows == 1 { "row" } else { "rows" },
            HumanCount(rows),
            if rows == 1 { "row" } else { "rows" },
            report.seconds,
            report
                .snapshot
                .as_ref()
                .map(|s| if earlier_run {
                    format!(
                        ", snapshot {s} (the tables this run copied; those already done come \
                         from an earlier run's)"
                    )
                } else {
                    format!(", snapshot {s}")
                })
                .unwrap_or_default()
        )?;
        // Left out: what an earlier run recorded done there is counted so, unchecked (a resume
        // checks each table on its destination): said, as the exit status says it (jobs66
        // F16: "done", exit 0).
        let unreached: Vec<String> = (options.left_out.iter().map(|(d, _)| *d))
            .chain(options.unreachable.iter().map(|(d, _)| *d))
            .map(|d| format!("destination {}", d + 1))
            .collect();
        if !unreached.is_empty() {
            writeln!(
                out,
                "copyman: {} not reached (left out, --keep-going): the tables an earlier run \
                 recorded done there are counted done, not checked now; resume once it answers",
                unreached.join(", ")
            )?;
        }
    }
    // Interrupted: every table is said, committed or not, so the user knows where it stands.
    let interrupted = report.interrupted.is_some() && !report.succeeded();
    // Tables a stopped job never reached are counted, not listed one line each (a job of 300
    // tables whose first failed would bury its reason): `--verbose` and `--json` list them.
    let mut not_started: Vec<String> = Vec::new();
    // Under --keep-going each failure was said as it happened (a failure alike on every table
    // once): the summary lists the first few again, then counts (500 failures were 1 000
    // lines).
    const LISTED: usize = 10;
    let (mut listed, mut unlisted) = (0, 0);
    // A destination where every table failed for one reason (unreachable from the start, left
    // out under --keep-going) is said once, not once per table: the error without the table's
    // name it begins with (`table "s"."t": …`).
    let whole: Vec<Option<String>> = (0..dests.len())
        .map(|i| {
            let mut errors = report.tables.iter().map(|t| {
                let d = t
                    .destinations
                    .get(i)
                    .filter(|d| d.status == Status::Failed)?;
                let e = d.error.as_ref()?.to_string();
                let own = format!("table {}: ", t.table);
                Some(e.strip_prefix(&own).map(str::to_owned).unwrap_or(e))
            });
            let first = errors.next().flatten()?;
            (report.tables.len() > 1 && errors.all(|e| e.as_ref() == Some(&first))).then_some(first)
        })
        .collect();
    for (i, (e, s)) in whole.iter().zip(dests).enumerate() {
        if let Some(e) = e {
            writeln!(
                out,
                "  every table → destination {} ({}): failed: {e}",
                i + 1,
                s.name
            )?;
        }
    }
    for t in &report.tables {
        // The source's error, the same for every destination, said once.
        let source_failed = t
            .destinations
            .first()
            .and_then(|first| first.error.as_ref())
            .filter(|e| {
                e.message.starts_with("source: ")
                    && t.destinations.len() > 1
                    && t.destinations
                        .iter()
                        .all(|d| d.status == Status::Failed && d.error.as_ref() == Some(*e))
            });
        if let Some(e) = source_failed {
            writeln!(out, "  {} → every destination: failed: {e}", t.table)?;
            continue;
        }
        for (i, (d, s)) in t.destinations.iter().zip(dests).enumerate() {
            if whole[i].is_some() {
                continue;
            }
            if let Some(warning) = &d.warning {
                writeln!(
                    out,
                    "copyman: warning: {} → destination {} ({}): {warning}",
                    t.table,
                    i + 1,
                    s.name
                )?;
            }
            // (Interrupted, the tables done are named together below, not each: thousands.)
            let show = output.verbose || !d.status.is_done() || d.error.is_some();
            if !show || (output.quiet && d.status == Status::NotStarted) {
                continue;
            }
            if d.status == Status::NotStarted && d.error.is_none() && !output.verbose {
                let name = t.table.to_string();
                if not_started.last() != Some(&name) {
                    not_started.push(name);
                }
                continue;
            }
            // (Said live only where the job went on and spoke: --keep-going, not --quiet.)
            let said_live = options.keep_going && !output.quiet && !output.verbose;
            if d.status == Status::Failed && said_live {
                if listed == LISTED {
                    unlisted += 1;
                    continue;
                }
                listed += 1;
            }
            write!(
                out,
                "  {} → destination {} ({}): {}",
                t.table,
                i + 1,
                s.name,
                d.status.name()
            )?;
            if let Some(rows) = d.rows {
                write!(out, ", {rows} row{}", if rows == 1 { "" } else { "s" })?;
                // Those an earlier run committed, which the destination no longer matches (its
                // rows now are in the checksum's words): not what it holds (jobs41 F4).
                if d.status == Status::Differs {
                    write!(out, " recorded")?;
                }
            }
            if d.verified == Some(true) {
                write!(out, ", verified")?;
            }
            if let Some(e) = &d.error {
                write!(out, ": {e}")?;
            }
            writeln!(out)?;
        }
    }
    if unlisted > 0 {
        writeln!(
            out,
            "  and {unlisted} more failed (--verbose or --json lists them)"
        )?;
    }
    if !not_started.is_empty() {
        let names = named_briefly(&not_started, 5, LISTED_AFTER);
        writeln!(
            out,
            "  not started on some or every destination: {} ({names})",
            plural(not_started.len(), "table")
        )?;
    }
    // A partial job names what did commit beside what failed (commit42 F4: only the failures
    // were listed, the one table committed said by --json alone).
    if !interrupted && !output.verbose && !report.succeeded() {
        // A table committed on some destinations and not on the others first, and said so: it
        // was hidden in "and 39 more" beside "the tables in flight are rolled back" (jobs44 F2).
        let split = |t: &&job::TableReport| {
            t.destinations.iter().any(|d| d.status == Status::Committed)
                && t.destinations.iter().any(|d| !d.status.is_done())
        };
        let committed_on = |t: &job::TableReport| -> Vec<String> {
            (t.destinations.iter().enumerate())
                .filter(|(_, d)| d.status == Status::Committed)
                .map(|(i, _)| format!("{} → destination {}", t.table, i + 1))
                .collect()
        };
        let (split_tables, whole): (Vec<&job::TableReport>, Vec<&job::TableReport>) =
            report.tables.iter().partition(split);
        let some: Vec<String> = split_tables.iter().flat_map(|t| committed_on(t)).collect();
        if !some.is_empty() {
            writeln!(
                out,
                "  committed on some destinations only: {}",
                named_briefly(&some, 5, LISTED_AFTER)
            )?;
        }
        let committed: Vec<String> = (split_tables.iter().chain(&whole))
            .flat_map(|t| committed_on(t))
            .collect();
        if !committed.is_empty() {
            writeln!(
                out,
                "  committed by this run: {}",
                named_briefly(&committed, 5, LISTED_AFTER)
            )?;
        }
    }
    if let Some(why) = &report.stopped {
        writeln!(out, "copyman: the job stopped: {why}")?;
    }
    if let Some(why) = report.interrupted.as_ref().filter(|_| interrupted) {
        let (done, not): (Vec<_>, Vec<_>) = report
            .tables
            .iter()
            .partition(|t| t.destinations.iter().all(|d| d.status.is_done()));
        // Committed everywhere, its checksum differing somewhere, or its verification cut
        // short: not recorded as done (a mismatch was listed as recorded).
        let (differing, done): (Vec<_>, Vec<_>) = done
            .into_iter()
            .partition(|t| t.destinations.iter().any(|d| d.verified == Some(false)));
        let (unverified, done): (Vec<_>, Vec<_>) = done
            .into_iter()
            .partition(|t| t.destinations.iter().any(|d| d.unverified));
        // Ten named (each under --verbose), the rest counted.
        let names = |tables: &[&job::TableReport]| {
            let names: Vec<String> = tables.iter().map(|t| t.table.to_string()).collect();
            let shown = if output.verbose { names.len() } else { 10 };
            match named_briefly(&names, shown, LISTED_AFTER) {
                said if names.len() > shown => format!("{} tables: {said}", names.len()),
                said => said,
            }
        };
        let unverified = if unverified.is_empty() {
            String::new()
        } else {
            format!(
                "; committed on every destination, not recorded as done (not compared: --resume \
                 compares them): {}",
                names(&unverified)
            )
        };
        let differing = if differing.is_empty() {
            String::new()
        } else {
            format!(
                "; committed on every destination, its checksum differing (not recorded as \
                 done): {}",
                names(&differing)
            )
        };
        writeln!(
            out,
            "copyman: {why}: committed on every destination (and recorded): {}{differing}\
             {unverified}; not committed everywhere: {}",
            names(&done),
            names(&not)
        )?;
    }
    if differs(report) {
        // What a resume does with it is the table's own line's (an append's is left to the
        // user, never emptied).
        let then = if options.truncate {
            "--resume empties it there and copies it again"
        } else {
            "--resume does as its line says"
        };
        writeln!(
            out,
            "copyman: a table whose checksum differs is committed there but not recorded as done: \
             {then} (mend what makes it differ first — a trigger on the destination, a \
             column of a type that reads values otherwise, rows written since on the source or \
             there, as said above — or it will differ again)"
        )?;
    }
    if let Some(advice) = closing_advice(report, options) {
        writeln!(out, "{advice}")?;
    }
    Ok(())
}

/// The closing line that says what to do next, to bring a job that did not finish to its end:
/// stderr's last line, and `--json`'s `advice` (recheck49 F5: a job's document had none).
fn closing_advice(report: &JobReport, options: &Options) -> Option<String> {
    // A table whose rows other tables' rows reference, which could not be emptied: a resume
    // fails on it again until that is mended (the job's error says how).
    let referenced = report.tables.iter().any(|t| {
        t.destinations.iter().any(|d| {
            d.error.as_ref().is_some_and(|e| {
                matches!(e.sqlstate.as_deref(), Some("0A000" | "23503"))
                    && e.message.contains("copyman empties no other table")
            })
        })
    });
    // The state file went while the job ran: a resume has no record of what this run committed.
    let state_lost = report.stopped.as_deref().is_some_and(|why| {
        why.contains(copyman_job::state::REMOVED_OR_REPLACED)
            || why.contains(copyman_job::state::ALTERED)
    });
    // Moved: its records are whole at its new name, which the reason says with the resume.
    let state_moved = (report.stopped.as_deref())
        .filter(|why| why.contains(copyman_job::state::MOVED))
        .filter(|_| !report.succeeded());
    let line = if let Some(why) = state_moved {
        let resume = why
            .rsplit_once("run the job again with ")
            .map_or("--resume", |(_, r)| r);
        format!(
            "copyman: the state file {} was moved while the job ran: run the job again with \
             {resume}",
            options.state.display()
        )
    } else if state_lost && !report.succeeded() {
        let committed: Vec<String> = report
            .tables
            .iter()
            .filter_map(|t| {
                let on: Vec<String> = t
                    .destinations
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| d.status == Status::Committed)
                    .map(|(i, _)| (i + 1).to_string())
                    .collect();
                (!on.is_empty()).then(|| format!("{} on destination {}", t.table, on.join(", ")))
            })
            .collect();
        let committed = if committed.is_empty() {
            "nothing".to_owned()
        } else {
            committed.join("; ")
        };
        format!(
            "copyman: the state file {} was removed, replaced or altered while the job ran, so \
             --resume has no record of this run; it committed {committed}: copy the others in a job \
             without those tables, or every table again with --truncate (which empties each \
             first)",
            options.state.display()
        )
    } else if referenced {
        format!(
            "copyman: a table whose rows other tables reference could not be emptied (above), \
             and --resume would fail on it again until that is mended there: do what its error \
             says (state file {})",
            options.state.display()
        )
    } else if let Some(advice) = lasting_advice(report, options) {
        advice
    } else if report.stopped_waiting {
        // The same resume would meet the same order; one that empties every table copies them
        // as one group, whatever each destination holds.
        format!(
            "copyman: state file {}: --resume alone would stop the same way (the tables left wait \
             on each other, above): run again with --resume --truncate, which empties every \
             table of the selection first and copies them together, or copy the table copied \
             without emptying in a job of its own first",
            options.state.display()
        )
    } else if !report.succeeded() && !truncating(options) && differs(report) {
        // An append's resume refuses a table whose checksum differed (jobs44 F1: "run again
        // with --resume", which was refused, exit 2), unless it verifies (compared again); a
        // resume of a job begun with --truncate replaces it (first47 F4: this was said of one,
        // false).
        format!(
            "copyman: state file {}: --resume without --verify refuses a table whose checksum \
             differs (see its line): compare it with the source and mend it, then run again \
             with --resume --verify (compared again: done if it matches), or with --resume \
             --truncate to replace it, or leave it out (--exclude-table) to copy the rest",
            options.state.display()
        )
    } else if !report.succeeded() && !truncating(options) && partly_committed(report) {
        // An append's resume refuses a table a part of which committed.
        format!(
            "copyman: state file {}: --resume copies what is missing, but refuses a table a part \
             of which committed (see its line)",
            options.state.display()
        )
    } else if !report.succeeded() && options.two_phase.is_some() && in_doubt(report) {
        // A prepared transaction not finished: a resume refuses its table until recover.
        format!(
            "copyman: state file {}: run copyman recover {} first (a table in doubt may be \
             prepared), then run again with {} to copy what is missing",
            options.state.display(),
            crate::recover::same_as_this_run(),
            resume_arg(options)
        )
    } else if !report.succeeded() && uncomparable(report) {
        // Committed and not compared, for a reason a resume meets again (a column dropped
        // there): the same run again, exit 4, for ever (jobs46 F2).
        format!(
            "copyman: state file {}: a table's checksum cannot be computed on a destination for \
             a reason a resume meets again (see its line): mend that there, then run again with \
             --resume (which compares it again; with --truncate to replace it), or leave it \
             out (--exclude-table) to finish the rest",
            options.state.display()
        )
    } else if !report.succeeded() {
        format!(
            "copyman: state file {}: run again with {} to copy what is missing",
            options.state.display(),
            resume_arg(options)
        )
    } else {
        return None;
    };
    Some(line)
}

/// Whether the default state file's name depends on a destination that could not be asked who
/// it is ([`default_state`]): a later `--resume` finds it only given `--state`.
static STATE_MUST_BE_NAMED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// `--resume`, with `--state` where a resume must name the file (jobs48 F3: the closing line's
/// plain `--resume` looked for another file, refused, beside a line saying to give --state).
fn resume_arg(options: &Options) -> String {
    match STATE_MUST_BE_NAMED.load(std::sync::atomic::Ordering::Relaxed) {
        true => format!("--resume --state {}", options.state.display()),
        false => "--resume".to_owned(),
    }
}

/// Whether what is not done is only tables committed whose checksum could not be computed, for a
/// reason a rerun meets again ([`job::TableError::lasts`]): a resume copies nothing, and
/// compares them again in vain.
fn uncomparable(report: &JobReport) -> bool {
    let results = || report.tables.iter().flat_map(|t| t.destinations.iter());
    let open: Vec<_> = results()
        .filter(|d| !d.status.is_done() || d.unverified || d.verified == Some(false))
        .collect();
    !open.is_empty()
        && open
            .iter()
            .all(|d| d.unverified && d.error.as_ref().is_some_and(job::TableError::lasts))
}

/// What to fix when a table failed with an error a rerun meets again ([`job::TableError::lasts`]:
/// a table missing or different on a destination, a view or a sequence written to, a bad row, a
/// constraint, a privilege): "run again with --resume" alone cannot finish such a job. `None`
/// when every failure may pass on another try (a connection lost, a lock timeout, a cancel).
fn lasting_advice(report: &JobReport, options: &Options) -> Option<String> {
    // By destination and SQLSTATE, in the order met, each with its first tables: 500 tables
    // missing on one destination are one group, not a line of 24 000 characters.
    // (`None`: the source's, every destination's alike, said once.)
    type Group<'a> = ((Option<usize>, Option<&'a str>), Vec<String>);
    let mut groups: Vec<Group<'_>> = Vec::new();
    for t in &report.tables {
        for (i, d) in t.destinations.iter().enumerate() {
            // Committed and only not compared: its own line says so, no copy failed.
            let Some(e) = d.error.as_ref().filter(|e| e.lasts() && !d.unverified) else {
                continue;
            };
            let whose = (!e.message.starts_with("source: ")).then_some(i);
            let key = (whose, e.sqlstate.as_deref());
            let name = t.table.to_string();
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, tables)) if !tables.contains(&name) => tables.push(name),
                Some(_) => {}
                None => groups.push((key, vec![name])),
            }
        }
    }
    let count: usize = groups.iter().map(|(_, tables)| tables.len()).sum();
    if count == 0 {
        return None;
    }
    let said: Vec<String> = groups
        .iter()
        .map(|((whose, code), tables)| {
            let code = code.map(|c| format!(", SQLSTATE {c}")).unwrap_or_default();
            let names: Vec<&str> = tables.iter().map(String::as_str).collect();
            let server = whose.map_or_else(
                || "the source".to_owned(),
                |i| format!("destination {}", i + 1),
            );
            format!("{server}{code}: {}", job::first_names(&names))
        })
        .collect();
    // A table or a schema missing there: what creates them, as a DBA does it; one gone from
    // the source since the job planned is the source's to mend (it advised creating it on the
    // destination from the source).
    let missing = |on_source: bool| {
        (groups.iter()).any(|((whose, code), _)| {
            whose.is_none() == on_source && matches!(code, Some("42P01" | "3F000"))
        })
    };
    // A SQL_ASCII source's bytes read as UTF8: the way out (enc45 F6: "the error above says
    // what is wrong", which it did not, where one table's error says this).
    let ascii = (groups.iter()).any(|((whose, code), _)| whose.is_none() && *code == Some("22021"));
    let mut ascii = match report::sql_ascii_source().filter(|_| ascii) {
        Some(hint) => format!("; {hint}"),
        None => String::new(),
    };
    // A value too long for a SQL_ASCII destination, whose lengths count bytes (types62 F3).
    let too_long: Vec<String> = (groups.iter())
        .filter(|((_, code), _)| *code == Some("22001"))
        .filter_map(|((whose, _), _)| Some(format!("destination {}", (*whose)? + 1)))
        .collect();
    if let Some(why) = report::lengths_in_bytes(Some(&too_long)) {
        ascii.push_str(&format!("; {why}"));
    }
    let create = match (missing(false), missing(true)) {
        (true, _) => {
            "; a table or schema missing there is created from the source's definitions, e.g. \
             pg_dump --section=pre-data of the source into it (its tables without their \
             triggers, indexes and foreign keys: --section=post-data after the copy adds them, \
             as pg_dump and pgcopydb do)"
        }
        (false, true) => {
            "; a table gone from the source since the job planned is created again there, or \
             left out of the job (--exclude-table)"
        }
        (false, false) => "",
    };
    // (`--resume --state FILE` where a resume must name the file: recheck48b F5.)
    let resume = match STATE_MUST_BE_NAMED.load(std::sync::atomic::Ordering::Relaxed) {
        true => resume_arg(options),
        false => format!("--resume (state file {})", options.state.display()),
    };
    Some(format!(
        "copyman: {} failed with an error a rerun meets again until it is mended ({}): mend {} \
         first (the error above says what is wrong{create}{ascii}), then run again with {resume} \
         to copy what is missing",
        plural(count, "table copy"),
        said.join("; "),
        if count == 1 { "it" } else { "them" },
    ))
}

/// What the process knows of every table × destination, from the plan and the job's events:
/// what a second signal prints before the process exits at once ([`signals::set_at_once`]),
/// with no server round trip.
#[derive(Default)]
struct Ledger {
    /// The destinations' names.
    dests: Vec<String>,
    /// The state file.
    state: String,
    /// `--atomic`.
    two_phase: bool,
    /// Each table of the plan, and where it stands on each destination.
    tables: Vec<(String, Vec<Cell>)>,
    /// The ranges of each table split into ranges (one backend each on every destination).
    ranges: HashMap<String, usize>,
    /// Under `--atomic`, the tables whose commit decision is recorded ([`Event::Decided`]):
    /// what is prepared of them commits (`copyman recover` commits it).
    decided: HashSet<String>,
    /// Under `--atomic`, the tables whose commit decision is being written to the decision log
    /// now ([`Event::Recording`]): what is prepared of them is in doubt if copyman exits.
    recording: HashSet<String>,
}

/// A backend's statement that ends a table's transaction ([`Cell::Ending`]).
#[derive(Debug, Clone, PartialEq)]
struct Step {
    /// The backend's process id, if its server gave it.
    pid: Option<i32>,
    action: Action,
    /// Where its answer stands.
    answer: Answer,
}

impl Step {
    /// A COMMIT or COMMIT PREPARED.
    fn commits(&self) -> bool {
        matches!(self.action, Action::Commit | Action::CommitPrepared(_))
    }
}

/// Where a table stands on a destination, as far as this process knows.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    /// Not taken up yet.
    NotStarted,
    /// Done by an earlier run.
    AlreadyDone,
    /// Refused at planning.
    Refused,
    /// Being copied: its transaction is open (a closed connection rolls it back).
    Copying,
    /// Its transactions end (one, or one per range of a split table: how many): each
    /// backend's last statement and where its answer stands.
    Ending(usize, Vec<Step>),
    /// The job's report for it.
    Finished(Status),
}

impl Ledger {
    fn new(plan: &job::Plan, dests: &[Server], options: &Options) -> Self {
        Self {
            dests: dests.iter().map(|d| d.name.clone()).collect(),
            state: options.state.display().to_string(),
            two_phase: options.two_phase.is_some(),
            tables: plan
                .tables
                .iter()
                .map(|t| {
                    let cells = t
                        .destinations
                        .iter()
                        .map(|d| match d {
                            DestPlan::Done(_) => Cell::AlreadyDone,
                            DestPlan::Refused(_) => Cell::Refused,
                            _ => Cell::NotStarted,
                        })
                        .collect();
                    (t.table.to_string(), cells)
                })
                .collect(),
            ranges: plan
                .tables
                .iter()
                .filter(|t| t.ranges.len() > 1)
                .map(|t| (t.table.to_string(), t.ranges.len()))
                .collect(),
            decided: HashSet::new(),
            recording: HashSet::new(),
        }
    }

    /// The tables whose COMMITs (or COMMIT PREPAREDs) began on some destination, or whose
    /// commit decision is being recorded (it commits once written: signals67 F9, a first
    /// signal then said "the tables being copied are rolled back", and it committed): a first
    /// signal lets them finish.
    fn committing(&self) -> Vec<String> {
        // Committed on every destination already (its --verify running): no COMMIT of it
        // finishes — "the tables committed stay committed" says it (signals67 F3: "its
        // COMMITs began and finish" of a checksum being cancelled).
        let committed = |cell: &Cell| match cell {
            Cell::Ending(_, steps) => {
                !steps.is_empty() && steps.iter().all(|s| s.commits() && s.answer.took_effect())
            }
            _ => true,
        };
        (self.tables.iter())
            .filter_map(|(table, cells)| {
                if self.recording.contains(table) {
                    return Some(format!("{table} (its commit decision being recorded)"));
                }
                let began = cells.iter().any(|cell| {
                    matches!(cell, Cell::Ending(_, steps) if steps.iter().any(Step::commits))
                });
                (began && !cells.iter().all(committed)).then(|| table.clone())
            })
            .collect()
    }

    fn cells(&mut self, table: &str) -> Option<&mut Vec<Cell>> {
        self.tables
            .iter_mut()
            .find(|(t, _)| t == table)
            .map(|(_, cells)| cells)
    }

    fn event(&mut self, event: &Event) {
        match event {
            Event::TableStarted { table, .. } => {
                if let Some(cells) = self.cells(&table.to_string()) {
                    for c in cells.iter_mut().filter(|c| **c == Cell::NotStarted) {
                        *c = Cell::Copying;
                    }
                }
            }
            Event::CommitStep {
                table,
                destination,
                pid,
                replaces,
                action,
                answer,
                ..
            } => {
                let key = table.to_string();
                let ranges = self.ranges.get(&key).copied().unwrap_or(1);
                if let Some(cell) = self
                    .cells(&key)
                    .and_then(|cells| cells.get_mut(*destination))
                {
                    if !matches!(cell, Cell::Ending(..)) {
                        *cell = Cell::Ending(ranges, Vec::new());
                    }
                    if let Cell::Ending(_, steps) = cell {
                        steps.retain(|s| {
                            s.pid != *pid && (replaces.is_none() || s.pid != *replaces)
                        });
                        steps.push(Step {
                            pid: *pid,
                            action: action.clone(),
                            answer: answer.clone(),
                        });
                    }
                }
            }
            Event::Decided { tables } => {
                self.decided.extend(tables.iter().map(ToString::to_string));
            }
            Event::Recording { log, tables } => {
                let tables = tables.iter().map(ToString::to_string);
                match log {
                    Some(_) => self.recording.extend(tables),
                    None => tables.for_each(|t| {
                        self.recording.remove(&t);
                    }),
                }
            }
            Event::TableFinished { report, .. } => {
                if let Some(cells) = self.cells(&report.table.to_string()) {
                    for (cell, d) in cells.iter_mut().zip(&report.destinations) {
                        *cell = Cell::Finished(d.status);
                    }
                }
            }
            _ => {}
        }
    }

    /// Where `cell` stands if the process exits now: a status (`--json`'s words), and what
    /// follows from it.
    fn verdict(&self, cell: &Cell, decided: bool) -> (&'static str, &'static str) {
        let recover = if self.two_phase {
            "it may have committed or be prepared: copyman recover finishes it"
        } else {
            "it may have committed: --resume asks its server (done if it did, copied again if not)"
        };
        match cell {
            Cell::NotStarted => ("not started", ""),
            Cell::AlreadyDone => ("already done", ""),
            Cell::Refused => ("failed", "refused while planning"),
            // As one table's document says it (recheck56 F5: "interrupted" here alone).
            Cell::Copying => (
                "rolled back",
                "its transaction was open: its server rolls it back",
            ),
            Cell::Finished(Status::Committed) => ("committed", "recorded in the state file"),
            Cell::Finished(Status::InDoubt) => ("in doubt", recover),
            Cell::Finished(status) => (status.name(), ""),
            Cell::Ending(ranges, steps) => {
                let committed = |s: &Step| s.commits() && s.answer.took_effect();
                // One backend per destination, or one per range of a split table.
                let all_committed = steps.len() == *ranges && steps.iter().all(committed);
                // Some of a split table's ranges committed, none unanswered: a part is there.
                let part = steps.iter().any(committed)
                    && steps
                        .iter()
                        .all(|s| !s.answer.is_awaited() && !matches!(s.action, Action::Prepare(_)));
                // An error answer or a broken connection leaves a COMMIT in doubt too.
                // Prepared and answered, nothing sent after: not committed (yet).
                let prepared = !steps.is_empty()
                    && steps
                        .iter()
                        .all(|s| matches!(s.action, Action::Prepare(_)) && s.answer.took_effect());
                // Its PREPAREs sent, one not answered yet: prepared or not, nothing committed
                // (the decision comes once every PREPARE was answered).
                let preparing = steps.iter().all(|s| matches!(s.action, Action::Prepare(_)))
                    && steps.iter().any(|s| s.answer.is_awaited());
                // A statement its server refused took no effect.
                let may_have = steps.iter().any(|s| match &s.action {
                    _ if s.answer.refusal().is_some() => false,
                    Action::Commit | Action::CommitPrepared(_) | Action::Prepare(_) => true,
                    _ => false,
                });
                // Its ROLLBACK PREPARED sent, not answered: sent only where the run decided no
                // commit, nothing of it commits (commit48 F5: "it may have committed").
                let rolling_back = steps.iter().any(|s| {
                    matches!(s.action, Action::RollbackPrepared(_)) && !s.answer.took_effect()
                });
                if all_committed {
                    (
                        "committed",
                        "not recorded in the state file: --resume finds it committed there and \
                         records it",
                    )
                } else if part && !self.two_phase {
                    (
                        "partly committed",
                        "some of its ranges committed, the others not: an append's --resume \
                         refuses it (see its advice), one under --truncate empties it and copies \
                         it again",
                    )
                } else if prepared && decided {
                    (
                        "commit pending",
                        "its PREPARE TRANSACTION was answered and the run recorded its commit \
                         decision: it commits — copyman recover commits it",
                    )
                } else if prepared {
                    (
                        "prepared",
                        "its PREPARE TRANSACTION was answered and no COMMIT PREPARED sent: not \
                         committed; copyman recover commits it if the run recorded its commit \
                         decision, else rolls it back",
                    )
                } else if preparing {
                    (
                        "prepared or not",
                        "its PREPARE TRANSACTION was sent, not answered: prepared or not, \
                         nothing of it committed; copyman recover commits a prepared one if the \
                         run recorded its commit decision, else rolls it back",
                    )
                } else if rolling_back && !may_have {
                    (
                        "rollback pending",
                        "its ROLLBACK PREPARED was sent, not answered: nothing of it committed; \
                         rolled back, or prepared until copyman recover rolls it back",
                    )
                } else if may_have && *ranges > 1 && !self.two_phase {
                    // Its ranges commit one by one: some may be there, the others not.
                    (
                        "in doubt",
                        "a COMMIT of its ranges sent and not answered (the others committed or \
                         not sent): some of its ranges may have committed: an append's --resume \
                         refuses it (see its advice), one under --truncate empties it and copies \
                         it again",
                    )
                } else if may_have {
                    ("in doubt", recover)
                } else if steps.iter().any(|s| s.answer.refusal().is_some()) {
                    (
                        "failed",
                        "its server refused the statement that ends its transaction: nothing \
                         of it committed there",
                    )
                } else {
                    (
                        "rolled back",
                        "its transaction was open: its server rolls it back",
                    )
                }
            }
        }
    }

    /// The exit status of a second signal, as in a one-table run
    /// ([`signals::at_once_exit`]): 4 (partial) when the COMMITs were under way — a table's
    /// COMMIT or COMMIT PREPARED was sent on some destination (answered or not: under
    /// `--atomic` the first goes out once the commit decision is recorded), or one is in doubt
    /// —, else the signal's own: a PREPARE commits nothing.
    fn at_once_exit(&self, signal: i32) -> i32 {
        let cells = (self.tables.iter())
            .flat_map(|(table, cells)| cells.iter().map(move |cell| (table, cell)));
        let committing = cells.into_iter().any(|(table, cell)| {
            let (status, _) = self.verdict(cell, self.decided.contains(table));
            let decided = matches!(cell, Cell::Ending(_, steps)
                if steps.iter().any(|s| matches!(s.action, Action::CommitPrepared(_))));
            decided
                || status == "commit pending"
                || status == "in doubt"
                || status == "partly committed"
                || (matches!(cell, Cell::Ending(..)) && status == "committed")
        });
        signals::at_once_exit(signal, committing)
    }

    /// What is known right now: a line per table × destination and a summary on stderr, and
    /// under `--json` a document on stdout, for a process that exits at once on `signal`; returns
    /// its exit status ([`Ledger::at_once_exit`]).
    fn exit_at_once(&self, signal: i32, json: bool) -> i32 {
        let (exit, said, document) = self.at_once(signal);
        crate::progress::write_stderr(said.as_bytes());
        if json {
            let _ = report::print_json(&document);
        }
        exit
    }

    /// [`exit_at_once`](Self::exit_at_once)'s exit status, words for stderr and `--json`
    /// document.
    fn at_once(&self, signal: i32) -> (i32, String, Value) {
        let exit = self.at_once_exit(signal);
        let mut records = Vec::new();
        let mut lines = Vec::new();
        let (mut committed, mut doubt, mut prepared) = (Vec::new(), Vec::new(), Vec::new());
        let mut pending = Vec::new();
        // A split table some of whose ranges' COMMITs (or COMMIT PREPAREDs) were answered on a
        // destination, not all: committed in part there (signals67 F2: "committed: none").
        let mut partly = Vec::new();
        // The first destination whose COMMIT is in doubt: what a script looks at first.
        let mut doubt_on: Option<(usize, &str)> = None;
        let mut unlisted: std::collections::BTreeMap<&str, usize> = Default::default();
        for (table, cells) in &self.tables {
            for (i, (cell, dest)) in cells.iter().zip(&self.dests).enumerate() {
                let (status, mut note) = self.verdict(cell, self.decided.contains(table));
                // Its decision being written: whether it reached the log is not known, recover
                // reads it there (recheck66 F8: "if the run recorded it", of a write cut short).
                let recording = self.recording.contains(table);
                if recording && matches!(status, "prepared" | "prepared or not") {
                    note = "its commit decision was being written to the decision log when \
                            copyman exited: whether it reached the log is not known; copyman \
                            recover commits it if it did, else rolls it back";
                }
                // Its prepared transactions, as recover and pg_prepared_xacts name them (one
                // per range of a split table).
                let gids: Vec<&str> = match cell {
                    Cell::Ending(_, steps) => (steps.iter())
                        .filter_map(|s| match &s.action {
                            Action::Prepare(gid)
                            | Action::CommitPrepared(gid)
                            | Action::RollbackPrepared(gid) => Some(gid.as_str()),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let (in_flight, refused) = match cell {
                    Cell::Ending(_, steps) => (
                        (steps.iter().find(|s| s.answer.is_awaited())).map(|s| s.action.sql()),
                        steps.iter().find_map(|s| {
                            (s.answer.refusal()).map(|why| format!("{}: {why}", s.action.sql()))
                        }),
                    ),
                    _ => (None, None),
                };
                records.push(json!({
                    "table": table,
                    "destination": dest,
                    "server": format!("destination {}", i + 1),
                    "endpoint": dest,
                    "status": status,
                    "recorded": matches!(cell, Cell::Finished(Status::Committed | Status::AlreadyDone)),
                    "unanswered": in_flight,
                    "refused": refused,
                    "note": (!note.is_empty()).then_some(note),
                    "gid": (gids.len() == 1).then(|| gids[0]),
                    "gids": (gids.len() > 1).then_some(&gids),
                }));
                let at = format!("{table} on destination {}", i + 1);
                let some_committed = matches!(cell, Cell::Ending(_, steps)
                    if steps.iter().any(|s| s.commits() && s.answer.took_effect()));
                if status != "committed" && some_committed {
                    partly.push(at.clone());
                }
                match status {
                    "committed" => committed.push(at),
                    "in doubt" => {
                        doubt_on.get_or_insert((i, dest.as_str()));
                        doubt.push(at);
                    }
                    "prepared" | "prepared or not" => prepared.push(at),
                    "commit pending" => pending.push(at),
                    _ => {}
                }
                // What a resume reads in the state file, or was not begun, is counted, not
                // listed: a job of thousands of tables said each (`--json` lists them).
                let quiet = matches!(cell, Cell::NotStarted | Cell::AlreadyDone)
                    || *cell == Cell::Finished(Status::Committed);
                if quiet {
                    *unlisted.entry(status).or_default() += 1;
                    continue;
                }
                let mut line = format!("  {table} → destination {} ({dest}): {status}", i + 1);
                if let Some(sql) = &in_flight {
                    line.push_str(&format!(" ({sql} sent, not answered)"));
                }
                if !gids.is_empty() {
                    line.push_str(&format!(" as {}", gids.join(", ")));
                }
                if !note.is_empty() {
                    line.push_str(&format!(": {note}"));
                }
                if let Some(refused) = &refused {
                    line.push_str(&format!(" ({refused})"));
                }
                lines.push(line);
            }
        }
        let list = |v: &[String]| named_briefly(v, 10, "--json lists each");
        let mut said = String::new();
        for line in &lines {
            said.push_str(&format!("{line}\n"));
        }
        if !unlisted.is_empty() {
            let counted: Vec<String> = (unlisted.iter())
                .map(|(status, n)| match *status {
                    "committed" => format!("{n} committed and recorded"),
                    status => format!("{n} {status}"),
                })
                .collect();
            said.push_str(&format!(
                "  tables × destinations not listed: {} (--json lists each)\n",
                counted.join(", ")
            ));
        }
        let summary = if self.tables.is_empty() {
            // A resume's earlier runs committed tables: "nothing was committed" was false.
            "this run committed nothing: the job was still being planned (what earlier runs \
             of the job committed stays committed)"
                .to_owned()
        } else {
            // An empty category is left out, its explanation with it (signals43 F6).
            format!(
                "exited at once: committed: {}; {}{}{}{}nothing else was \
                 committed by this run (the servers roll back the open transactions)",
                list(&committed),
                if partly.is_empty() {
                    String::new()
                } else {
                    format!(
                        "committed in part (some of its ranges' COMMITs were answered, the \
                         others not): {}; ",
                        list(&partly)
                    )
                },
                if pending.is_empty() {
                    String::new()
                } else {
                    format!(
                        "decided commit, prepared, its COMMIT PREPARED not sent yet (copyman \
                         recover commits them): {}; ",
                        list(&pending)
                    )
                },
                match (doubt.is_empty(), self.two_phase) {
                    (true, _) => String::new(),
                    (false, two_phase) => format!(
                        "in doubt (a statement that ends its transaction was sent, not \
                         answered: it may have committed; {}): {}; ",
                        if two_phase {
                            "copyman recover finishes what is prepared"
                        } else {
                            "--resume asks each server whether such a table committed"
                        },
                        list(&doubt)
                    ),
                },
                if prepared.is_empty() {
                    String::new()
                } else {
                    format!(
                        "prepared or being prepared, not committed (copyman recover commits them if the run \
                         decided commit, else rolls them back): {}; ",
                        prepared.join(", ")
                    )
                }
            )
        };
        // A prepared transaction, or a COMMIT PREPARED unanswered: a resume refuses its table
        // until recover has finished it.
        let recover_first =
            if self.two_phase && !(doubt.is_empty() && prepared.is_empty() && pending.is_empty()) {
                format!(
                    "run copyman recover {} first, then ",
                    crate::recover::same_as_this_run()
                )
            } else {
                String::new()
            };
        said.push_str(&format!("copyman: {summary}\n"));
        // Nothing was begun while planning: nothing to resume.
        if !self.tables.is_empty() {
            said.push_str(&format!(
                "copyman: state file {}: {recover_first}run again with --resume to copy what is \
                 missing\n",
                self.state
            ));
        }
        let document = json!({
            "status": "interrupted",
            "exit_code": exit,
            "exited_at_once": true,
            // The signal that stopped it, as one table's says it (ops54 F7: absent).
            "interrupted": format!("interrupted by {}", signals::name(signal)),
            // Why, in the words said (it was "interrupted (exit 4)").
            "error": format!("{} received: {summary}", signals::name(signal)),
            "server": doubt_on.map(|(i, _)| format!("destination {}", i + 1)),
            "endpoint": doubt_on.map(|(_, dest)| dest),
            "state": self.state,
            "tables": records,
        });
        (exit, said, document)
    }
}

/// Each table's statements, by name, as the step log says them when a worker takes it: the
/// source's (each range's), then each destination's steps, as `--dry-run` says them.
fn statements(plan: &job::Plan, dests: &[Server]) -> HashMap<String, Vec<String>> {
    let mut by_table = HashMap::new();
    for (ti, t) in plan.tables.iter().enumerate() {
        let mut lines = vec![format!("on the source: {}", t.send)];
        for (i, range) in t.ranges.iter().enumerate() {
            lines.push(format!("range {} on the source: {range}", i + 1));
        }
        for (i, (d, s)) in t.destinations.iter().zip(dests).enumerate() {
            lines.push(format!(
                "on destination {} ({}): {}",
                i + 1,
                s.name,
                dest_plan(plan, ti, i, d)
            ));
        }
        by_table.insert(t.table.to_string(), lines);
    }
    by_table
}

/// A job's steps in the step log (`--verbose`): each table a worker takes with its statements
/// (`statements`: a `TRUNCATE` was in no log, progress62 F6), each statement that ends a
/// table's transaction on a destination and its answer, and how each table ended (a job logged
/// nothing but its planning: cli43 F7).
fn log_step(event: &Event, dests: &[Server], statements: &HashMap<String, Vec<String>>) {
    let dest = |d: &usize| format!("destination {} ({})", d + 1, dests[*d].name);
    match event {
        Event::TableStarted {
            worker,
            table,
            size,
        } => {
            report::log(format_args!(
                "job {}: {table} ({})",
                worker + 1,
                HumanBytes(*size)
            ));
            for line in statements.get(&table.to_string()).into_iter().flatten() {
                report::log(format_args!("job {}: {table} {line}", worker + 1));
            }
        }
        Event::CommitStep {
            table,
            destination,
            action,
            answer,
            ..
        } => {
            let answered = match answer {
                Answer::Awaited => "sent".to_owned(),
                Answer::TookEffect => "done".to_owned(),
                Answer::Refused(why) => format!("refused: {why}"),
                Answer::Lost => "its connection lost before its answer".to_owned(),
            };
            report::log(format_args!(
                "{table} on {}: {} ({answered})",
                dest(destination),
                action.sql()
            ));
        }
        Event::TableFinished { report, .. } => {
            for (d, result) in report.destinations.iter().enumerate() {
                report::log(format_args!(
                    "{} → {}: {} ({} format)",
                    report.table,
                    dest(&d),
                    result.status.name(),
                    report.format.name()
                ));
            }
        }
        _ => {}
    }
}

/// The COPY data a job sent, each table's once (as much as to the destination it sent most).
fn sent_bytes(report: &JobReport) -> u64 {
    (report.tables.iter())
        .map(|t| t.destinations.iter().map(|d| d.bytes).max().unwrap_or(0))
        .sum()
}

/// A job's totals: the source's rows of the tables it copied (as a one-table run counts), and
/// what the destinations committed in all (a 1,000-row table to 2 destinations is 2,000 there).
fn totals(report: &JobReport) -> (u64, u64) {
    let committed =
        |d: &job::DestResult| matches!(d.status, Status::Committed | Status::PartlyCommitted);
    let rows = (report.tables.iter())
        .flat_map(|t| &t.destinations)
        .filter(|d| committed(d))
        .filter_map(|d| d.rows)
        .sum();
    let source_rows = (report.tables.iter())
        .filter(|t| t.destinations.iter().any(committed))
        .filter_map(|t| t.source_rows)
        .sum();
    (source_rows, rows)
}

/// `1 table`, `2 tables`.
pub(crate) fn plural(n: usize, what: &str) -> String {
    match what.strip_suffix('y') {
        _ if n == 1 => format!("1 {what}"),
        // "table copy" → "table copies" (not "copys"); "day" stays "days".
        Some(stem) if !stem.ends_with(['a', 'e', 'o', 'u']) => format!("{n} {stem}ies"),
        _ => format!("{n} {what}s"),
    }
}

/// The job's progress: on a terminal an overall bar and one line per running job; off a terminal
/// nothing, or with `--progress` a plain line every few seconds.
struct Render {
    multi: Option<(MultiProgress, ProgressBar, Vec<ProgressBar>)>,
    plain: bool,
    /// The destinations' names (not under `--quiet`): a table's failure is said when it ends,
    /// the job going on under `--keep-going` (it was said only in the summary, hours later), or
    /// stopping while other tables are in flight (said only once the slowest of them had been
    /// taken by its destinations, scale44 F5).
    names: Option<Vec<String>>,
    keep_going: bool,
    state: Mutex<RenderState>,
    /// The job is over: its ticks stop ([`Render::start_ticking`]).
    over: std::sync::atomic::AtomicBool,
}

struct RenderState {
    tables: usize,
    /// Tables a destination holds now.
    finished: usize,
    /// Tables that ended held by no destination (failed, rolled back).
    failed: usize,
    done_bytes: u64,
    done_rows: u64,
    /// Per job: the rows and bytes of its table copied so far.
    running: Vec<(u64, u64)>,
    /// Per job: the table it copies (its `running`'s).
    current: Vec<String>,
    /// Tables copied and not finished yet, whose job went on to another: a foreign-key group's
    /// members, committed with the group (their rows went out of the count as the next member
    /// started, and came back at its end): table, rows, bytes, planned size.
    held: Vec<(String, u64, u64, u64)>,
    /// The overall bar's measure: each table's size as planned (its size on disk, the plan's
    /// estimate), counted whole once it finished and, while it is copied, as far as its bytes
    /// went. Its COPY bytes against the sizes alone left a job of small tables at a few
    /// percent with an ETA of minutes until its end (a table of one row weighs a page on disk).
    done_weight: u64,
    /// Per job: its table's planned size.
    weights: Vec<u64>,
    /// About how many rows each table holds (the plan's estimates), by name: a table copied is
    /// as far along as its rows went of those, its COPY bytes being no measure of its size on
    /// disk (progress62 F1: a narrow table's bar stood at 49%, "ETA 21s", when it ended).
    estimates: HashMap<String, u64>,
    /// The planned sizes of every table (the overall bar's length before any table outgrew
    /// its size).
    planned: u64,
    /// What finished tables copied beyond their size on disk (values stored out of line, in
    /// TOAST, which the heap's size leaves out): it lengthens the overall bar, which else
    /// stood at 100% with its rate falling to nothing while such a table still moved data.
    done_beyond: u64,
    /// Each job's line: what it copies, its counts, the step its table is at once its rows are
    /// sent ([`Render::step`]), a note (a lock wait) from the watch.
    lines: Vec<[String; 4]>,
    /// Per job: its table's rows are all sent (it verifies or commits now), its bar's share
    /// whole (progress62 F12: the bar stood at 80% with its ETA climbing to 8 minutes while
    /// `--verify` read the tables again).
    sent: Vec<bool>,
    started: Instant,
    last_plain: Instant,
    /// The failures said as they happened, by destination and words (the table's name left
    /// out): one destination that cannot be reached fails every table alike, said once (it
    /// was 500 lines).
    said: HashSet<(usize, String)>,
    /// That the job stops was said (once).
    stop_said: bool,
}

impl RenderState {
    /// The overall bar's position and length. Each table weighs its size, or what it copied
    /// once that is more; a running one counts as far as its rows went of those estimated, its
    /// size at most, or else what it copied so far.
    fn measured(&self) -> (u64, u64) {
        let part = |name: &str, rows: u64, bytes: u64, size: u64| match self.estimates.get(name) {
            Some(&planned) if planned > 0 => {
                let share = (rows as f64 / planned as f64).min(1.0);
                ((share * size as f64) as u64, 0)
            }
            _ => (bytes, bytes.saturating_sub(size)),
        };
        let running = (self.running.iter().zip(&self.weights).zip(&self.current))
            .zip(&self.sent)
            .map(|(((&(rows, bytes), &size), name), &sent)| match sent {
                true => (size.max(bytes), bytes.saturating_sub(size)),
                false => part(name, rows, bytes, size),
            });
        let held =
            (self.held.iter()).map(|(name, rows, bytes, size)| part(name, *rows, *bytes, *size));
        let (weight, beyond) = running.chain(held).fold(
            (self.done_weight + self.done_beyond, self.done_beyond),
            |(w, b), (part, past)| (w + part, b + past),
        );
        let length = (self.planned + beyond).max(1);
        (weight.min(length), length)
    }

    /// The rows and bytes copied so far: finished tables', held ones', running ones'.
    fn copied(&self) -> (u64, u64) {
        let held = self.held.iter().map(|&(_, rows, bytes, _)| (rows, bytes));
        (self.running.iter().copied().chain(held))
            .fold((self.done_rows, self.done_bytes), |(r, b), (rr, bb)| {
                (r + rr, b + bb)
            })
    }
}

/// A job's line while it has no table.
fn idle_line(worker: usize) -> [String; 4] {
    [
        format!("job {}: idle", worker + 1),
        String::new(),
        String::new(),
        String::new(),
    ]
}

impl Render {
    fn new(output: Output, jobs: usize, names: Option<Vec<String>>, keep_going: bool) -> Self {
        let terminal = crate::progress::draws_bars();
        let multi = (!output.quiet && terminal).then(|| {
            let multi = MultiProgress::with_draw_target(crate::progress::draw_target());
            let overall = multi.add(ProgressBar::new(0));
            overall.set_style(crate::progress::in_locale_spinner(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} [{bar:30}] {percent:>3}% ETA {eta} {msg}",
                )
                .expect("the progress template is valid")
                .with_key("eta", crate::progress::eta)
                .progress_chars("=> "),
            ));
            overall.enable_steady_tick(Duration::from_millis(200));
            // Log lines and lock waits print above the bars.
            crate::progress::set_active(Some(overall.clone()));
            let workers = (0..jobs)
                .map(|_| {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("  {msg}")
                            .expect("the progress template is valid"),
                    );
                    bar
                })
                .collect();
            (multi, overall, workers)
        });
        let now = Instant::now();
        Self {
            multi,
            plain: !output.quiet && !terminal && crate::progress::plain_lines(output.progress),
            names,
            keep_going,
            state: Mutex::new(RenderState {
                tables: 0,
                finished: 0,
                failed: 0,
                done_bytes: 0,
                done_weight: 0,
                weights: vec![0; jobs],
                estimates: HashMap::new(),
                planned: 0,
                done_beyond: 0,
                done_rows: 0,
                running: vec![(0, 0); jobs],
                current: vec![String::new(); jobs],
                held: Vec::new(),
                lines: (0..jobs).map(idle_line).collect(),
                sent: vec![false; jobs],
                started: now,
                last_plain: now,
                said: HashSet::new(),
                stop_said: false,
            }),
            over: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Off a terminal, with `--progress`: a thread that prints the overall line when it is due
    /// though no event came (a table's `--verify` checksum or COMMIT takes its time without
    /// one), until the job is over.
    fn start_ticking(self: &Arc<Self>) {
        if !self.plain {
            return;
        }
        let render = Arc::downgrade(self);
        let _ = std::thread::Builder::new()
            .name("copyman-job-progress".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                    match render.upgrade() {
                        Some(r) if !r.over.load(std::sync::atomic::Ordering::SeqCst) => r.tick(),
                        _ => break,
                    }
                }
            });
    }

    fn event(&self, event: Event) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            Event::Started { tables, bytes } => {
                s.tables = tables;
                s.planned = bytes;
            }
            Event::TableStarted {
                worker,
                table,
                size,
            } => {
                if let Some(line) = s.lines.get_mut(worker) {
                    *line = [
                        format!("job {}: {table} ({})", worker + 1, HumanBytes(size)),
                        String::new(),
                        String::new(),
                        String::new(),
                    ];
                }
                if let Some(sent) = s.sent.get_mut(worker) {
                    *sent = false;
                }
                self.draw_line(&s, worker);
                // The job's table before, not finished: held until it is (a group's member).
                let before =
                    (s.current.get_mut(worker)).map(|c| std::mem::replace(c, table.to_string()));
                let (rows, bytes) = s.running.get(worker).copied().unwrap_or_default();
                let weight = s.weights.get(worker).copied().unwrap_or_default();
                if let Some(before) = before.filter(|b| !b.is_empty()) {
                    s.held.push((before, rows, bytes, weight));
                }
                if let Some(r) = s.running.get_mut(worker) {
                    *r = (0, 0);
                }
                if let Some(w) = s.weights.get_mut(worker) {
                    *w = size;
                }
            }
            Event::Progress {
                worker,
                rows,
                bytes,
            } => {
                if let Some(r) = s.running.get_mut(worker) {
                    *r = (rows, bytes);
                }
                if let Some(line) = s.lines.get_mut(worker) {
                    line[1] = format!(" — {} rows, {}", HumanCount(rows), HumanBytes(bytes));
                    // Rows move: its step is the copy (a split table's source checksum came
                    // before its ranges).
                    line[2].clear();
                }
                self.draw_line(&s, worker);
            }
            Event::TableFinished { worker, report } => {
                // Done where a destination holds it; else failed (or rolled back), whose rows
                // are not counted as copied (a job that committed nothing ended on "2/2
                // tables, 1,000,005 rows").
                let name = report.table.to_string();
                let held = s.held.iter().position(|(table, ..)| *table == name);
                let (rows, bytes, size, current) = match held {
                    Some(at) => {
                        let (_, rows, bytes, size) = s.held.remove(at);
                        (rows, bytes, size, false)
                    }
                    None => {
                        let (rows, bytes) = s.running.get(worker).copied().unwrap_or_default();
                        let size = s.weights.get(worker).copied().unwrap_or_default();
                        (rows, bytes, size, true)
                    }
                };
                // Other tables in flight: a job that stops rolls them back once each one's
                // destinations took what they were sent, which a slow one takes long to.
                let in_flight = (s.current.iter().enumerate())
                    .any(|(w, table)| w != worker && !table.is_empty());
                // The source's failure, every destination's alike: said once, as the source's
                // (jobs46 F4.5: it was said destination 1's).
                let first = report.destinations.first().and_then(|d| d.error.as_ref());
                let source_failed = first.filter(|e| {
                    e.message.starts_with("source: ")
                        && report.destinations.len() > 1
                        && (report.destinations.iter())
                            .all(|d| d.status == Status::Failed && d.error.as_ref() == Some(*e))
                });
                for (i, d) in report.destinations.iter().enumerate() {
                    if source_failed.is_some() && i > 0 {
                        break;
                    }
                    if let (Some(names), Status::Failed, Some(e)) =
                        (&self.names, d.status, &d.error)
                    {
                        let then = if self.keep_going {
                            "the job goes on (--keep-going)"
                        } else if in_flight && !s.stop_said {
                            s.stop_said = true;
                            "the job stops: the tables in flight are rolled back, each once its \
                             destinations took what they were sent"
                        } else {
                            continue;
                        };
                        let words = e.to_string().replace(&report.table.to_string(), "");
                        if !s.said.insert((i, words)) {
                            continue;
                        }
                        let whom = match source_failed {
                            Some(_) => "every destination".to_owned(),
                            None => format!(
                                "destination {} ({})",
                                i + 1,
                                names.get(i).map_or("", String::as_str)
                            ),
                        };
                        crate::progress::println(&format!(
                            "copyman: {} → {whom}: failed: {e}; {then}",
                            report.table
                        ));
                    }
                }
                if report.destinations.iter().any(|d| d.status.is_done()) {
                    s.finished += 1;
                    s.done_rows += report.source_rows.unwrap_or(rows);
                    s.done_weight += size;
                    s.done_beyond += bytes.saturating_sub(size);
                } else {
                    // Its weight leaves the job's: the bar does not jump as if it had been
                    // copied (a job that stopped at once drew "100% 430 MiB/s").
                    s.failed += 1;
                    s.planned = s.planned.saturating_sub(size);
                }
                s.done_bytes += bytes;
                // A held table's job copies another now: its line and counts stay.
                if current {
                    if let Some(r) = s.running.get_mut(worker) {
                        *r = (0, 0);
                    }
                    if let Some(w) = s.weights.get_mut(worker) {
                        *w = 0;
                    }
                    if let Some(c) = s.current.get_mut(worker) {
                        c.clear();
                    }
                    if let Some(line) = s.lines.get_mut(worker) {
                        *line = idle_line(worker);
                    }
                    if let Some(sent) = s.sent.get_mut(worker) {
                        *sent = false;
                    }
                    self.draw_line(&s, worker);
                }
            }
            ref other => {
                if let Some((worker, step, sent)) = self.step(&s, other)
                    && let Some(line) = s.lines.get_mut(worker)
                {
                    line[2] = format!(", {step}");
                    if sent && let Some(over) = s.sent.get_mut(worker) {
                        *over = true;
                    }
                    self.draw_line(&s, worker);
                }
            }
        }
        self.show(&mut s);
    }

    /// The step a worker's table is at that `event` tells, once its copy is no longer what
    /// takes its time: a `--verify` checksum, its transactions' end. With the worker, and
    /// whether the table's rows are all sent by then (a split table's source checksum comes
    /// before its ranges).
    fn step(&self, s: &RenderState, event: &Event) -> Option<(usize, String, bool)> {
        let dest = |d: usize| match &self.names {
            Some(names) => format!("destination {} ({})", d + 1, names[d]),
            None => format!("destination {}", d + 1),
        };
        Some(match event {
            Event::Verifying { worker, .. } => {
                let sent = s.running.get(*worker).is_some_and(|&(r, b)| r > 0 || b > 0);
                (
                    *worker,
                    "verifying: its checksum on the source".to_owned(),
                    sent,
                )
            }
            Event::Checksum {
                worker,
                destination,
                ..
            } => (
                *worker,
                format!("verifying: its checksum on {}", dest(*destination)),
                true,
            ),
            Event::Ending { worker } => (*worker, "ending its transactions".to_owned(), true),
            Event::CommitStep {
                worker,
                destination,
                action,
                answer: Answer::Awaited,
                ..
            } => (
                *worker,
                format!(
                    "{} on {}",
                    crate::watch::statement_name(action),
                    dest(*destination)
                ),
                true,
            ),
            _ => return None,
        })
    }

    /// The overall line, on the bar or (off a terminal, with `--progress`) printed once every
    /// [`PLAIN_EVERY`](crate::progress::PLAIN_EVERY), naming each job's step past its copy (a
    /// log showed 38 s of 68 without a word while `--verify` read the tables again: progress62
    /// F12).
    fn show(&self, s: &mut RenderState) {
        let (rows, bytes) = s.copied();
        // The rate of the bytes moved: the bar's position weighs tables by their planned
        // (on-disk) size, whose rate read 300 MiB/s for 2.75 KiB copied under --max-rate 32k.
        let seconds = s.started.elapsed().as_secs_f64().max(0.001);
        let line = format!(
            "{}/{} tables{}, {} rows, {} ({}/s)",
            s.finished,
            s.tables,
            match s.failed {
                0 => String::new(),
                n => format!(" ({n} not done)"),
            },
            HumanCount(rows),
            HumanBytes(bytes),
            HumanBytes((bytes as f64 / seconds) as u64)
        );
        if let Some((_, overall, _)) = &self.multi {
            let (position, length) = s.measured();
            overall.set_length(length);
            overall.set_position(position);
            overall.set_message(crate::progress::in_locale(&line).into_owned());
        } else if self.plain && s.last_plain.elapsed() >= crate::progress::PLAIN_EVERY {
            s.last_plain = Instant::now();
            // Each table in flight, at its step or copying (a log named none while a group of
            // tables linked by foreign keys copied one after another: jobs64 F5).
            let steps = (s.current.iter().zip(&s.lines))
                .filter(|(table, _)| !table.is_empty())
                .map(|(table, line)| match line[2].is_empty() {
                    true => format!("; {table}: copying{}", line[1].replacen(" —", ",", 1)),
                    false => format!("; {table}{}", line[2].replacen(',', ":", 1)),
                });
            crate::progress::println(&format!(
                "copyman: {:.0} s: {line}{}",
                s.started.elapsed().as_secs_f64(),
                steps.collect::<String>()
            ));
        }
    }

    fn tick(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.show(&mut s);
    }

    /// Puts `note` (a lock wait, from the watch) on a job's line, or takes it off.
    fn note(&self, worker: usize, note: Option<String>) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(line) = s.lines.get_mut(worker) {
            line[3] = note.map(|n| format!("  {n}")).unwrap_or_default();
        }
        self.draw_line(&s, worker);
    }

    fn draw_line(&self, s: &RenderState, worker: usize) {
        if let (Some((_, _, bars)), Some(line)) = (&self.multi, s.lines.get(worker))
            && let Some(bar) = bars.get(worker)
        {
            let line = crate::progress::printable(&line.concat()).into_owned();
            bar.set_message(crate::progress::in_locale(&line).into_owned());
        }
    }

    fn finish(&self) {
        self.over.store(true, std::sync::atomic::Ordering::SeqCst);
        crate::progress::set_active(None);
        if let Some((multi, overall, workers)) = &self.multi {
            for bar in workers {
                bar.finish_and_clear();
            }
            overall.finish_and_clear();
            let _ = multi.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where a split table stands on a destination when the process exits at once: one range
    /// committed and another's COMMIT unanswered (or not sent) is in doubt as a split table is
    /// (some ranges may be there: an append's resume refuses it), not "--resume asks its
    /// server"; all committed is committed; one table's unanswered COMMIT keeps that advice.
    #[test]
    fn a_split_tables_unanswered_commit_is_said_as_a_split_tables() {
        let ledger = Ledger {
            dests: vec!["d1".to_owned()],
            state: "job.state".to_owned(),
            two_phase: false,
            tables: Vec::new(),
            ranges: HashMap::new(),
            decided: HashSet::new(),
            recording: HashSet::new(),
        };
        let step = |pid, answer| Step {
            pid: Some(pid),
            action: Action::Commit,
            answer,
        };
        let doubt = ledger.verdict(
            &Cell::Ending(
                2,
                vec![step(1, Answer::TookEffect), step(2, Answer::Awaited)],
            ),
            false,
        );
        assert_eq!(doubt.0, "in doubt");
        assert!(
            doubt.1.contains("an append's --resume refuses it"),
            "{doubt:?}"
        );
        let not_sent = ledger.verdict(&Cell::Ending(2, vec![step(1, Answer::Awaited)]), false);
        assert!(not_sent.1.contains("some of its ranges"), "{not_sent:?}");
        let all = ledger.verdict(
            &Cell::Ending(
                2,
                vec![step(1, Answer::TookEffect), step(2, Answer::TookEffect)],
            ),
            false,
        );
        assert_eq!(all.0, "committed");
        let one = ledger.verdict(&Cell::Ending(1, vec![step(1, Answer::Awaited)]), false);
        assert!(one.1.contains("--resume asks its server"), "{one:?}");
        // A COMMIT its server answered with an error committed nothing; one whose connection
        // broke may have.
        let why = "SQLSTATE 23503: insert or update violates a foreign key".to_owned();
        let refused = Step {
            pid: Some(1),
            action: Action::Commit,
            answer: Answer::Refused(why),
        };
        let refused = ledger.verdict(&Cell::Ending(1, vec![refused]), false);
        assert_eq!(refused.0, "failed", "{refused:?}");
        let lost = ledger.verdict(&Cell::Ending(1, vec![step(1, Answer::Lost)]), false);
        assert_eq!(lost.0, "in doubt", "{lost:?}");
    }

    /// Under `--atomic`, a table prepared everywhere whose commit decision the run recorded is
    /// committing: a signal exiting at once then says it is decided and that recover commits
    /// it, and exits 4 — it said "committed: none", "not committed", and the signal's code,
    /// though recover then committed it everywhere (resume38 F9).
    #[test]
    fn a_decided_table_is_said_committing_when_exiting_at_once() {
        let prepared = || {
            Cell::Ending(
                1,
                vec![Step {
                    pid: Some(1),
                    action: Action::Prepare("g".into()),
                    answer: Answer::TookEffect,
                }],
            )
        };
        let mut ledger = Ledger {
            dests: vec!["d1".to_owned(), "d2".to_owned()],
            state: "job.state".to_owned(),
            two_phase: true,
            tables: vec![("\"public\".\"t\"".to_owned(), vec![prepared(), prepared()])],
            ranges: HashMap::new(),
            decided: HashSet::new(),
            recording: HashSet::new(),
        };
        assert_eq!(ledger.at_once(3).0, 131, "not decided: nothing commits");
        ledger.event(&Event::Decided {
            tables: vec![TableName::from_parts(Some("public".into()), "t".into())],
        });
        let (exit, said, document) = ledger.at_once(3);
        assert_eq!(exit, 4, "{said}");
        assert!(
            said.contains("decided commit, prepared, its COMMIT PREPARED not sent yet")
                && said.contains("run copyman recover with the same --to first"),
            "{said}"
        );
        assert_eq!(document["tables"][0]["status"], "commit pending");
        // Nothing in doubt: that category is not said, nor its explanation (signals43 F6).
        assert!(!said.contains("in doubt"), "{said}");
    }

    /// A table whose COMMITs began is named as finishing on a first signal; not once every
    /// destination answered them (its --verify running: signals67 F3).
    #[test]
    fn a_table_committed_everywhere_is_not_said_finishing() {
        let step = |answer| Step {
            pid: Some(1),
            action: Action::Commit,
            answer,
        };
        let ledger = |second| Ledger {
            dests: vec!["d1".to_owned(), "d2".to_owned()],
            state: "job.state".to_owned(),
            two_phase: false,
            tables: vec![(
                "\"public\".\"t\"".to_owned(),
                vec![
                    Cell::Ending(1, vec![step(Answer::TookEffect)]),
                    Cell::Ending(1, vec![step(second)]),
                ],
            )],
            ranges: HashMap::new(),
            decided: HashSet::new(),
            recording: HashSet::new(),
        };
        assert_eq!(ledger(Answer::Awaited).committing(), ["\"public\".\"t\""]);
        assert!(ledger(Answer::TookEffect).committing().is_empty());
    }

    /// A split table some of whose ranges' COMMITs were answered on a destination, not all, is
    /// said committed in part, never "committed: none … nothing else was committed" (signals67
    /// F2: 400 010 rows were there); with its COMMIT PREPAREDs alike.
    #[test]
    fn a_split_table_committed_in_part_is_said_so_when_exiting_at_once() {
        for (two_phase, action) in [
            (false, Action::Commit),
            (true, Action::CommitPrepared("g".into())),
        ] {
            let step = |pid, answer| Step {
                pid: Some(pid),
                action: action.clone(),
                answer,
            };
            let ledger = Ledger {
                dests: vec!["d1".to_owned()],
                state: "job.state".to_owned(),
                two_phase,
                tables: vec![(
                    "\"public\".\"t\"".to_owned(),
                    vec![Cell::Ending(
                        2,
                        vec![step(1, Answer::TookEffect), step(2, Answer::Awaited)],
                    )],
                )],
                ranges: HashMap::from([("\"public\".\"t\"".to_owned(), 2)]),
                decided: HashSet::new(),
                recording: HashSet::new(),
            };
            let (exit, said, _) = ledger.at_once(3);
            assert_eq!(exit, 4, "{said}");
            assert!(
                said.contains("committed in part (some of its ranges' COMMITs were answered")
                    && said.contains("\"public\".\"t\" on destination 1"),
                "{two_phase}: {said}"
            );
        }
    }

    /// A ROLLBACK PREPARED sent again on a new session (the first lost) and not answered there
    /// (a synchronous standby that is not there): its step is the new session's, and it is a
    /// rollback pending — never "it may have committed" (commit48 F5).
    #[test]
    fn a_rollback_prepared_unanswered_on_a_new_session_is_rollback_pending() {
        let mut ledger = Ledger {
            dests: vec!["d1".to_owned()],
            state: "job.state".to_owned(),
            two_phase: true,
            tables: vec![("\"public\".\"t\"".to_owned(), vec![Cell::NotStarted])],
            ranges: HashMap::new(),
            decided: HashSet::new(),
            recording: HashSet::new(),
        };
        let step = |pid, replaces, answer| Event::CommitStep {
            worker: 0,
            table: TableName::from_parts(Some("public".into()), "t".into()),
            destination: 0,
            pid: Some(pid),
            replaces,
            action: Action::RollbackPrepared("g".into()),
            answer,
        };
        ledger.event(&step(1, None, Answer::Awaited));
        ledger.event(&step(2, Some(1), Answer::Awaited));
        let cell = &ledger.tables[0].1[0];
        assert!(
            matches!(cell, Cell::Ending(1, steps) if steps.len() == 1 && steps[0].pid == Some(2)),
            "{cell:?}"
        );
        let (status, why) = ledger.verdict(cell, false);
        assert_eq!(status, "rollback pending", "{why}");
        assert!(why.contains("nothing of it committed"), "{why}");
        ledger.event(&step(2, Some(1), Answer::TookEffect));
        assert_eq!(
            ledger.verdict(&ledger.tables[0].1[0], false).0,
            "rolled back"
        );
    }

    /// A signal that exits at once in a job of many tables counts the tables not begun and
    /// those committed and recorded, and names ten of those committed: it said a line per table
    /// and destination, and every committed one again on one line (scale38 F4). `--json` lists
    /// each.
    #[test]
    fn exiting_at_once_counts_what_the_state_file_holds_or_was_not_begun() {
        let mut tables = Vec::new();
        for i in 0..30 {
            let cell = match i {
                0..10 => Cell::Finished(Status::Committed),
                10..12 => Cell::Ending(
                    1,
                    vec![Step {
                        pid: Some(7),
                        action: Action::Commit,
                        answer: Answer::TookEffect,
                    }],
                ),
                12 => Cell::Copying,
                _ => Cell::NotStarted,
            };
            tables.push((format!("t{i}"), vec![cell.clone(), cell]));
        }
        let ledger = Ledger {
            dests: vec!["d1".to_owned(), "d2".to_owned()],
            state: "job.state".to_owned(),
            two_phase: false,
            tables,
            ranges: HashMap::new(),
            decided: HashSet::new(),
            recording: HashSet::new(),
        };
        let (_, said, document) = ledger.at_once(3);
        let lines: Vec<&str> = said.lines().collect();
        // t10, t11 (committed, not recorded) and t12 (interrupted) on each destination.
        assert_eq!(
            lines.iter().filter(|l| l.contains(" → ")).count(),
            6,
            "{said}"
        );
        assert!(
            said.contains(
                "tables × destinations not listed: 20 committed and recorded, 34 not started"
            ),
            "{said}"
        );
        assert!(said.contains("and 14 more (--json lists each)"), "{said}");
        assert_eq!(document["tables"].as_array().map(Vec::len), Some(60));
    }

    /// Under `--atomic`, a second signal while a PREPARE is unanswered exits with the signal's
    /// code and says it prepared or not (a PREPARE commits nothing): it exited 4 and said the
    /// PREPARE "may have committed". Once a COMMIT PREPARED went out (the decision recorded),
    /// 4.
    #[test]
    fn an_unanswered_prepare_is_not_a_commit_under_way() {
        let ledger = |cell: Cell| Ledger {
            dests: vec!["d1".to_owned(), "d2".to_owned()],
            state: "job.state".to_owned(),
            two_phase: true,
            tables: vec![(
                "\"public\".\"t\"".to_owned(),
                vec![
                    Cell::Ending(
                        1,
                        vec![Step {
                            pid: Some(1),
                            action: Action::Prepare("g1".into()),
                            answer: Answer::TookEffect,
                        }],
                    ),
                    cell,
                ],
            )],
            ranges: HashMap::new(),
            decided: HashSet::new(),
            recording: HashSet::new(),
        };
        let preparing = ledger(Cell::Ending(
            1,
            vec![Step {
                pid: Some(2),
                action: Action::Prepare("g2".into()),
                answer: Answer::Awaited,
            }],
        ));
        let (status, note) = preparing.verdict(&preparing.tables[0].1[1], false);
        assert_eq!(status, "prepared or not");
        assert!(note.contains("nothing of it committed"), "{note}");
        assert_eq!(preparing.at_once_exit(15), 143);
        let deciding = ledger(Cell::Ending(
            1,
            vec![Step {
                pid: Some(2),
                action: Action::CommitPrepared("g2".into()),
                answer: Answer::Awaited,
            }],
        ));
        assert_eq!(deciding.at_once_exit(15), 4);
    }

    /// A table the source failed (the same error for every destination) is said once, as the
    /// source's; a destination's own error is said per destination.
    #[test]
    fn a_source_error_is_said_once_for_every_destination() {
        let failed = |message: &str| job::DestResult {
            error: Some(job::TableError {
                connect: false,
                lasting: true,
                sqlstate: Some("42501".to_owned()),
                message: message.to_owned(),
            }),
            ..job::DestResult {
                status: Status::Failed,
                rows: None,
                bytes: 0,
                seconds: 0.0,
                error: None,
                verified: None,
                unverified: false,
                checksum: None,
                warning: None,
            }
        };
        let table = |name: &str, destinations| job::TableReport {
            table: TableName::parse(name).unwrap(),
            format: Format::Text,
            source_rows: None,
            destinations,
            notices: Vec::new(),
            notices_dropped: 0,
        };
        let source = "source: query would be affected by row-level security policy";
        let report = JobReport {
            tables: vec![
                table("s", vec![failed(source), failed(source)]),
                table(
                    "d",
                    vec![failed("permission denied"), failed("permission denied")],
                ),
            ],
            snapshot: None,
            stopped: None,
            stopped_waiting: false,
            interrupted: None,
            seconds: 0.0,
        };
        let server = |name: &str| Server {
            name: name.to_owned(),
            connect: Arc::new(|| unreachable!("not connected")),
            own_settings: None,
        };
        let mut out = Vec::new();
        let options = Options::new("job.state");
        write_human(
            &mut out,
            &report,
            &[server("d1"), server("d2")],
            &options,
            Output::default(),
        )
        .unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out.matches("row-level security").count(), 1, "{out}");
        assert!(
            out.contains(&format!(
                "  \"s\" → every destination: failed: SQLSTATE 42501: {source}\n"
            )),
            "{out}"
        );
        assert_eq!(out.matches("permission denied").count(), 2, "{out}");
    }

    /// A job interrupted after its tables committed sorts them in its summary: recorded as done
    /// only where verified or not asked to be; one whose checksum differs is not (it was listed
    /// as recorded).
    #[test]
    fn an_interrupted_summary_does_not_list_a_differing_table_as_recorded() {
        let committed = |verified, unverified| job::DestResult {
            status: Status::Committed,
            rows: Some(1),
            bytes: 0,
            seconds: 0.0,
            error: None,
            verified,
            unverified,
            checksum: None,
            warning: None,
        };
        let table = |name: &str, result| job::TableReport {
            table: TableName::parse(name).unwrap(),
            format: Format::Text,
            source_rows: Some(1),
            destinations: vec![result],
            notices: Vec::new(),
            notices_dropped: 0,
        };
        let report = JobReport {
            tables: vec![
                table("same", committed(Some(true), false)),
                table("differs", committed(Some(false), false)),
                table("cut", committed(None, true)),
            ],
            snapshot: None,
            stopped: None,
            stopped_waiting: false,
            interrupted: Some("interrupted by SIGTERM".to_owned()),
            seconds: 0.0,
        };
        let server = Server {
            name: "d1".to_owned(),
            connect: Arc::new(|| unreachable!("not connected")),
            own_settings: None,
        };
        let mut out = Vec::new();
        let mut options = Options::new("job.state");
        options.verify = true;
        write_human(&mut out, &report, &[server], &options, Output::default()).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains(
                "interrupted by SIGTERM: committed on every destination (and recorded): \
                 \"same\"; committed on every destination, its checksum differing (not recorded \
                 as done): \"differs\"; committed on every destination, not recorded as done (not \
                 compared: --resume compares them): \"cut\"; not committed everywhere: none"
            ),
            "{out}"
        );
    }

    /// The overall bar measures a table copied by its rows against the plan's estimate, not its
    /// COPY bytes against its size on disk (progress62 F1: a narrow table's bar stood at 49%
    /// when it ended); one without an estimate by its bytes.
    #[test]
    fn the_bar_measures_a_table_by_its_rows_of_those_estimated() {
        let render = Render::new(Output::default(), 1, None, false);
        render.state.lock().unwrap().estimates = HashMap::from([("\"t\"".to_owned(), 1000)]);
        render.event(Event::Started {
            tables: 2,
            bytes: 16384,
        });
        let started = |name: &str| Event::TableStarted {
            worker: 0,
            table: TableName::parse(name).unwrap(),
            size: 8192,
        };
        render.event(started("t"));
        let progress = |rows, bytes| Event::Progress {
            worker: 0,
            rows,
            bytes,
        };
        render.event(progress(500, 100));
        assert_eq!(render.state.lock().unwrap().measured(), (4096, 16384));
        // More rows than estimated (the table grew): its size, not beyond, until it ends.
        render.event(progress(3000, 600));
        assert_eq!(render.state.lock().unwrap().measured(), (8192, 16384));
        // No estimate: its bytes (beside t, held by its group).
        render.event(started("u"));
        render.event(progress(500, 100));
        assert_eq!(render.state.lock().unwrap().measured().0, 8192 + 100);
    }

    /// Once a table's rows are all sent, its job's line says the step it is at (`--verify`'s
    /// checksums, its transactions' end) and the bar counts the table whole, fewer rows than
    /// estimated or not: the bar stood at 80% with its ETA climbing while the job verified.
    #[test]
    fn a_tables_step_past_its_copy_is_said_and_counted_whole() {
        let render = Render::new(Output::default(), 1, Some(vec!["b@h/db".to_owned()]), false);
        render.state.lock().unwrap().estimates = HashMap::from([("\"t\"".to_owned(), 1000)]);
        render.event(Event::Started {
            tables: 1,
            bytes: 8192,
        });
        let table = TableName::parse("t").unwrap();
        render.event(Event::TableStarted {
            worker: 0,
            table: table.clone(),
            size: 8192,
        });
        render.event(Event::Progress {
            worker: 0,
            rows: 600,
            bytes: 100,
        });
        let step = || render.state.lock().unwrap().lines[0][2].clone();
        assert_eq!(step(), "");
        assert_eq!(render.state.lock().unwrap().measured(), (4915, 8192));
        render.event(Event::Verifying {
            worker: 0,
            table: table.clone(),
        });
        assert_eq!(step(), ", verifying: its checksum on the source");
        assert_eq!(render.state.lock().unwrap().measured(), (8192, 8192));
        render.event(Event::CommitStep {
            worker: 0,
            table: table.clone(),
            destination: 0,
            pid: Some(1),
            replaces: None,
            action: Action::Commit,
            answer: Answer::Awaited,
        });
        assert_eq!(step(), ", COMMIT on destination 1 (b@h/db)");
        // The next table: its copy is what takes the time again.
        render.event(Event::TableStarted {
            worker: 0,
            table,
            size: 8192,
        });
        assert_eq!(step(), "");
        assert!(!render.state.lock().unwrap().sent[0]);
    }

    /// A split table's source checksum comes before its ranges: said, not counted as sent, and
    /// taken off the line once its rows move.
    #[test]
    fn a_checksum_before_the_rows_leaves_the_bar_where_it_was() {
        let render = Render::new(Output::default(), 1, None, false);
        let table = TableName::parse("t").unwrap();
        render.event(Event::TableStarted {
            worker: 0,
            table: table.clone(),
            size: 8192,
        });
        render.event(Event::Verifying { worker: 0, table });
        assert!(!render.state.lock().unwrap().sent[0]);
        assert!(render.state.lock().unwrap().lines[0][2].contains("verifying"));
        render.event(Event::Progress {
            worker: 0,
            rows: 1,
            bytes: 10,
        });
        assert_eq!(render.state.lock().unwrap().lines[0][2], "");
    }

    /// The rows and bytes copied so far never go back: a foreign-key group's member copied
    /// and not committed yet stays counted while the next one copies (its rows dropped out of
    /// the progress line, to come back at the group's end).
    #[test]
    fn a_groups_members_stay_counted_until_the_group_ends() {
        let render = Render::new(Output::default(), 1, None, false);
        let copied = || render.state.lock().unwrap().copied();
        let report = |name: &str, rows| job::TableReport {
            table: TableName::parse(name).unwrap(),
            format: Format::Text,
            source_rows: Some(rows),
            destinations: vec![job::DestResult {
                status: Status::Committed,
                rows: Some(rows),
                bytes: 0,
                seconds: 0.0,
                error: None,
                verified: None,
                unverified: false,
                checksum: None,
                warning: None,
            }],
            notices: Vec::new(),
            notices_dropped: 0,
        };
        let started = |name: &str| Event::TableStarted {
            worker: 0,
            table: TableName::parse(name).unwrap(),
            size: 8192,
        };
        let progress = |rows, bytes| Event::Progress {
            worker: 0,
            rows,
            bytes,
        };
        render.event(Event::Started {
            tables: 2,
            bytes: 16384,
        });
        render.event(started("parent"));
        render.event(progress(100, 1000));
        render.event(started("child"));
        assert_eq!(copied(), (100, 1000));
        render.event(progress(50, 500));
        assert_eq!(copied(), (150, 1500));
        render.event(Event::TableFinished {
            worker: 0,
            report: report("parent", 100),
        });
        assert_eq!(copied(), (150, 1500));
        render.event(Event::TableFinished {
            worker: 0,
            report: report("child", 50),
        });
        assert_eq!(copied(), (150, 1500));
        assert_eq!(render.state.lock().unwrap().finished, 2);
    }

    /// `--json` names the server of a job's failure: the source where every destination's
    /// record carries the source's error (its backend terminated: it named destination 1), none
    /// where a signal stopped the job (destination 1 was named, its table rolled back).
    #[test]
    fn a_jobs_json_names_the_source_or_no_server_where_none_failed() {
        let result = |status, error: Option<(&str, &str)>| job::DestResult {
            status,
            rows: None,
            bytes: 0,
            seconds: 0.0,
            error: error.map(|(code, message)| job::TableError {
                connect: false,
                lasting: false,
                sqlstate: Some(code.to_owned()),
                message: message.to_owned(),
            }),
            verified: None,
            unverified: false,
            checksum: None,
            warning: None,
        };
        let source = Some((
            "57P01",
            "source: terminating connection due to administrator command",
        ));
        let report = |destinations, interrupted: Option<&str>| JobReport {
            tables: vec![job::TableReport {
                table: TableName::parse("t").unwrap(),
                format: Format::Text,
                source_rows: None,
                destinations,
                notices: Vec::new(),
                notices_dropped: 0,
            }],
            snapshot: None,
            stopped: None,
            stopped_waiting: false,
            interrupted: interrupted.map(str::to_owned),
            seconds: 0.0,
        };
        let server = |name: &str| Server {
            name: name.to_owned(),
            connect: Arc::new(|| unreachable!("not connected")),
            own_settings: None,
        };
        let dests = [server("d1"), server("d2")];
        let options = Options::new("job.state");
        let failed = report(
            vec![
                result(Status::Failed, source),
                result(Status::Failed, source),
            ],
            None,
        );
        let doc = to_json(&failed, &dests, &options, Exit::CopyFailed, &[]);
        assert_eq!(doc["server"], "source", "{doc}");
        assert_eq!(doc["sqlstate"], "57P01", "{doc}");
        // What to do next, as stderr's closing line says it (recheck49 F5: no `advice`).
        let advice = doc["advice"].as_str().unwrap_or_default();
        assert!(
            advice.starts_with("state file job.state: run again with --resume"),
            "{doc}"
        );
        let stopped = report(
            vec![
                result(Status::RolledBack, Some(("57014", "canceling statement"))),
                result(Status::RolledBack, None),
            ],
            Some("interrupted by SIGTERM"),
        );
        let doc = to_json(&stopped, &dests, &options, Exit::interrupted(15), &[]);
        assert_eq!(doc["error"], "interrupted by SIGTERM", "{doc}");
        assert!(
            doc["server"].is_null() && doc["sqlstate"].is_null(),
            "{doc}"
        );
        // Its totals, as the human summary says them (they were not in --json).
        let mut copied = report(
            vec![
                result(Status::Committed, None),
                result(Status::Committed, None),
            ],
            None,
        );
        copied.tables[0].source_rows = Some(5);
        for d in &mut copied.tables[0].destinations {
            (d.rows, d.bytes) = (Some(5), 40);
        }
        let doc = to_json(&copied, &dests, &options, Exit::Success, &[]);
        assert_eq!(
            (
                &doc["source_rows"],
                &doc["rows"],
                &doc["committed_rows"],
                &doc["bytes"]
            ),
            (&json!(5), &json!(5), &json!(10), &json!(40)),
            "{doc}"
        );
        assert_eq!(doc["tables"][0]["source_rows"], 5, "{doc}");
        assert!(doc["advice"].is_null(), "{doc}");
    }

    /// A job that stopped at its first table says why within a few lines: the tables it never
    /// reached are counted in one line (a 300-table job listed 299 "not started" lines before
    /// its reason), and listed one by one under `--verbose`.
    #[test]
    fn tables_never_reached_are_counted_not_listed() {
        let result = |status, error: Option<&str>| job::DestResult {
            status,
            rows: None,
            bytes: 0,
            seconds: 0.0,
            error: error.map(|message| job::TableError {
                connect: false,
                lasting: true,
                sqlstate: Some("42501".to_owned()),
                message: message.to_owned(),
            }),
            verified: None,
            unverified: false,
            checksum: None,
            warning: None,
        };
        let table = |name: String, destinations| job::TableReport {
            table: TableName::parse(&name).unwrap(),
            format: Format::Text,
            source_rows: None,
            destinations,
            notices: Vec::new(),
            notices_dropped: 0,
        };
        let mut tables = vec![table(
            "t0".to_owned(),
            vec![
                result(Status::Failed, Some("permission denied for table t0")),
                result(Status::NotStarted, None),
            ],
        )];
        tables.extend((1..300).map(|i| {
            table(
                format!("t{i}"),
                vec![
                    result(Status::NotStarted, None),
                    result(Status::NotStarted, None),
                ],
            )
        }));
        let report = JobReport {
            tables,
            snapshot: None,
            stopped: Some("table \"t0\": permission denied".to_owned()),
            stopped_waiting: false,
            interrupted: None,
            seconds: 0.0,
        };
        let server = |name: &str| Server {
            name: name.to_owned(),
            connect: Arc::new(|| unreachable!("not connected")),
            own_settings: None,
        };
        let human = |output: Output| {
            let mut out = Vec::new();
            let options = Options::new("job.state");
            let dests = [server("d1"), server("d2")];
            write_human(&mut out, &report, &dests, &options, output).unwrap();
            String::from_utf8(out).unwrap()
        };
        let out = human(Output::default());
        assert!(out.lines().count() < 6, "{out}");
        assert!(!out.contains(": not started"), "{out}");
        assert!(
            out.contains(
                "  not started on some or every destination: 300 tables (\"t0\", \
                 \"t1\", \"t2\", \"t3\", \"t4\" and \
                 295 more (the same command with --resume --dry-run lists each))\n"
            ),
            "{out}"
        );
        assert!(out.contains("permission denied for table t0"), "{out}");
        assert!(
            out.contains("copyman: the job stopped: table \"t0\": permission denied\n"),
            "{out}"
        );
        let verbose = human(Output {
            verbose: true,
            ..Output::default()
        });
        assert_eq!(verbose.matches(": not started").count(), 599, "{verbose}");
        assert!(!verbose.contains("not started on some"), "{verbose}");
    }

    /// A job's own cancel after a signal reads as interrupted whatever language the server's
    /// `lc_messages` speaks: known by its SQLSTATE, not by English words.
    #[test]
    fn own_cancels_are_known_by_their_sqlstate_in_any_language() {
        let german = "storniere Anfrage wegen Benutzeraufforderung";
        let failed = job::DestResult {
            status: Status::Failed,
            rows: None,
            bytes: 0,
            seconds: 0.0,
            error: Some(job::TableError {
                connect: false,
                lasting: false,
                sqlstate: Some("57014".to_owned()),
                message: german.to_owned(),
            }),
            verified: None,
            unverified: false,
            checksum: None,
            warning: None,
        };
        let mut report = JobReport {
            tables: vec![job::TableReport {
                table: TableName::parse("p").unwrap(),
                format: Format::Text,
                source_rows: None,
                destinations: vec![failed],
                notices: Vec::new(),
                notices_dropped: 0,
            }],
            snapshot: None,
            stopped: Some(format!("table \"public\".\"p\": SQLSTATE 57014: {german}")),
            stopped_waiting: false,
            interrupted: Some("interrupted by SIGINT".to_owned()),
            seconds: 0.0,
        };
        own_cancels(&mut report);
        let d = &report.tables[0].destinations[0];
        assert_eq!(d.status, Status::Interrupted);
        assert_eq!(report.stopped, None);
    }

    #[test]
    fn plurals_are_english() {
        assert_eq!(plural(1, "table copy"), "1 table copy");
        assert_eq!(plural(3, "table copy"), "3 table copies");
        assert_eq!(plural(2, "table"), "2 tables");
        assert_eq!(plural(2, "day"), "2 days");
    }
    use crate::args::{Command, HiArgs, LowArgs};

    fn hi(args: &[&str], env: &[(&str, &str)]) -> Result<HiArgs, ArgError> {
        let low = LowArgs::parse_from_args(std::iter::once("copyman").chain(args.iter().copied()))
            .map_err(|e| ArgError::usage(e.to_string()))?;
        HiArgs::from_low(low, &Env::from_pairs(env))
    }

    fn job(args: &[&str]) -> JobArgs {
        match hi(args, &[("HOME", "/home/u"), ("USER", "u")])
            .unwrap()
            .command
        {
            Command::Job(job) => *job,
            _ => panic!("not a job: {args:?}"),
        }
    }

    #[test]
    fn many_tables_or_a_job_flag_make_a_job() {
        let base = ["table", "--from", "host=a", "--to", "host=b"];
        fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            v
        }
        let with = |extra: &[&'static str]| with(&base, extra);
        // One plain table: the single-table copy.
        assert!(matches!(
            hi(&with(&["t"]), &[("HOME", "/h"), ("USER", "u")])
                .unwrap()
                .command,
            Command::Transfer(_)
        ));
        let j = job(&with(&["a", "App.B"]));
        assert_eq!(j.selection.tables.len(), 2);
        assert_eq!(j.options.jobs, DEFAULT_JOBS);
        assert!(j.options.snapshot);
        // The default state file goes there, named once the servers said who they are.
        assert_eq!(
            j.state_dir.as_deref(),
            Some(Path::new("/home/u/.cache/copyman/jobs"))
        );
        let j = job(&with(&[
            "--schema",
            "s",
            "--table",
            "x*",
            "--exclude-table",
            "x_old",
            "--jobs",
            "8",
            "--max-rate",
            "10M",
            "--no-snapshot",
            "--verify",
            "--resume",
            "--state",
            "/tmp/s",
        ]));
        assert_eq!(j.options.jobs, 8);
        assert_eq!(j.options.max_rate, Some(10 << 20));
        assert!(!j.options.snapshot && j.options.verify && j.options.resume);
        assert_eq!(j.options.state, PathBuf::from("/tmp/s"));
        assert_eq!(j.state_dir, None);
        assert_eq!(j.selection.exclude, ["x_old"]);
        // pg_dump's short flags mean the same.
        let short = job(&with(&["-n", "s", "-t", "x*", "-T", "x_old", "-j", "8"]));
        assert_eq!(short.selection, j.selection);
        assert_eq!(short.options.jobs, 8);
        // pg_dump's -N: its schemas' tables left out (it was refused: jobs43 F2).
        let n = job(&with(&["-N", "audit", "--exclude-schema", "\"Old\""]));
        assert_eq!(n.selection.exclude, ["audit.*", "\"Old\".*"]);
        // No table at all: every table.
        assert_eq!(job(&with(&[])).selection, Selection::default());
        // ... but not emptied on a word left out (ux70 F13: `copyman table $T … --truncate`
        // with `$T` unset): every table is said.
        let err = hi(&with(&["--truncate"]), &[("HOME", "/h")]).unwrap_err();
        assert!(err.to_string().contains("--schema '*'"), "{err}");
        assert!(hi(&with(&["--truncate", "-j", "2"]), &[("HOME", "/h")]).is_err());
        assert!(job(&with(&["--truncate", "--resume"])).options.truncate);
        for selected in [
            &["-n", "*"][..],
            &["-T", "audit"],
            &["-N", "x"],
            &["a", "b"],
        ] {
            let mut args = with(&["--truncate"]);
            args.extend_from_slice(selected);
            assert!(job(&args).options.truncate, "{selected:?}");
        }
        // The limits of one table mean the same for a job.
        let j = job(&with(&[
            "a",
            "b",
            "--stall-timeout",
            "10s",
            "--lock-timeout",
            "2s",
            "--allow-count-mismatch",
        ]));
        assert_eq!(j.options.stall_timeout, Some(Duration::from_secs(10)));
        assert_eq!(j.lock_timeout, Some(Duration::from_secs(2)));
        assert!(j.options.allow_count_mismatch);
    }

    #[test]
    fn a_job_refuses_what_is_for_one_table() {
        let env = [("HOME", "/h"), ("USER", "u")];
        let usage = |args: &[&str]| {
            let err = hi(args, &env).unwrap_err();
            assert_eq!(err.exit, Exit::Usage, "{err}");
            err.message
        };
        for flag in [
            &["--columns", "a"][..],
            &["--where", "a > 1"],
            &["--target-table", "x"],
        ] {
            let mut args = vec!["table", "a", "b", "--from", "host=a", "--to", "host=b"];
            args.extend_from_slice(flag);
            assert!(usage(&args).contains("is for one table"), "{flag:?}");
        }
        // --encoding names the encoding of files and stdin: a job copies between servers only,
        // and is refused it as a copy of one table between servers is.
        let message = usage(&[
            "table",
            "a",
            "b",
            "--from",
            "host=a",
            "--to",
            "host=b",
            "--encoding",
            "LATIN1",
        ]);
        assert!(
            message.contains("--encoding is for file and stdin endpoints"),
            "{message}"
        );
        assert!(
            usage(&["table", "a", "b", "--from", "host=a", "--to", "out.csv"]).contains("file")
        );
        assert!(
            usage(&[
                "table", "--table", "a.b.c", "--from", "host=a", "--to", "host=b"
            ])
            .contains("dot-separated")
        );
        assert!(
            usage(&["table", "--jobs", "0", "--from", "host=a", "--to", "host=b"])
                .contains("--jobs")
        );
        // Refused before anything is sized from it (it aborted, out of memory).
        for huge in ["1025", "99999999999"] {
            let said = usage(&[
                "table", "--jobs", huge, "--from", "host=a", "--to", "host=b",
            ]);
            assert!(said.contains("at most 1024"), "{said}");
        }
        assert!(
            usage(&[
                "table",
                "--max-rate",
                "fast",
                "--from",
                "host=a",
                "--to",
                "host=b"
            ])
            .contains("--max-rate")
        );
        // A bare 1 is one byte a second: refused, not a job that runs for weeks.
        let said = usage(&[
            "table",
            "--max-rate",
            "1",
            "--from",
            "host=a",
            "--to",
            "host=b",
        ]);
        assert!(said.contains("at least 32K"), "{said}");
        // Without HOME or XDG_CACHE_HOME, the state file must be named.
        let err = hi(
            &["table", "--from", "host=a", "--to", "host=b"],
            &[("USER", "u")],
        )
        .unwrap_err();
        assert!(err.message.contains("--state"), "{err}");
        // A relative XDG_CACHE_HOME is invalid and ignored, as the XDG specification says (it
        // was taken relative to the working directory: scale38 F9).
        let err = hi(
            &["table", "--from", "host=a", "--to", "host=b"],
            &[("USER", "u"), ("XDG_CACHE_HOME", "relative/cache")],
        )
        .unwrap_err();
        assert!(err.message.contains("--state"), "{err}");
    }

    #[test]
    fn notes_said_alike_of_many_tables_are_said_once() {
        let notes: Vec<String> = [
            r#""s"."a": runs triggers (audit)"#,
            "--exclude-table x matches no table on the source",
            r#""s"."b": runs triggers (audit)"#,
            r#""s"."c": copied with its partitioned table "s"."p", not by itself"#,
            r#""s"."d": runs triggers (audit)"#,
            r#""s"."e": runs triggers (audit)"#,
        ]
        .map(str::to_owned)
        .into();
        assert_eq!(
            grouped_notes(&notes),
            [
                r#"4 tables ("s"."a", "s"."b", "s"."d", "s"."e"): runs triggers (audit)"#,
                "--exclude-table x matches no table on the source",
                r#""s"."c": copied with its partitioned table "s"."p", not by itself"#,
            ]
        );
    }

    /// Alike but for their first parenthesis (each table's own trigger): one note, naming the
    /// first triggers (300 notes of one paragraph came back with per-table trigger names).
    /// A note of several tables (a foreign-key cycle's) is said as it is, not grouped with
    /// another's alike as if each were one table's.
    #[test]
    fn notes_of_several_tables_are_said_each() {
        let notes = [
            r#""s"."p", "s"."q": their foreign keys form a cycle"#.to_owned(),
            r#""s"."x", "s"."y", "s"."z": their foreign keys form a cycle"#.to_owned(),
        ];
        assert_eq!(grouped_notes(&notes), notes.to_vec());
    }

    #[test]
    fn notes_alike_but_for_a_name_are_said_once() {
        let notes: Vec<String> = (1..=5)
            .map(|i| format!(r#""s"."t{i}": runs triggers on it (t{i}_audit): they run (each)"#))
            .collect();
        assert_eq!(
            grouped_notes(&notes),
            [
                r#"5 tables ("s"."t1", "s"."t2", "s"."t3" and 2 more): runs triggers on it (t1_audit, t2_audit, t3_audit and 2 more): they run (each)"#
            ]
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("50M"), Some(50 << 20));
        assert_eq!(parse_size("2kB/s"), Some(2048));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
        // As copyman prints sizes, and a fraction with a unit (ux70 F5).
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("2 GiB"), Some(2 << 30));
        assert_eq!(parse_size("1.5M"), Some(3 << 19));
        assert_eq!(parse_size("0.5K/s"), Some(512));
        assert_eq!(parse_size("1.5"), None);
        assert_eq!(parse_size("1.M"), None);
        assert_eq!(parse_size("Mi"), None);
    }
}
