//! The command line: raw flags ([`LowArgs`], parsed by clap) validated into what to do
//! ([`HiArgs`]).
//!
//! clap checks the shape (known flags, values present); [`HiArgs::from_low`] checks meaning:
//! names parse as SQL identifiers, `--receive` statements pair with `--to` destinations, files and
//! servers are where they may be, connection strings parse and ask for nothing copyman cannot
//! honour. Everything it refuses is a usage error (exit 2). Last, `-W` prompts for the password.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use copyman_core::file_start::Compression;
use copyman_core::start;
use copyman_core::statement::{self, Direction};

use crate::conn::{self, ConnError, Env, ServerSpec, Target};
use crate::report::Exit;
use crate::sql::{self, Format, TableCopy, TableName};

/// Shown after every `--help`.
const AFTER_HELP: &str = "\
CONN is one of:
  postgresql://user:password@host:port/dbname?param=value   a URL
  'host=h port=5432 user=u dbname=d'                        a key=value conninfo
  -                                                         stdin (--from) or stdout (--to)
  a path (starts with / or ./, or has no '=' and no '://')  a file
(A server written as user@host:port, host:port or an address is refused: say postgresql://.)
Parameters a CONN leaves out come, as in libpq, from its service (service=NAME or PGSERVICE, in
PGSERVICEFILE or ~/.pg_service.conf, then $PGSYSCONFDIR/pg_service.conf), then from PGHOST,
PGHOSTADDR, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGOPTIONS, PGAPPNAME, PGCLIENTENCODING,
PGSSLMODE, PGSSLROOTCERT, PGSSLCERT, PGSSLKEY, PGCONNECT_TIMEOUT (every variable libpq reads),
then libpq's defaults (the socket directory /var/run/postgresql; the OS user name; database =
user; sslmode prefer); passwords also from -W, passfile, PGPASSFILE or ~/.pgpass. TLS (sslmode
disable, allow, prefer, require, verify-ca, verify-full; sslrootcert=FILE or system; sslcert,
sslkey) is as in libpq; channel_binding=require insists on SCRAM-SHA-256-PLUS. Parameters copyman
cannot honour (gssencmode=require, sslcrl, sslpassword, require_auth, ...) are refused by name.
As pg_dump's, copyman's sessions run with statement_timeout, lock_timeout and
idle_in_transaction_session_timeout at 0 and READ COMMITTED transactions, whatever a role or
database sets (a COPY is one statement; --stall-timeout and --lock-timeout bound a copy); a CONN's
options (or PGOPTIONS) keep their statement_timeout, lock_timeout and isolation. They write and
read values in the forms every server reads alike: DateStyle ISO, IntervalStyle postgres,
extra_float_digits 3, lc_monetary C, array_nulls on, bytea_output hex, standard_conforming_strings
on, xmloption content — SQL of yours (a --send, a --where, a view, a destination's defaults and
triggers) computes under them too.

Every destination copies inside its own transaction, committed only once the copy succeeded
everywhere; any fault rolls back every destination unless --keep-going. The COMMITs are one after
another: a COMMIT that fails stops the rest (they roll back), and the report says which committed.
--atomic makes them all or nothing (two-phase commit; see copyman recover --help). In a job of
many tables all this holds per table (per group of tables linked by foreign keys, copied
together): a table committed stays committed when a later one fails. A destination
given twice (the same server and database, or the same file, however it is reached) is refused
before anything is sent. A file is written beside it and renamed into place once every server
committed (keeping its permission bits; an existing file we may not write is refused before
anything is sent); a symbolic link is written through to its target. What is not a regular file
(a pipe, a device, /dev/stdout, /dev/fd/N) is written directly, as stdout is: what went out
before a failure cannot be taken back, and text or CSV data is ended then by a line a COPY
reading it fails on (`\\.copyman: the copy failed here…`), so that a reader of a pipe never
loads part of it as the whole. Binary data is not written to a terminal. Text or CSV
data whose last line has no line end is copied with a warning from a regular file, and refused
(nothing committed) from stdin or a pipe, whose writer may have died mid-row: end the line, or
give it as a file.

Exit status:
  0  success: every destination committed
  1  the copy failed, and nothing was committed anywhere
  2  usage error (also: a destination given twice or on a standby, the source's own table, a
     table, schema or column the source or a destination does not have, or --atomic with a
     destination that cannot prepare; in a job, a table a destination does not have fails
     there, as a copy does: 1 or 4)
  3  connection or authentication failure
  4  partial: some destinations committed (or may have) and others did not (also: a second
     signal during the COMMITs; a first lets them finish), or a job's --verify found a
     committed table that differs
  129, 130, 143  interrupted by SIGHUP, SIGINT (Ctrl-C), SIGTERM: nothing committed (a second
     signal exits at once); a job of many tables keeps the tables it committed before the
     signal (recorded in its state file: --resume goes on) and rolls back the others
  131  SIGQUIT (Ctrl-\\): exits at once, as a second signal does, saying what committed
     (4 if anything did; in a job, 4 only while a table's COMMITs are under way: the tables
     committed before are kept and recorded, as after a first signal)";

/// How long `copyman recover` given several destinations waits for each to answer its connect
/// when its CONN gives no `connect_timeout`.
const RECOVER_CONNECT_LIMIT: Duration = Duration::from_secs(30);

/// Examples shown by `copyman table --help`.
const TABLE_EXAMPLES: &str = "\
Examples:
  copyman table public.items --from postgresql://app@src/db --to 'host=dst1 dbname=db' --to 'host=dst2 dbname=db'
  copyman table items --from SRC --to DST --truncate            # replace what DST holds
  copyman table items --from SRC --to DST --columns id,name --where 'id > 1000'   # append rows
  copyman table items --from SRC --to items.csv --header        # a table to a CSV file
  copyman table items --from items.csv --header --to DST1 --to DST2   # that file to two servers
  copyman table items --from - --to DST --encoding LATIN1 < items.txt
  copyman table items --from SRC --to DST --lock-timeout 10s --stall-timeout 1min

copyman copies rows into tables that exist on every destination, and creates none: without
--truncate it appends. To set up empty destinations as pg_dump and pgcopydb do, load the source's
tables first and the rest after the copy (its triggers then run on no copied row):
  pg_dump --section=pre-data SRC | psql DST;  copyman table --from SRC --to DST;  pg_dump --section=post-data SRC | psql DST

Sequences: between servers, the sequence a copied column's values come from (the one a serial or
identity column owns, else the one its default takes nextval of — a sequence tables share too —
or a partition's parent's identity) is advanced on each destination to where the source's stands
(never moved back), in its transaction before its COMMIT, so that the next INSERT there does not
collide with a copied row; a role that may not UPDATE it is warned. Other sequences are left
alone.";

/// Examples shown by `copyman copy --help`.
const COPY_EXAMPLES: &str = "\
Examples:
  copyman copy --from SRC --send 'COPY (SELECT * FROM t WHERE x > 0) TO STDOUT' \\
      --to DST --receive 'COPY t FROM STDIN'
  copyman copy --from SRC --send 'COPY t TO STDOUT' \\
      --to DST1 --receive 'COPY a FROM STDIN' --to DST2 --receive 'COPY b FROM STDIN'
  copyman copy --from data.csv --to DST1 --to DST2 --receive 'COPY t FROM STDIN (FORMAT csv, HEADER)'
  gunzip -c t.txt.gz | copyman copy --from - --to DST --receive 'COPY t FROM STDIN'";

/// Examples shown by `copyman demo --help`.
const DEMO_HELP: &str = "\
Examples:
  copyman demo
  copyman demo --rows 10000000 --destinations 5

Needs only the PostgreSQL server binaries (initdb, pg_ctl, postgres: on PATH, in pg_config \
--bindir or /usr/lib/postgresql/*/bin, or in $COPYMAN_PG_BINDIR); run as root, the servers run \
as the OS user postgres. The clusters live under $COPYMAN_CLUSTER_TMPDIR (default /dev/shm, else the system's temporary directory), on ports the system gives, and are removed at the end, also when the demo fails or a signal stops it.

Exit status: 0 when every destination holds exactly the source's rows, 1 otherwise, 2 for a usage error, 129/130/143 when a signal stopped it.";

/// Shown after `copyman recover --help`.
const RECOVER_HELP: &str = "\
Example:
  copyman recover --to 'host=dst1 dbname=app' --to 'host=dst2 dbname=app'

A prepared transaction belongs to the database it was prepared in: give a CONN for each
destination database of the interrupted run, and the source's CONN too when the run's source
wrote (a --send statement that modifies, such as DELETE … RETURNING, is prepared on the source
as copyman:RUN:0 and committed with the destinations). Each one found is listed with its age and
what was done: committed (its run's decision, read from the decision log, was commit) or rolled
back (no commit decision was recorded, so nothing of that run was committed anywhere).

A prepared transaction whose run the decision log does not know (its run records its start in
the log before it prepares anything) is left alone: the log given is not that run's, and only the
run's own log says whether it decided commit.

A run decided commit whose transactions are not all on the servers given (the log records
which server holds each) is named with what is missing (\"give the source's CONN too\"), as are
prepared transactions in other databases of a server given.

A run whose log holds its start and no decision, while the servers show one of its transactions
gone and a later one still prepared, is left alone and said: it got past its prepares, and if
the log given is an old copy taken before its decision, some of it committed (rolling back the
rest would split it). So is one that ended on its own (a run that dies leaves a lock file
beside its log, which recovery finds) while one of its transactions is gone and another still
prepared: its last word is in a log other than this one. Give the run's latest log and every
server it copied to.

A run not decided commit whose sessions may still be alive is left alone: its lock file beside
the log, a copyman process of its id on this host, or a session still connected to a server
given whose last statement names its transaction (the run's own after its PREPARE, wherever the
run runs: --no-decision-log on another host cannot see its process or its log).

Exit status: 0 nothing left pending, 1 something left pending (a run still in progress, a run
the log does not know, a run the servers show partly ended, a transaction in another database
or on a server not given, one a signal left) or that could not be finished, 2 usage error,
3 connection failure, 4 a second signal exited at once (a COMMIT PREPARED sent may have
committed: run recover again). A first signal (SIGINT, SIGTERM, SIGHUP) lets the statement
under way finish and leaves the rest: the exit then says what is left, 0 or 1; one while
connecting, before anything was finished, exits at once with the signal's code (129, 130, 143),
as the other commands do.";

/// The raw command line, as clap parses it.
// No Debug for the raw arguments: they hold CONNs as typed, passwords and all.
#[derive(Parser)]
#[command(
    name = "copyman",
    version,
    about = "Stream PostgreSQL COPY data from one source to many destinations at once",
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub(crate) struct LowArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: LowCommand,
    /// No progress and no summary on stderr (errors, warnings and notes are still shown; a run
    /// that did not succeed says what failed, each destination that failed, and what committed).
    #[arg(short, long, global = true, display_order = 100)]
    pub(crate) quiet: bool,
    /// Log each step on stderr.
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "quiet",
        display_order = 100
    )]
    pub(crate) verbose: bool,
    /// Print a machine-readable summary on stdout.
    #[arg(long, global = true, display_order = 100)]
    pub(crate) json: bool,
    /// Prompt for a password (once, on the terminal; without one, read a line from stdin as psql
    /// does) before connecting; it serves every server whose CONN has none, before PGPASSWORD
    /// and the password file.
    #[arg(short = 'W', long = "password", global = true, display_order = 100)]
    pub(crate) password: bool,
    /// Show progress even when stderr is not a terminal (a line every 5 s while data moves;
    /// a wait is said every 10 s). A terminal without cursor codes (TERM=dumb or unset) gets
    /// these lines without it.
    #[arg(long, global = true, conflicts_with = "quiet", display_order = 100)]
    pub(crate) progress: bool,
}

/// The subcommands.
#[derive(Subcommand)]
pub(crate) enum LowCommand {
    /// Copy a table's rows from the source to every destination.
    #[command(after_help = format!("{TABLE_EXAMPLES}\n\n{AFTER_HELP}"))]
    Table(LowTable),
    /// Run raw COPY statements: one COPY … TO STDOUT on the source, COPY … FROM STDIN on each
    /// destination.
    #[command(after_help = format!("{COPY_EXAMPLES}\n\n{AFTER_HELP}"))]
    Copy(LowCopy),
    /// Finish the prepared transactions an interrupted `--atomic` run left: commit those whose
    /// run recorded its commit decision, roll back the others. Never touches a prepared
    /// transaction that is not copyman's, nor one of a run still in progress; safe to repeat.
    #[command(after_help = RECOVER_HELP)]
    Recover(LowRecover),
    /// Start throwaway local clusters, fan a sample table out, verify every copy, clean up.
    #[command(after_help = DEMO_HELP)]
    Demo(LowDemo),
}

impl LowCommand {
    /// The command's name, as typed (a job of many tables is `table` too).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Table(_) => "table",
            Self::Copy(_) => "copy",
            Self::Recover(_) => "recover",
            Self::Demo(_) => "demo",
        }
    }
}

/// `copyman table`.
#[derive(clap::Args)]
pub(crate) struct LowTable {
    /// The table, in SQL syntax: items, app.items, '"My Schema"."Odd ""Name"""'. Several, or
    /// none with the selection flags below (none at all: every table; with --truncate, say it:
    /// --schema '*'), run a job: see "Many
    /// tables" below. So does one table given an option of "Many tables" (--jobs, --state,
    /// --resume, --verify, --max-rate, --split-larger-than, --no-snapshot): a job copies whole
    /// tables between servers, keeping a state file.
    #[arg(value_name = "TABLE")]
    pub(crate) tables: Vec<String>,
    /// Where the rows come from.
    #[arg(long, value_name = "CONN")]
    pub(crate) from: OsString,
    /// Where they go; repeat for each destination.
    #[arg(long, value_name = "CONN", required = true)]
    pub(crate) to: Vec<OsString>,
    /// Copy only these columns, e.g. id,name,"Note".
    #[arg(long, value_name = "COLUMNS")]
    pub(crate) columns: Option<String>,
    /// Copy only the rows matching this SQL condition (source must be a server).
    #[arg(long = "where", value_name = "SQL")]
    pub(crate) condition: Option<String>,
    /// Empty each destination table first, in the same transaction as the copy. Tables of a
    /// job linked by foreign keys are emptied together (one TRUNCATE) and copied as one unit:
    /// one transaction per destination, parents first, one commit. A file or stdin that holds
    /// no rows is refused (nothing committed): TRUNCATE the table to empty it. The TRUNCATE's
    /// ACCESS EXCLUSIVE lock holds until the COMMIT: readers of the table there wait for the
    /// whole copy.
    #[arg(long)]
    pub(crate) truncate: bool,
    /// Data format [default: binary between servers of one major version when every column's
    /// type matches on every side, csv for a *.csv file (a source file's own name, when the
    /// source is a file), else text].
    #[arg(long, value_enum, ignore_case = true, value_name = "FORMAT")]
    pub(crate) format: Option<FormatArg>,
    /// The data has a header line (implies --format csv; with --format text, a text header,
    /// which PostgreSQL reads and writes from version 15).
    #[arg(long)]
    pub(crate) header: bool,
    /// Let the destinations that did not fail finish and commit.
    #[arg(long)]
    pub(crate) keep_going: bool,
    /// All or nothing across the destinations (those that did not fail, with --keep-going),
    /// per table in a job: two-phase commit (needs max_prepared_transactions > 0 on every
    /// destination; see `copyman recover`).
    #[command(flatten)]
    pub(crate) atomic: LowAtomic,
    /// The destinations' table, when its name differs from the source's.
    #[arg(long, value_name = "TABLE")]
    pub(crate) target_table: Option<String>,
    /// Connect, look the table up everywhere and print the plan (statements, format and why,
    /// columns per destination); copy nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Limits and checks.
    #[command(flatten)]
    pub(crate) safety: LowSafety,
    /// Many tables at once.
    #[command(flatten, next_help_heading = "Many tables")]
    pub(crate) job: crate::job::LowJob,
}

/// Limits and checks shared by `table` and `copy`.
#[derive(clap::Args)]
pub(crate) struct LowSafety {
    /// Give up on a lock after this long (lock_timeout on every server session, source too):
    /// 500ms, 10s, 2min; a bare number is seconds.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) lock_timeout: Option<Duration>,
    /// Fail a source or destination that moves no byte for this long (same units); a
    /// destination whose COPY its server shows reading or storing rows moves (looked at once a
    /// second, or a third of this); one that has not read all its data at the end of the copy
    /// is given up, but not one completing its COPY with every byte in hand (its wait is said).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) stall_timeout: Option<Duration>,
    /// The encoding of the file and stdin endpoints, e.g. LATIN1 [default: the sessions'
    /// client_encoding (PGCLIENTENCODING, a CONN's), else UTF8 — not a role's or database's own
    /// client_encoding setting, which psql's \copy may follow: give it here]: each COPY's
    /// ENCODING in `table`; in `copy`, client_encoding of every server session (psql's
    /// \encoding), which its statements' ENCODING overrides (one naming another for a file is
    /// refused).
    #[arg(long, value_name = "ENCODING")]
    pub(crate) encoding: Option<String>,
    /// Accept destinations whose COPY stored a different number of rows than the source sent
    /// (triggers that route or drop rows): a warning, not a failure.
    #[arg(long)]
    pub(crate) allow_count_mismatch: bool,
}

/// `copyman copy`.
#[derive(clap::Args)]
pub(crate) struct LowCopy {
    /// Where the data comes from.
    #[arg(long, value_name = "CONN")]
    pub(crate) from: OsString,
    /// The source's statement, COPY … TO STDOUT (not for a file source).
    // A statement may start with a `--` comment, as psql's -c takes it (copy44 F2).
    #[arg(long, value_name = "SQL", allow_hyphen_values = true)]
    pub(crate) send: Option<String>,
    /// Where it goes; repeat for each destination.
    #[arg(long, value_name = "CONN", required = true)]
    pub(crate) to: Vec<OsString>,
    /// The statement, COPY … FROM STDIN, of the --to before it; a single --receive serves every
    /// server destination.
    #[arg(long, value_name = "SQL", allow_hyphen_values = true)]
    pub(crate) receive: Vec<String>,
    /// Let the destinations that did not fail finish and commit.
    #[arg(long)]
    pub(crate) keep_going: bool,
    /// Two-phase commit.
    #[command(flatten)]
    pub(crate) atomic: LowAtomic,
    /// Connect and print the plan (the statements per destination; on stderr when the data
    /// would go to stdout); copy nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Limits and checks.
    #[command(flatten)]
    pub(crate) safety: LowSafety,
    /// Where each --to and --receive stood on the command line, to pair them.
    #[arg(skip)]
    pub(crate) positions: Positions,
}

/// `--atomic` and its decision log, for `table` and `copy`.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct LowAtomic {
    /// All or nothing across destinations (in `copyman table`'s job of many tables, per table: a
    /// table committed stays when a later one fails; with --keep-going, across the destinations
    /// that did not fail, one that fails being left out): every destination's transaction ends
    /// with PREPARE TRANSACTION; only when every one prepared is the decision written (fsynced)
    /// to the decision log and each is committed (COMMIT PREPARED). A crash leaves prepared
    /// transactions, which hold their locks until `copyman recover` finishes them. Needs
    /// max_prepared_transactions > 0 on every destination.
    #[arg(long)]
    pub(crate) atomic: bool,
    /// The decision log of --atomic (or of the job --resume goes on, if it began with --atomic)
    /// [default: $XDG_STATE_HOME/copyman/decisions.log, or ~/.local/state/copyman/decisions.log].
    #[arg(long, value_name = "PATH")]
    pub(crate) decision_log: Option<PathBuf>,
}

/// `copyman recover`.
#[derive(clap::Args)]
pub(crate) struct LowRecover {
    /// A destination to look at (or the source of a run whose --send wrote); repeat for each.
    #[arg(long, value_name = "CONN", required = true)]
    pub(crate) to: Vec<String>,
    /// The decision log the runs wrote [default: as for --atomic].
    #[arg(long, value_name = "PATH")]
    pub(crate) decision_log: Option<PathBuf>,
    /// Only list what would be done (exit 1 while anything is pending, 0 when nothing is).
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// There is no decision log (it was lost): roll back every copyman prepared transaction
    /// found (if the default log exists after all, the decisions it records are still
    /// honoured), but a run's whose first transactions are gone while later ones are prepared
    /// (it may have committed them: left alone, exit 1). Only when no run recorded a commit
    /// decision: a run that did would lose what it had not yet committed.
    #[arg(long, conflicts_with = "decision_log")]
    pub(crate) no_decision_log: bool,
}

/// Command-line positions of `--to` and `--receive` values.
#[derive(Debug, Default, Clone)]
pub(crate) struct Positions {
    /// Of each `--to`.
    pub(crate) to: Vec<usize>,
    /// Of each `--receive`.
    pub(crate) receive: Vec<usize>,
}

/// `copyman demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct LowDemo {
    /// Rows in the sample table.
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    pub(crate) rows: u64,
    /// Destination clusters (1 to 16).
    #[arg(long, default_value_t = 3, value_name = "K")]
    pub(crate) destinations: usize,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FormatArg {
    /// PostgreSQL's text format.
    Text,
    /// CSV.
    Csv,
    /// PostgreSQL's binary format (same major version on both sides).
    Binary,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Text => Self::Text,
            FormatArg::Csv => Self::Csv,
            FormatArg::Binary => Self::Binary,
        }
    }
}

impl LowArgs {
    /// Parses `args` (the program name first).
    ///
    /// # Errors
    /// clap's, for `--help`/`--version` too (it knows how to print and exit for them).
    pub(crate) fn parse_from_args(
        args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    ) -> Result<Self, clap::Error> {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let matches = Self::command()
            .try_get_matches_from(&args)
            .map_err(|e| not_a_host_flag(e, &args))?;
        let mut low = Self::from_arg_matches(&matches)?;
        if let (LowCommand::Copy(copy), Some(("copy", sub))) =
            (&mut low.command, matches.subcommand())
        {
            copy.positions = Positions {
                to: indices(sub, "to"),
                receive: indices(sub, "receive"),
            };
        }
        Ok(low)
    }
}

/// psql's and pg_dump's `-h HOST` among a command's arguments is the help flag here: the help
/// was printed and the exit 0, nothing copied, under `--json` too. Refused instead (exit 2),
/// saying how to name a host; `-h` with nothing but a subcommand's name stays the help.
fn not_a_host_flag(error: clap::Error, args: &[OsString]) -> clap::Error {
    let subcommands = ["table", "copy", "recover", "demo", "help"];
    let others = args
        .iter()
        .skip(1)
        .filter(|a| *a != "-h" && !subcommands.iter().any(|s| *a == *s))
        .count();
    let help = error.kind() == clap::error::ErrorKind::DisplayHelp;
    if !help || others == 0 || !args.iter().any(|a| a == "-h") {
        return error;
    }
    LowArgs::command().error(
        clap::error::ErrorKind::UnknownArgument,
        "-h is the help here, not a host as psql's: name the host in the CONN (--from \
         'host=db1 …', --to postgresql://db2/…); --help alone for the help",
    )
}

/// What to print on stderr for a clap error that goes there: its text with anything that looks
/// like a password masked (clap may quote the command line) — but not the help clap shows for a
/// command given without its arguments (bare `copyman`), its own text, which quotes nothing of
/// the command line: masked, its `postgresql://user:password@…` placeholder became
/// `user:***@…`, out of line with the rest, where `--help` shows it.
pub(crate) fn usage_text(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let text = match error.kind() {
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => return error.to_string(),
        _ => conn::scrub(&error.to_string()),
    };
    // An argument clap did not expect that says what was meant (cli43 F3, F4).
    let unexpected = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) if error.kind() == ErrorKind::UnknownArgument => arg,
        _ => return text,
    };
    let subcommand = std::env::args().nth(1);
    // Another tool's option (pg_dump's, pg_restore's, pgcopydb's): copyman's way, not clap's
    // nearest spelling (ux70 F7: `--snapshot` was told to be `--no-snapshot`, `--clean`
    // `--schema`) nor its "use '-- --x'".
    if let Some(tip) = other_tools_option(unexpected) {
        let text = (text.lines())
            .filter(|l| !l.contains("a similar argument exists") && !l.contains("to pass '"))
            .collect::<Vec<_>>()
            .join("\n");
        return match text.split_once('\n') {
            Some((first, rest)) => format!("{first}\n  tip: {tip}\n{rest}\n"),
            None => format!("{text}\n  tip: {tip}\n"),
        };
    }
    let tip = if let Some(tip) = conn::piece_tip(unexpected) {
        tip.to_owned()
    } else if unexpected == "--from" && subcommand.as_deref() == Some("recover") {
        "copyman recover takes every server it finishes as --to (the source of a copy run too)"
            .to_owned()
    } else if subcommand.as_deref() == Some("copy") && is_table_option(unexpected) {
        // Not clap's nearest spelling (files50 F5: `--verify` was told to be `--version`, the
        // usage line ending in it), and where `copy` says it another way, that way.
        let similar = (text.lines())
            .find_map(|line| line.split_once("a similar argument exists: '"))
            .and_then(|(_, rest)| rest.split_once('\''))
            .map(|(name, _)| format!(" {name}"));
        let mut lines: Vec<&str> = (text.lines())
            .filter(|line| !line.contains("a similar argument exists"))
            .collect();
        lines.dedup_by(|a, b| a.is_empty() && b.is_empty());
        let text = (lines.into_iter())
            .map(|line| match (line.starts_with("Usage: "), &similar) {
                (true, Some(name)) => line.find(name.as_str()).map_or(line, |at| &line[..at]),
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let tip = copy_says_it(unexpected);
        return match text.split_once('\n') {
            Some((first, rest)) => format!("{first}\n  tip: {tip}\n{rest}\n"),
            None => format!("{text}\n  tip: {tip}\n"),
        };
    } else {
        return text;
    };
    // Under the error's line, before the usage.
    match text.split_once('\n') {
        Some((first, rest)) => format!("{first}\n  tip: {tip}\n{rest}"),
        None => format!("{text}\n  tip: {tip}\n"),
    }
}

/// copyman's way to what another tool's option `arg` does (pg_dump's, pg_restore's,
/// pgcopydb's), where copyman has none of that name.
fn other_tools_option(arg: &str) -> Option<&'static str> {
    Some(match arg.split('=').next().unwrap_or_default() {
        "--source" => "the source is --from CONN (pgcopydb's --source)",
        "--target" => "each destination is a --to CONN, repeated for several (pgcopydb's --target)",
        "--table-jobs" | "--parallel" => "--jobs N copies N tables at once",
        "--snapshot" => {
            "copyman reads the source in a snapshot of its own (--no-snapshot reads each table \
             in its own transaction); it cannot take an exported one, as pg_dump's and \
             pgcopydb's --snapshot do"
        }
        "--clean" | "-c" => {
            "copyman copies data, not objects: --truncate empties each destination's table \
             before loading it"
        }
        "--disable-triggers" => {
            "options='-c session_replication_role=replica' in a destination's CONN keeps its \
             triggers from running, as pg_dump's --disable-triggers does"
        }
        "--single-transaction" | "-1" => {
            "each table is one transaction on each destination already; --atomic commits every \
             destination or none"
        }
        "--filters" => "select tables with -t, -T, -n and -N (copyman reads no filter file)",
        // pg_dump's what-to-dump options (recheck72 F5: clap's tip made `--data-only` a TABLE).
        "--data-only" | "-a" => {
            "copyman copies rows only, into tables that exist on every destination: leave it out"
        }
        "--schema-only" | "-s" => {
            "copyman copies rows, not objects: pg_dump --section=pre-data SRC | psql DST makes \
             the tables"
        }
        "--no-owner" | "-O" | "--no-privileges" | "--no-acl" | "-x" | "--if-exists"
        | "--create" | "-C" => "copyman creates no objects, it copies rows: leave it out",
        format if format.starts_with("-F") => {
            "copyman writes COPY data (--format text, csv or binary), not pg_dump's archives: \
             leave -F out"
        }
        // psql's and pg_dump's connection options (recheck71 F5: `--port` was told to be
        // `--format`, `-p` to be given after `--`, where it is a TABLE).
        "-p" | "--port" | "-U" | "--username" | "-d" | "--dbname" | "--host" => {
            "a server is named whole by its CONN, as libpq's connection string: --from \
             'host=db1 port=5433 user=app dbname=shop' or postgresql://app@db1:5433/shop, each \
             --to alike"
        }
        _ => return None,
    })
}

/// `arg`'s option name, `--tables` read as `table`'s `--table` (what a pgcopydb or many-table
/// habit types: it got clap's bare "unexpected argument", jobs66 F12).
fn option_name(arg: &str) -> &str {
    match arg.split('=').next().unwrap_or_default() {
        "--tables" => "--table",
        name => name,
    }
}

/// Whether `arg` (`--verify`, `-t`) is an option of `copyman table`.
fn is_table_option(arg: &str) -> bool {
    let name = option_name(arg);
    let command = LowArgs::command();
    (command.find_subcommand("table")).is_some_and(|table| {
        table
            .get_arguments()
            .any(|a| match name.strip_prefix("--") {
                Some(long) => a.get_long() == Some(long),
                None => name.strip_prefix('-').is_some_and(|short| {
                    let mut short = short.chars();
                    short.next().is_some_and(|c| a.get_short() == Some(c)) && short.next().is_none()
                }),
            })
    })
}

/// What `copy` says instead of `table`'s option `arg`: its statements carry a COPY's options,
/// columns and rows; a job's options are `table`'s (recheck50 F5: one sentence for all).
fn copy_says_it(arg: &str) -> String {
    let given = option_name(arg);
    // A short option as its long one (recheck50b F6: `-j` was told otherwise than `--jobs`).
    let long = (given.strip_prefix('-'))
        .filter(|short| !short.starts_with('-'))
        .and_then(|short| short.chars().next())
        .and_then(|c| {
            let command = LowArgs::command();
            let table = command.find_subcommand("table")?;
            let long = table
                .get_arguments()
                .find(|a| a.get_short() == Some(c))?
                .get_long()?;
            Some(format!("--{long}"))
        });
    let name = long.as_deref().unwrap_or(given);
    let table = |how: &str| format!("copy a table with `copyman table {how}`");
    let way = match name {
        "--header" => {
            "the --receive's COPY says it: COPY t FROM STDIN (FORMAT csv, HEADER)".to_owned()
        }
        "--format" => {
            "the --send's and --receive's COPY say it: (FORMAT csv), (FORMAT binary)".to_owned()
        }
        "--columns" => {
            "the --receive's (and --send's) column list says it: COPY t (a, b) FROM STDIN"
                .to_owned()
        }
        "--where" => {
            "the --send's query says it: COPY (SELECT … FROM t WHERE …) TO STDOUT".to_owned()
        }
        "--target-table" => "the --receive names the table it loads".to_owned(),
        "--truncate" => format!(
            "`copy` empties nothing (TRUNCATE the tables first), or {}",
            table("TABLE --from … --to … --truncate")
        ),
        "--table" | "--schema" | "--exclude-table" | "--exclude-schema" => format!(
            "it selects a job's tables (many, each resumable): `copyman table --from … --to … \
             {name} PATTERN`"
        ),
        "--state" | "--resume" | "--jobs" | "--split-larger-than" => format!(
            "it is a job's (many tables, each resumable): `copyman table --from … --to … -n \
             SCHEMA {name}`"
        ),
        "--verify" => format!(
            "`copy` runs its --send and --receive as given, statements copyman cannot compare, \
             resume or empty; {}",
            table(&format!("TABLE --from … --to … {name}"))
        ),
        _ => format!(
            "`copy` runs its --send and --receive as given; {}",
            table(&format!("TABLE --from … --to … {name}"))
        ),
    };
    format!("{given} is `copyman table`'s: {way}")
}

fn indices(matches: &ArgMatches, id: &str) -> Vec<usize> {
    matches
        .indices_of(id)
        .map(Iterator::collect)
        .unwrap_or_default()
}

/// A usage or connection-parameter error found while validating.
#[derive(Debug)]
pub(crate) struct ArgError {
    /// The exit status it calls for.
    pub(crate) exit: Exit,
    /// What was wrong.
    pub(crate) message: String,
}

impl ArgError {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Usage,
            message: message.into(),
        }
    }
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ArgError {}

/// How to talk to the user.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Output {
    /// No progress, no summary on stderr.
    pub(crate) quiet: bool,
    /// Log steps on stderr.
    pub(crate) verbose: bool,
    /// Summary as JSON on stdout.
    pub(crate) json: bool,
    /// Progress lines even when stderr is not a terminal.
    pub(crate) progress: bool,
}

/// A validated command line.
#[derive(Debug)]
pub(crate) struct HiArgs {
    /// What to do.
    pub(crate) command: Command,
    /// How to talk about it.
    pub(crate) output: Output,
}

/// What to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// Copy from one source to many destinations (`table` and `copy`).
    Transfer(Box<Transfer>),
    /// `copyman table` with many tables: a job.
    Job(Box<crate::job::JobArgs>),
    /// `copyman recover`.
    Recover {
        /// The destinations to look at.
        destinations: Vec<ServerSpec>,
        /// The decision log.
        decision_log: PathBuf,
        /// Only list.
        dry_run: bool,
        /// `--no-decision-log`.
        no_decision_log: bool,
    },
    /// `copyman demo`.
    Demo {
        /// Rows in the sample table.
        rows: u64,
        /// Destination clusters.
        destinations: usize,
    },
}

/// One end of a copy.
#[derive(Debug, Clone)]
pub(crate) enum Endpoint {
    /// stdin or stdout.
    Stdio,
    /// A file.
    File(PathBuf),
    /// A server (boxed: the configuration is large).
    Server(Box<ServerSpec>),
}

impl Endpoint {
    /// How it is shown (passwords redacted).
    pub(crate) fn display(&self) -> String {
        match self {
            Self::Stdio => "-".to_owned(),
            // A mistyped CONN may have been taken for a file: never its password. A name with
            // control characters is quoted with them escaped, as `{:?}` does: a line end in it
            // printed a forged status line in the summary (files44 F7).
            Self::File(path) => {
                let shown = conn::redact(&path.to_string_lossy());
                match shown.chars().any(char::is_control) {
                    true => format!("{shown:?}"),
                    false => shown,
                }
            }
            Self::Server(spec) => spec.display.clone(),
        }
    }

    /// The host reached, for a server CONN naming several ([`ServerSpec::reached`]).
    pub(crate) fn reached(&self) -> Option<String> {
        match self {
            Self::Server(spec) => spec.reached(),
            _ => None,
        }
    }

    /// As shown with an outcome or a plan: [`Endpoint::display`], and the host reached when a
    /// server CONN names several ([`ServerSpec::shown`]).
    pub(crate) fn shown(&self) -> String {
        match self {
            Self::Server(spec) => spec.shown(),
            other => other.display(),
        }
    }

    /// Whether it is a server.
    pub(crate) fn is_server(&self) -> bool {
        matches!(self, Self::Server(_))
    }

    /// Whether it is a path ending in `.csv`.
    pub(crate) fn is_csv_file(&self) -> bool {
        matches!(self, Self::File(p) if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")))
    }
}

/// What statements a transfer runs.
#[derive(Debug, Clone)]
pub(crate) enum Statements {
    /// `copyman table`: built once the servers' versions are known.
    Table {
        /// Table, columns, condition, header.
        copy: TableCopy,
        /// `--truncate`.
        truncate: bool,
        /// `--format`, if given (or implied by `--header` or a `.csv` file).
        format: Option<Format>,
        /// The format was said (`--format` or `--header`), not guessed from a `.csv` name: a
        /// binary COPY file is then refused as that format, not read as binary.
        format_given: bool,
        /// CSV only for `--header` (no `--format`): data that is text is then refused as for a
        /// `.csv` name (input75 F6: a one-column text file with a header loaded `\N` as a
        /// string).
        csv_for_header: bool,
    },
    /// `copyman copy`: the source's statement, and each destination's (`None` for files).
    Raw {
        /// `--send`.
        send: Option<String>,
        /// The `--receive` of each destination, in order.
        receive: Vec<Option<String>>,
    },
}

/// A validated `table` or `copy`.
#[derive(Debug, Clone)]
pub(crate) struct Transfer {
    /// The source.
    pub(crate) source: Endpoint,
    /// The destinations, in command-line order.
    pub(crate) destinations: Vec<Endpoint>,
    /// The statements.
    pub(crate) statements: Statements,
    /// `--keep-going`.
    pub(crate) keep_going: bool,
    /// `--atomic`: the decision log of its two-phase commit.
    pub(crate) atomic: Option<PathBuf>,
    /// `--dry-run`: plan and show, copy nothing.
    pub(crate) dry_run: bool,
    /// Limits and checks.
    pub(crate) safety: Safety,
}

/// Limits and checks of a transfer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Safety {
    /// `--lock-timeout`: `lock_timeout` of every server session.
    pub(crate) lock_timeout: Option<Duration>,
    /// `--stall-timeout`: how long an endpoint may move no byte.
    pub(crate) stall_timeout: Option<Duration>,
    /// `--encoding`: the data's encoding: each COPY's `ENCODING` in `table` (its `TableCopy`),
    /// `client_encoding` of every server session in `copy`.
    pub(crate) encoding: Option<String>,
    /// `--allow-count-mismatch`.
    pub(crate) allow_count_mismatch: bool,
}

/// Parses a duration: `500ms`, `10s`, `2min` (or `2m`), `1h`, or a bare number of seconds.
///
/// # Errors
/// Anything else, or zero.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (500ms, 10s, 2min, 1h)"))?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "min" | "m" => number * 60.0,
        "h" => number * 3600.0,
        other => return Err(format!("unknown unit {other:?} (ms, s, min or m, h)")),
    };
    // To a DBA, `lock_timeout = 0` is no timeout: leaving the option out says that.
    if seconds == 0.0 {
        return Err(format!(
            "{text:?}: a timeout of 0 would be none; leave the option out for no timeout"
        ));
    }
    if !(seconds.is_finite() && (0.001..=86_400.0 * 365.0).contains(&seconds)) {
        return Err(format!("{text:?} is out of range (1ms to a year)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

impl Safety {
    /// Validates the limits and checks of a copy from `source` to `destinations` (a job's too).
    ///
    /// # Errors
    /// A bad `--encoding`, or one given where no file or stdin endpoint takes it.
    pub(crate) fn from_low(
        low: &LowSafety,
        source: &Endpoint,
        destinations: &[Endpoint],
    ) -> Result<Self, ArgError> {
        if let Some(encoding) = &low.encoding {
            let valid = !encoding.is_empty()
                && encoding.len() <= 64
                && encoding
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return Err(ArgError::usage(format!(
                    "--encoding {encoding:?} is not an encoding name (UTF8, LATIN1, WIN1252, …)"
                )));
            }
            let file = !source.is_server() || destinations.iter().any(|d| !d.is_server());
            if !file {
                return Err(ArgError::usage(
                    "--encoding is for file and stdin endpoints: servers convert between \
                     themselves",
                ));
            }
        }
        Ok(Self {
            lock_timeout: low.lock_timeout,
            stall_timeout: low.stall_timeout,
            encoding: low.encoding.clone(),
            allow_count_mismatch: low.allow_count_mismatch,
        })
    }
}

impl HiArgs {
    /// Validates `low`, resolving connection strings against `env`.
    ///
    /// # Errors
    /// What does not make sense, with the exit status it calls for.
    pub(crate) fn from_low(low: LowArgs, env: &Env) -> Result<Self, ArgError> {
        // clap does not see a conflict between a global flag given before the subcommand and
        // one after it (`copyman -v table … -q` ran, printing neither: cli43 F1).
        for (given, flag) in [(low.verbose, "--verbose"), (low.progress, "--progress")] {
            if given && low.quiet {
                return Err(ArgError::usage(format!(
                    "the argument '--quiet' cannot be used with '{flag}'"
                )));
            }
        }
        let output = Output {
            quiet: low.quiet,
            verbose: low.verbose,
            json: low.json,
            progress: low.progress,
        };
        let prompt = low.password;
        let mut command = match low.command {
            LowCommand::Table(table) if crate::job::is_job(&table) => {
                Command::Job(Box::new(crate::job::JobArgs::from_low(table, env)?))
            }
            LowCommand::Table(table) => Command::Transfer(Box::new(table_transfer(table, env)?)),
            LowCommand::Copy(copy) => Command::Transfer(Box::new(copy_transfer(copy, env)?)),
            LowCommand::Recover(recover) => {
                let destinations = recover
                    .to
                    .iter()
                    .map(|t| match endpoint(t, env, "--to")? {
                        Endpoint::Server(spec) => Ok(*spec),
                        _ => Err(ArgError::usage(
                            "recover: --to must name a server: files have no prepared transactions",
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                // One that takes the connection and never answers (a frozen server, a route
                // whose packets are dropped) held the others' decided transactions, and their
                // locks, prepared for as long: with several and the decision log, each connect
                // is bounded (a CONN's own connect_timeout wins), one not reached left as it is.
                let mut destinations = destinations;
                if destinations.len() > 1 && !recover.no_decision_log {
                    for spec in &mut destinations {
                        spec.bound_connect(RECOVER_CONNECT_LIMIT);
                    }
                }
                Command::Recover {
                    destinations,
                    decision_log: decision_log(recover.decision_log, env)?,
                    dry_run: recover.dry_run,
                    no_decision_log: recover.no_decision_log,
                }
            }
            LowCommand::Demo(demo) => {
                // Its own clusters take no password: accepted, -W did nothing (docs43 F3).
                if prompt {
                    return Err(ArgError::usage(
                        "--password (-W) is for servers copyman connects to; the demo's own \
                         clusters take none",
                    ));
                }
                if demo.rows == 0 {
                    return Err(ArgError::usage("--rows must be at least 1"));
                }
                if !(1..=16).contains(&demo.destinations) {
                    return Err(ArgError::usage("--destinations must be between 1 and 16"));
                }
                Command::Demo {
                    rows: demo.rows,
                    destinations: demo.destinations,
                }
            }
        };
        if let Command::Transfer(t) = &command
            && output.json
        {
            if t.destinations.iter().any(|d| matches!(d, Endpoint::Stdio)) {
                return Err(ArgError::usage(
                    "--json prints on stdout: it cannot go with --to - (data on stdout); write \
                     the data to a file, or to another descriptor: --to /dev/fd/3 3>FILE",
                ));
            }
            // `--to /dev/stdout`, or the file stdout was redirected to.
            if let Some(d) = t
                .destinations
                .iter()
                .find(|d| matches!(d, Endpoint::File(path) if crate::dest::is_stdout(path)))
            {
                return Err(ArgError::usage(format!(
                    "--json prints on stdout: it cannot go with --to {}, which is stdout",
                    d.display()
                )));
            }
        }
        // `copyman … --json >&-`: the document goes nowhere, said as a full disk or a closed
        // pipe is when it is written (the run itself needs no stdout: it goes on).
        if output.json && crate::closed_at_start(1) {
            crate::report::warn(
                "--json: stdout is closed: the document goes nowhere (redirect it: > FILE); the \
                 exit status says how the run ended",
            );
        }
        if let Command::Transfer(t) = &command {
            // `copyman … --to - >&-`: the data would go nowhere (fd 1 is `/dev/null` now), and
            // `--to /dev/stdout` (`/dev/fd/1`) is the same descriptor.
            let is_fd = |e: &Endpoint, fd: i32| match e {
                Endpoint::Stdio => true,
                Endpoint::File(path) => crate::dest::own_descriptor(path) == Some(fd),
                Endpoint::Server(_) => false,
            };
            // `--to /dev/fd/N` (`/proc/self/fd/N`) names the caller's descriptor N, given by a
            // redirection (`N> FILE`): looked at now, before copyman opens anything. One not
            // open would be one of copyman's own once it runs (a server's connection, a
            // socketpair): the data went into it, "committed", exit 0.
            let ends =
                std::iter::once((&t.source, false)).chain(t.destinations.iter().map(|d| (d, true)));
            for (end, written) in ends {
                let Endpoint::File(path) = end else { continue };
                let Some(fd) = crate::dest::named_descriptor(path) else {
                    continue;
                };
                let flag = if written { "--to" } else { "--from" };
                let shown = path.display();
                let access = crate::dest::descriptor_access(fd);
                let why = match (fd, access) {
                    (2, _) if crate::closed_at_start(2) => {
                        "stderr is closed: the data would go nowhere".to_owned()
                    }
                    // `--to /dev/stdin` (a `--from` mistyped): read-only there, as a pipe or a
                    // file given with `<` is. It failed after connecting, "Bad file
                    // descriptor", exit 1 (files40 F4).
                    (0, Some(libc::O_RDONLY)) if written => "stdin (descriptor 0) is open for \
                        reading only: the data is written to --to; did you mean --from?"
                        .to_owned(),
                    (1 | 2, Some(libc::O_WRONLY)) if !written => format!(
                        "{} (descriptor {fd}) is open for writing only: the data is read from \
                         --from; did you mean --to?",
                        if fd == 1 { "stdout" } else { "stderr" }
                    ),
                    (0..=2, _) => continue,
                    (_, None) => format!(
                        "descriptor {fd} is not open: give it with a redirection ({fd}{} FILE)",
                        if written { ">" } else { "<" }
                    ),
                    (_, Some(libc::O_RDONLY)) if written => format!(
                        "descriptor {fd} is open for reading only ({fd}<): open it for writing \
                         ({fd}> FILE)"
                    ),
                    (_, Some(libc::O_WRONLY)) if !written => format!(
                        "descriptor {fd} is open for writing only ({fd}>): open it for reading \
                         ({fd}< FILE)"
                    ),
                    _ => continue,
                };
                return Err(ArgError::usage(format!("{flag} {shown}: {why}")));
            }
            if crate::closed_at_start(0) && is_fd(&t.source, 0) {
                return Err(ArgError::usage(format!(
                    "--from {}: stdin is closed: give it the data (< FILE), or name the file",
                    t.source.display()
                )));
            }
            if crate::closed_at_start(1)
                && let Some(d) = t.destinations.iter().find(|d| is_fd(d, 1))
            {
                return Err(ArgError::usage(format!(
                    "--to {}: stdout is closed: the data would go nowhere (redirect it: > FILE)",
                    d.display()
                )));
            }
            // `--to /dev/stderr` (`/dev/fd/2`): the data and copyman's own messages on one
            // descriptor, the summary and warnings written into the data, exit 0.
            let is_stderr = |d: &&Endpoint| matches!(d, Endpoint::File(path) if crate::dest::own_descriptor(path) == Some(2));
            if let Some(d) = t.destinations.iter().find(is_stderr) {
                return Err(ArgError::usage(format!(
                    "--to {}: it is stderr, where copyman's messages go: they would be mixed \
                     into the data; give the data another descriptor (--to /dev/fd/3 3> FILE) \
                     or --to - (stdout)",
                    d.display()
                )));
            }
            // `copyman … --to - > FILE 2>&1` (cron's usual redirection): the messages and the
            // summary would land in the data.
            if stderr_is_stdout()
                && let Some(d) = t.destinations.iter().find(|d| is_fd(d, 1))
            {
                return Err(ArgError::usage(format!(
                    "--to {}: stderr goes where stdout does (2>&1): copyman's messages would be \
                     mixed into the data; send stderr elsewhere (2> LOG)",
                    d.display()
                )));
            }
        }
        // `--from -` or `--from /dev/stdin`: `-W` then never reads a password from stdin.
        let stdin_is_data = matches!(&command, Command::Transfer(t)
            if matches!(&t.source, Endpoint::Stdio)
                || matches!(&t.source, Endpoint::File(path)
                    if crate::dest::own_descriptor(path) == Some(0)));
        if prompt {
            // Once everything else is known to be right, and once for every server, as psql
            // asks before it connects (a copy between files connects nowhere: nothing to ask).
            let servers: Vec<&mut ServerSpec> = match &mut command {
                Command::Transfer(t) => std::iter::once(&mut t.source)
                    .chain(&mut t.destinations)
                    .filter_map(|e| match e {
                        Endpoint::Server(spec) => Some(&mut **spec),
                        _ => None,
                    })
                    .collect(),
                Command::Recover { destinations, .. } => destinations.iter_mut().collect(),
                Command::Job(job) => job.servers_mut(),
                Command::Demo { .. } => Vec::new(),
            };
            if !servers.is_empty() {
                let password = conn::prompt_password(stdin_is_data).map_err(ArgError::usage)?;
                // An empty answer (Enter, Ctrl-D) is no password, as in libpq: PGPASSWORD and
                // the password file are asked (it was sent, a failed login each: conn40 F2).
                for spec in servers.into_iter().filter(|_| !password.is_empty()) {
                    spec.use_prompted_password(&password);
                }
            }
        }
        Ok(Self { command, output })
    }
}

/// Whether stderr is the file, pipe or socket stdout is (`2>&1`): not a terminal or a device
/// (`> /dev/null 2>&1` discards both).
fn stderr_is_stdout() -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let (Ok(out), Ok(err)) = (
        std::fs::metadata("/proc/self/fd/1"),
        std::fs::metadata("/proc/self/fd/2"),
    ) else {
        return false;
    };
    let kind = out.file_type();
    (kind.is_file() || kind.is_fifo() || kind.is_socket())
        && out.dev() == err.dev()
        && out.ino() == err.ino()
}

pub(crate) fn endpoint(text: &str, env: &Env, flag: &str) -> Result<Endpoint, ArgError> {
    // An unset variable (`--to "$OUT"`), not a server: libpq's empty conninfo is the
    // environment's default server, where the rows were committed (exit 0).
    if text.trim().is_empty() {
        return Err(ArgError::usage(format!(
            "{flag} is empty (an unset variable?): give a file, `-`, or a server; the \
             environment's default server (PGHOST, PGDATABASE …) is postgresql://"
        )));
    }
    match Target::classify(text) {
        Target::Stdio => Ok(Endpoint::Stdio),
        Target::File(_) if conn::conninfo_misspelt(text) => Err(ArgError::usage(format!(
            "{flag} {}: this reads as a connection string written with ':' or blanks for '=', \
             and would be taken for a file; write each setting as key=value ('host=HOST \
             port=PORT user=USER dbname=DB'), a file of that name as ./…",
            conn::hide_misspelt_password(text)
        ))),
        Target::File(_) if conn::looks_like_a_server(text) => Err(ArgError::usage(format!(
            "{flag} {}: this names a server without saying so{}, and would be taken for a file; \
             give a server as postgresql://USER@HOST:PORT/DB or 'host=HOST port=PORT user=USER', \
             a file of that name as ./{}",
            conn::redact(text),
            match conn::password_file_line(text) {
                // (conn64 F5: taken for a file, password and all.)
                Some(_) =>
                    " (as a password file's line, HOST:PORT:DB:USER:PASSWORD: such a \
                            line goes into ~/.pgpass or the file PGPASSFILE names)",
                None => "",
            },
            conn::redact(text)
        ))),
        Target::File(path) if is_socket(&path) => {
            // A server's Unix socket (`/run/postgresql/.s.PGSQL.5432`): writing it failed only
            // after the source was read ("No such device or address").
            let dir = path.parent().map(|d| d.to_string_lossy().into_owned());
            let port = (path.file_name().and_then(|n| n.to_str()))
                .and_then(|n| n.strip_prefix(".s.PGSQL."))
                .map(str::to_owned);
            Err(ArgError::usage(match (dir, port) {
                (Some(dir), Some(port)) if !dir.is_empty() => format!(
                    "{flag} {text}: this is a server's Unix socket, not a file: give the server \
                     as 'host={dir} port={port}'"
                ),
                _ => format!("{flag} {text}: this is a Unix socket, not a file"),
            }))
        }
        // A disk (`/dev/sdb`, `/dev/loop0`, a typo for a file): written over from its first
        // byte, its partition table with it (files67 F23: "committed", exit 0).
        Target::File(path)
            if flag == "--to"
                && std::fs::metadata(&path).is_ok_and(|m| {
                    std::os::unix::fs::FileTypeExt::is_block_device(&m.file_type())
                }) =>
        {
            Err(ArgError::usage(format!(
                "{flag} {text}: this is a block device (a disk): copyman does not write COPY \
                 data over it; give a file"
            )))
        }
        // A directory of server sockets (`/var/run/postgresql`, psql's `-h`): its servers said,
        // not "Is a directory" after connecting (files67 F8).
        Target::File(path) if !socket_ports(&path).is_empty() => {
            let ports = socket_ports(&path);
            Err(ArgError::usage(format!(
                "{flag} {text}: this is a directory of server sockets ({}), not a file: give the \
                 server as 'host={text} port={}'",
                (ports.iter())
                    .map(|p| format!(".s.PGSQL.{p}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                ports[0]
            )))
        }
        Target::File(path) => Ok(Endpoint::File(path)),
        Target::Server(conn) => match conn::resolve(&conn, env) {
            Ok(spec) => match spec.check_tls_files() {
                Ok(()) => Ok(Endpoint::Server(Box::new(spec))),
                Err(m) => Err(ArgError::usage(format!("{flag}: {m}"))),
            },
            // A file whose name holds a `=` (`x=1.csv`) reads as `key=value`: said, with the
            // way to name the file.
            // (Or one word whose key no connection has, as a file to write would be named.)
            // (`postgres:x.csv` reads as a URL: its reason said as such, and the way on --to
            // too, files63 F10.)
            Err(ConnError::Invalid(m))
                if Path::new(text).exists()
                    || (!text.contains(char::is_whitespace)
                        && (m.contains("invalid connection option")
                            || m.contains("not a valid connection URL"))) =>
            {
                let read_as = match text.contains('=') {
                    true => "a connection string (it holds a \"=\")",
                    false => "a connection URL (a name before a \":\")",
                };
                Err(ArgError::usage(format!(
                    "{flag}: {m}: {} is read as {read_as}; the file of that name is ./{}",
                    conn::redact(text),
                    conn::redact(text)
                )))
            }
            Err(ConnError::Invalid(m)) => Err(ArgError::usage(format!("{flag}: {m}"))),
        },
    }
}

/// Whether `path` is a Unix socket (following links).
fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// The `--from` and `--to` endpoints of a run whose `--stall-timeout` is `stall`: it bounds each
/// server's connect too, where its CONN gives no `connect_timeout` (a server that takes the
/// connection and never answers moves no byte; it was waited on for ever, `--keep-going`
/// leaving nothing out).
pub(crate) fn endpoints(
    from: &OsStr,
    to: &[OsString],
    env: &Env,
    stall: Option<Duration>,
) -> Result<(Endpoint, Vec<Endpoint>), ArgError> {
    // What is not UTF-8 is a file's name (an old LATIN1-named export) — unless it reads as a
    // connection string, which is refused: taken for a file, the rows went to a file named
    // after it, password and all, exit 0 (conn40 F8).
    let endpoint = |text: &OsStr, flag: &str| match text.to_str() {
        Some(text) => endpoint(text, env, flag).map(|mut e| {
            if let (Endpoint::Server(spec), Some(limit)) = (&mut e, stall) {
                spec.bound_connect(limit);
            }
            e
        }),
        None => match Target::classify(&text.to_string_lossy()) {
            Target::Server(lossy) => Err(ArgError::usage(format!(
                // (The CONN before a space: what hides a password's value runs to one.)
                "{flag} {} is a connection string that is not valid UTF-8 (\u{fffd} where it is \
                 not), and copyman reads connection strings as UTF-8: write it in UTF-8 (a \
                 database or a password in LATIN1 bytes cannot be given so), or a file of that \
                 name as ./NAME",
                conn::redact(&lossy)
            ))),
            _ => Ok(Endpoint::File(PathBuf::from(text))),
        },
    };
    let mut source = endpoint(from, "--from")?;
    if let Endpoint::Server(spec) = &mut source {
        spec.read_every_row();
    }
    // Among several, each refusal names its destination (conn42 F1: "--to:" left the user to
    // find which of five CONNs had the typo).
    let mut destinations = (to.iter().enumerate())
        .map(|(i, t)| match to.len() {
            1 => endpoint(t, "--to"),
            _ => endpoint(t, &format!("--to of destination {}", i + 1)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    // A bare word or a host name is a file here (psql would take the word for a database name):
    // said, with the way to name a database or the server.
    for (text, d) in to.iter().zip(&destinations) {
        let (Endpoint::File(path), Some(text)) = (d, text.to_str()) else {
            continue;
        };
        // psql's `\copy … to stdout` words (files67 F14: a file ./stdout was written).
        if ["stdout", "pstdout"].contains(&text.to_ascii_lowercase().as_str()) && !path.exists() {
            return Err(ArgError::usage(format!(
                "--to {text}: stdout is written - here (--to -); to write a file named {text}, \
                 give ./{text}"
            )));
        }
        let named = if conn::names_a_host(text) {
            format!("a server is `host={text}`")
        } else if !text.contains(['/', '.']) {
            format!("a database is `dbname={}`", conn::redact(text))
        } else {
            continue;
        };
        crate::report::warn(format_args!(
            // (Not "written": a dry run writes nothing, docs45 F4.)
            "--to {} is read as the file ./{} ({named})",
            conn::redact(text),
            conn::redact(&path.display().to_string())
        ));
    }
    // copyman writes COPY data as it is: into `out.csv.gz` it would be plain text that its
    // tool then refuses to read (psql's `\o` and `\copy` do the same, unsaid). Refused, with
    // the pipe that compresses it.
    for d in &destinations {
        let Endpoint::File(path) = d else { continue };
        let compression = path.extension().and_then(OsStr::to_str);
        if let Some(compression) = compression.and_then(Compression::of_extension) {
            let (name, tool) = (d.display(), compression.name());
            // `x.csv.gz`: CSV, which `--to -` does not write unless asked (files63 F13).
            let csv = (path.file_stem().map(Path::new))
                .and_then(Path::extension)
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            return Err(ArgError::usage(format!(
                "--to {name}: the name says {tool}-compressed, but copyman writes the COPY data \
                 as it is, uncompressed; compress it on its way out: copyman … --to -{} | {} > {}",
                if csv { " --format csv" } else { "" },
                compression.compress(),
                crate::file_source::shell_word(&name),
            )));
        }
    }
    for d in &mut destinations {
        if let Endpoint::Server(spec) = d {
            if source.is_server() {
                spec.read_server_data();
            } else {
                spec.read_as_the_server();
            }
        }
    }
    let stdout = destinations
        .iter()
        .filter(|d| matches!(d, Endpoint::Stdio))
        .count();
    if stdout > 1 {
        return Err(ArgError::usage("--to - (stdout) can be given only once"));
    }
    Ok((source, destinations))
}

/// Says, as the server's NOTICE does, each name in `text` (given as `what`) longer than 63
/// bytes, which copyman reads as the server does — cut there (names42 F7: two TABLEs became
/// one table without a word).
pub(crate) fn note_truncated(what: &str, text: &str) {
    for notice in sql::truncated_names(text) {
        crate::report::warn(format_args!("{what}: {notice}"));
    }
}

/// Where `text`, a TABLE or a `--table` pattern, holds a comma outside double quotes (a list,
/// as pgcopydb and other movers take one): the way copyman takes several (dup65 F11: refused,
/// or matched nothing, without a word of it).
pub(crate) fn table_list_tip(text: &str) -> Option<&'static str> {
    let mut quoted = false;
    let listed = text.chars().any(|c| {
        quoted ^= c == '"';
        c == ',' && !quoted
    });
    listed.then_some(
        "several tables are separate arguments, copyman table a b …, or --table repeated, as \
         pg_dump's -t; a comma is part of a name only inside double quotes",
    )
}

/// A pattern given where a table's name is (`'sales.*'`, `log_202?`): pg_dump's `-t` takes
/// patterns, copyman's `--table` too (ux70 F5: the error pointed nowhere).
pub(crate) fn table_pattern_tip(text: &str) -> Option<&'static str> {
    let mut quoted = false;
    let pattern = text.chars().any(|c| {
        quoted ^= c == '"';
        matches!(c, '*' | '?') && !quoted
    });
    pattern.then_some("a pattern is given with --table (-t), as pg_dump's: -t 'sales.*'")
}

/// A table's name given as `what`; psql's `\copy t(a, b)` form is pointed to `--columns`
/// (types41 F6).
fn table_arg(what: &str, text: &str) -> Result<TableName, ArgError> {
    note_truncated(what, text);
    TableName::parse(text).map_err(|e| {
        let hint = match text.split_once('(') {
            Some((name, list)) if !name.trim().is_empty() => format!(
                " (columns are given apart: {} --columns {}; to put a column into another \
                 name, copyman copy --send 'COPY (SELECT a AS b …) TO STDOUT')",
                name.trim(),
                list.trim().trim_end_matches(')').replace(' ', "")
            ),
            _ => match (conn::piece_tip(text))
                .or_else(|| table_list_tip(text))
                .or_else(|| table_pattern_tip(text))
            {
                Some(tip) => format!(" ({tip})"),
                None => String::new(),
            },
        };
        ArgError::usage(format!("{what}: {e}{hint}"))
    })
}

/// COPY data passes from server to server as bytes: read in another client_encoding than it
/// was written in, it fails, or worse, is stored as other text. Refused where the servers'
/// sessions differ — unless every statement names its ENCODING (`copy`), which then decides
/// (recheck41b F4: refused with a reason that did not hold).
pub(crate) fn refuse_other_client_encodings(
    source: &Endpoint,
    destinations: &[Endpoint],
) -> Result<(), ArgError> {
    let servers: Vec<&ServerSpec> = std::iter::once(source)
        .chain(destinations)
        .filter_map(|e| match e {
            Endpoint::Server(spec) => Some(&**spec),
            _ => None,
        })
        .collect();
    if let Some((first, rest)) = servers.split_first()
        && let Some(other) = rest
            .iter()
            .find(|s| s.client_encoding() != first.client_encoding())
    {
        return Err(ArgError::usage(format!(
            "client_encoding differs between {} ({}) and {} ({}): the COPY data would be \
                 read in another encoding than it was written in; give every server the same \
                 client_encoding",
            first.display,
            first.client_encoding(),
            other.display,
            other.client_encoding()
        )));
    }
    Ok(())
}

fn table_transfer(low: LowTable, env: &Env) -> Result<Transfer, ArgError> {
    let Some(text) = low.tables.first() else {
        return Err(ArgError::usage("TABLE: a table to copy is needed"));
    };
    let table = table_arg("TABLE", text)?;
    let target = (low.target_table.as_deref())
        .map(|text| table_arg("--target-table", text))
        .transpose()?;
    let columns = match &low.columns {
        Some(text) => {
            note_truncated("--columns", text);
            sql::parse_columns(text).map_err(|e| ArgError::usage(format!("--columns: {e}")))?
        }
        None => Vec::new(),
    };
    if let Some(condition) = &low.condition {
        sql::check_condition(condition).map_err(|e| ArgError::usage(e.to_string()))?;
    }
    let (mut source, destinations) = endpoints(&low.from, &low.to, env, low.safety.stall_timeout)?;
    refuse_other_client_encodings(&source, &destinations)?;
    // One copy's source: the user's SQL is read in the server's date order (run.rs sets ISO
    // output before the COPY), and a --where in its own string and array settings.
    if let Endpoint::Server(spec) = &mut source {
        spec.keep_date_order();
        if low.condition.is_some() {
            spec.keep_sql_settings();
        }
    }
    let safety = Safety::from_low(&low.safety, &source, &destinations)?;
    if low.condition.is_some() && !source.is_server() {
        return Err(ArgError::usage(
            "--where needs a server source: a file's rows cannot be filtered",
        ));
    }
    if low.truncate && !destinations.iter().any(Endpoint::is_server) {
        return Err(ArgError::usage("--truncate needs a server destination"));
    }
    // File to file copyman writes the data as it is: a column list would be ignored.
    if !columns.is_empty() && !source.is_server() && !destinations.iter().any(Endpoint::is_server) {
        return Err(ArgError::usage(
            "--columns names columns on a server: from a file to files the data is written as it \
             is, every column of it",
        ));
    }
    if target.is_some() && !destinations.iter().any(Endpoint::is_server) {
        return Err(ArgError::usage(
            "--target-table names the destinations' table: it needs a server destination",
        ));
    }
    let format = match (low.format.map(Format::from), low.header) {
        (Some(Format::Csv) | None, true) => Some(Format::Csv),
        (Some(Format::Text), true) => Some(Format::Text),
        (Some(other), true) => {
            return Err(ArgError::usage(format!(
                "--header needs --format csv or text, not {}",
                other.name()
            )));
        }
        (Some(format), false) => Some(format),
        // A file or stdin is read in its own format (its name's), never a destination's: a text
        // file loaded beside a `backup.csv` was sent as CSV (a NULL stored as the string \N,
        // '' as NULL, exit 0). From a server, a *.csv destination chooses CSV.
        (None, false) => {
            let csv_file = source.is_csv_file()
                || (source.is_server() && destinations.iter().any(Endpoint::is_csv_file));
            csv_file.then_some(Format::Csv)
        }
    };
    // CSV chosen for another endpoint's *.csv name, into a file named otherwise: read back as
    // text by its name, a NULL became '' and 'a,b' kept its quotes. Said.
    let guessed = low.format.is_none() && !low.header && format == Some(Format::Csv);
    if guessed {
        for d in &destinations {
            // As every message names a file: a path that looks like `user:password@` masked.
            let text = d.display();
            if matches!(d, Endpoint::File(_) | Endpoint::Stdio) && !d.is_csv_file() {
                crate::report::warn(format_args!(
                    "--to {text}: written in CSV, chosen for a *.csv file of this run; \
                     `copyman table` reads a file not named *.csv as text: read it back with \
                     --format csv (or give --format for this run)"
                ));
            }
        }
    }
    // A file named *.csv is read back as CSV by `copyman table`: one written otherwise is said,
    // as `copy` mode says it (read back by its name, a NULL became the string \N).
    // (In the source file's format where none was given: its bytes are written as they are.)
    // A source file that starts with the PGCOPY signature is binary COPY data, whatever its
    // name (it was said "written in FORMAT text … read it back with --format text", which is
    // refused for a binary file).
    // A regular file only: a FIFO's open waits for its writer (before anything was said of the
    // wait), and what a pipe's first bytes read here would be lost to the copy.
    let pgcopy_file = match &source {
        Endpoint::File(path) if std::fs::metadata(path).is_ok_and(|m| m.is_file()) => {
            std::fs::File::open(path).is_ok_and(|mut file| {
                let mut start = [0u8; 11];
                std::io::Read::read_exact(&mut file, &mut start).is_ok()
                    && start == *copyman_wire::eod::BINARY_SIGNATURE
            })
        }
        _ => false,
    };
    if pgcopy_file && low.format.is_none() {
        for d in destinations.iter().filter(|d| d.is_csv_file()) {
            crate::report::warn(format_args!(
                "--to {}: written as binary COPY data, as the source file is, not CSV: copyman \
                 reads it back as binary (by its PGCOPY signature), a tool that goes by its name \
                 does not",
                d.display()
            ));
        }
    }
    let written = format.or((!source.is_server() && !pgcopy_file).then_some(Format::Text));
    if let Some(format) = written.filter(|f| *f != Format::Csv) {
        let why = match low.format {
            Some(_) => "--format",
            None => "the source's, a file not named *.csv",
        };
        for d in &destinations {
            let text = d.display();
            if d.is_csv_file() {
                crate::report::warn(format_args!(
                    "--to {text}: written in FORMAT {0} ({why}), not CSV; `copyman table` \
                     reads a *.csv file as CSV: read it back with --format {0}",
                    format.name()
                ));
            }
        }
    }
    Transfer {
        source,
        destinations,
        statements: Statements::Table {
            copy: TableCopy {
                table,
                target,
                columns,
                condition: low.condition,
                header: low.header,
                encoding: low.safety.encoding.clone(),
            },
            truncate: low.truncate,
            format,
            format_given: low.format.is_some() || low.header,
            csv_for_header: low.format.is_none() && low.header,
        },
        keep_going: low.keep_going,
        safety,
        atomic: None,
        dry_run: low.dry_run,
    }
    .with_atomic(low.atomic, env)
}

fn copy_transfer(low: LowCopy, env: &Env) -> Result<Transfer, ArgError> {
    let (mut source, destinations) = endpoints(&low.from, &low.to, env, low.safety.stall_timeout)?;
    // Every statement naming its ENCODING decides what the data is in, whatever the
    // sessions' client_encoding.
    let stated =
        |sql: &String| statement::representation(sql).is_some_and(|r| r.encoding.is_some());
    if !(low.send.iter().all(stated) && !low.receive.is_empty() && low.receive.iter().all(stated)) {
        refuse_other_client_encodings(&source, &destinations)?;
    }
    // One copy's source: the user's SQL is read in the server's date order (run.rs sets ISO
    // output before the COPY) and its own string and array settings.
    if let Endpoint::Server(spec) = &mut source {
        spec.keep_date_order();
        spec.keep_sql_settings();
    }
    let safety = Safety::from_low(&low.safety, &source, &destinations)?;
    match (&source, &low.send) {
        (Endpoint::Server(_), None) => {
            return Err(ArgError::usage(
                "--send 'COPY … TO STDOUT' is needed with a server source",
            ));
        }
        (Endpoint::Stdio | Endpoint::File(_), Some(_)) => {
            return Err(ArgError::usage(
                "--send is for a server source; a file source is read as it is",
            ));
        }
        _ => {}
    }
    let receive = pair_receives(&low, &destinations)?;
    // Malformed statements are refused before any server is reached. The check reads strings
    // as standard_conforming_strings=on; each endpoint checks again with its server's setting.
    // A statement may start with `--` (a comment): a value that is an option alone is one the
    // statement was left out before (`--send --dry-run`, recheck44 F6).
    let an_option = |flag: &str, sql: &str| {
        let option = sql.starts_with('-')
            && sql.len() > 1
            && (sql.bytes()).all(|b| b == b'-' || b.is_ascii_lowercase() || b.is_ascii_digit());
        match option {
            true => Err(ArgError::usage(format!(
                "{flag} took {sql} as its statement: give the COPY statement after {flag}"
            ))),
            false => Ok(()),
        }
    };
    if let Some(send) = &low.send {
        an_option("--send", send)?;
        statement::check(send, Direction::ToStdout).map_err(|e| {
            // A query alone: its COPY said (ux70 F5).
            let first = send.split_whitespace().next().unwrap_or_default();
            let query = ["select", "with", "values", "table"]
                .iter()
                .any(|w| first.eq_ignore_ascii_case(w));
            ArgError::usage(match query {
                true => format!(
                    "--send: {e}; a query's rows are copied with COPY ({}) TO STDOUT",
                    (send.trim()).trim_end_matches(|c: char| c == ';' || c.is_whitespace())
                ),
                false => format!("--send: {e}"),
            })
        })?;
    }
    for receive in receive.iter().flatten() {
        an_option("--receive", receive)?;
        statement::check(receive, Direction::FromStdin)
            .map_err(|e| ArgError::usage(format!("--receive: {e}")))?;
    }
    same_representation(low.send.as_deref(), &receive)?;
    // A --send that changes data (a move: `DELETE … RETURNING`) into a --receive that filters
    // rows: the rows it leaves out are taken from the source and stored nowhere, committed with
    // exit 0 under --allow-count-mismatch (copy44 F8).
    if let Some(query) = low.send.as_deref().and_then(statement::copy_query)
        && statement::query_writes(query)
        && let Some(i) = (receive.iter()).position(|r| {
            r.as_deref()
                .is_some_and(|sql| statement::names_word(sql, "where"))
        })
    {
        return Err(ArgError::usage(format!(
            "the --send's query changes data (DELETE, UPDATE or INSERT … RETURNING) and the \
             --receive of destination {} filters rows with WHERE: the rows it leaves out would be \
             changed on the source and stored nowhere; filter in the --send instead (DELETE … \
             WHERE …)",
            i + 1
        )));
    }
    // A --receive that filters rows (`FROM STDIN WHERE …`) stores fewer than the source sends:
    // the count check would fail it after the whole copy (types43 F11). Said before.
    if !safety.allow_count_mismatch
        && let Some(i) = (receive.iter()).position(|r| {
            r.as_deref()
                .is_some_and(|sql| statement::names_word(sql, "where"))
        })
    {
        return Err(ArgError::usage(format!(
            "the --receive of destination {} filters rows with WHERE: its destination stores \
             fewer rows than the source sends, which copyman's row count check would fail after \
             the copy (nothing committed); give --allow-count-mismatch to commit what each \
             destination stores, or filter in the --send",
            i + 1
        )));
    }
    refuse_two_file_encodings(
        &safety,
        &source,
        &destinations,
        low.send.as_deref(),
        &receive,
    )?;
    // A file named *.csv is read back as CSV by `copyman table`: one written otherwise is said.
    let written = low.send.as_deref().and_then(statement::representation);
    // A NULL string a text value is written as too: a file is written as asked, for another
    // reader, but a value and a NULL are then the same bytes there (recheck69 F9: refused
    // toward a server, written to a file without a word).
    let misread = written.as_ref().and_then(start::NullMisread::of);
    if let Some(misread) = misread.filter(|m| !m.marker) {
        for d in destinations.iter().filter(|d| !d.is_server()) {
            crate::report::warn(format_args!(
                "--to {}: the --send writes FORMAT text with NULL '{}': a value that is that \
                 string is written as it too, the same bytes as a NULL, which no reader of the \
                 file tells apart (one with the same NULL reads both as NULL); leave NULL at \
                 its default (\\N), or use FORMAT csv, to keep them apart",
                d.display(),
                misread.null
            ));
        }
    }
    if let Some(rep) = written.filter(|r| r.format != "csv") {
        for d in &destinations {
            let text = d.display();
            if d.is_csv_file() {
                crate::report::warn(format_args!(
                    "--to {text}: written in FORMAT {} (the --send's), not CSV; `copyman \
                     table` reads a *.csv file as CSV: read it back with --format {}",
                    rep.format, rep.format
                ));
            }
        }
    }
    // And the mirror: a *.csv file read by a --receive in text: its quotes are stored as data
    // (`"hello, world"` with its quotes, `""` doubled), silently where one column takes each
    // line whole (files40 F11).
    if source.is_csv_file() {
        let text_receive = (receive.iter().flatten())
            .filter_map(|sql| statement::representation(sql))
            .find(|r| r.format == "text");
        if text_receive.is_some() {
            crate::report::warn(format_args!(
                "--from {}: read in FORMAT text (the --receive's), not CSV: a CSV file's quotes \
                 are then stored as data; if it is CSV, add (FORMAT csv) to the --receive",
                source.display()
            ));
        }
    }
    Transfer {
        source,
        destinations,
        statements: Statements::Raw {
            send: low.send,
            receive,
        },
        keep_going: low.keep_going,
        safety,
        atomic: None,
        dry_run: low.dry_run,
    }
    .with_atomic(low.atomic, env)
}

impl LowAtomic {
    /// Refuses `--decision-log` without `--atomic`, unless `resume` (a job that began with
    /// `--atomic` is resumed with it, its decisions in the log given).
    ///
    /// # Errors
    /// The usage error.
    pub(crate) fn decision_log_alone(&self, resume: bool) -> Result<(), ArgError> {
        match (&self.decision_log, self.atomic || resume) {
            (Some(_), false) => Err(ArgError::usage(
                "--decision-log is the log of --atomic: give --atomic too (or --resume, for a \
                 job that began with --atomic)",
            )),
            _ => Ok(()),
        }
    }
}

impl Transfer {
    /// Adds `--atomic`, which needs server destinations (a file cannot be prepared).
    fn with_atomic(mut self, low: LowAtomic, env: &Env) -> Result<Self, ArgError> {
        low.decision_log_alone(false)?;
        if !low.atomic {
            return Ok(self);
        }
        if let Some(file) = self.destinations.iter().find(|d| !d.is_server()) {
            return Err(ArgError::usage(format!(
                "--atomic needs server destinations: {} cannot take part in a two-phase commit",
                file.display()
            )));
        }
        let log = decision_log_to_write(low.decision_log, env)?;
        // The file the run reads (its --from, or stdin's): an empty one was taken for a new
        // log, and the next run read its records as rows (recheck67 F2).
        if let Some(read) = crate::dest::source_identity(&self.source) {
            use std::os::unix::fs::MetadataExt;
            if std::fs::metadata(&log).is_ok_and(|m| (m.dev(), m.ino()) == read) {
                return Err(ArgError::usage(format!(
                    "--decision-log {} is the file the run reads its data from: a run appends \
                     its records to its decision log; give the log another path",
                    log.display()
                )));
            }
        }
        self.atomic = Some(log);
        Ok(self)
    }
}

/// `path`, given to `flag`, if its directory exists: copyman creates only its default ones (a
/// mistyped directory was created, and a job's records or a run's decisions left where nobody
/// would look for them).
///
/// # Errors
/// A usage error naming the missing directory.
pub(crate) fn in_a_directory(flag: &str, path: &Path) -> Result<PathBuf, ArgError> {
    // A FIFO (or a socket) would hold the open of it until something opens its other end:
    // a run, its dry run, a recover waited there without a word (recheck54b F5).
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_fifo() || meta.file_type().is_socket() {
            return Err(ArgError::usage(format!(
                "{flag} {} is not a regular file (a FIFO, a socket): give a file, where what \
                 copyman records lasts",
                path.display()
            )));
        }
    }
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => Err(ArgError::usage(format!(
            "{flag} {}: no directory {} (copyman creates only its default directories)",
            path.display(),
            dir.display()
        ))),
        _ => Ok(path.to_path_buf()),
    }
}

/// `path`, given to `flag`, in a directory that exists ([`in_a_directory`]), where the run is
/// to write it: where it does not exist yet, a file must be creatable there — asked by making
/// one beside it and removing it — so that a dry run refuses what the run would (ops54 F1:
/// `/proc/nope` passed the dry run, exit 0, and failed the run).
///
/// # Errors
/// As [`in_a_directory`], or why no file can be made there.
pub(crate) fn to_be_written(flag: &str, path: &Path) -> Result<PathBuf, ArgError> {
    no_dash(flag, path)?;
    // A loop of links: refused as a source path through one is (recheck67 F4: exit 1 when
    // the file was opened, nothing tried).
    if std::fs::metadata(path).is_err_and(|e| e.raw_os_error() == Some(libc::ELOOP)) {
        return Err(ArgError::usage(format!(
            "{flag} {}: its symbolic links lead round in a loop; give a file",
            path.display()
        )));
    }
    let path = in_a_directory(flag, path)?;
    // Where copyman's own output goes: written over by it (ops54 F4: a job's records, or the
    // decisions of every run, replaced by the closing summary, without a word).
    let stdio = [
        ("stdout", crate::dest::is_stdout(&path)),
        ("stderr", crate::dest::is_stderr(&path)),
    ];
    if let Some((which, _)) = stdio.iter().find(|(_, is)| *is) {
        return Err(ArgError::usage(format!(
            "{flag} {}: that is the file copyman's {which} goes to: what copyman records there \
             would be written over; give another file",
            path.display()
        )));
    }
    if std::fs::symlink_metadata(&path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        let probe = dir.join(format!(".copyman-{}.probe", std::process::id()));
        let made = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe);
        if let Err(e) = made {
            return Err(ArgError::usage(format!(
                "{flag} {}: no file can be made in {}: {e}",
                path.display(),
                dir.display()
            )));
        }
        let _ = std::fs::remove_file(&probe);
    }
    Ok(path)
}

/// Refuses `-` given to `flag`, a file copyman records to: everywhere else `-` is stdin or
/// stdout, and a file of that name was made where nobody would look for it (recheck67 F14).
fn no_dash(flag: &str, path: &Path) -> Result<(), ArgError> {
    match path.as_os_str() == "-" {
        true => Err(ArgError::usage(format!(
            "{flag} -: copyman records to a file there, not to stdout: give its path (./- for a \
             file named -)"
        ))),
        false => Ok(()),
    }
}

/// A decision log given that exists: a regular file this user may append to — as the run
/// opens it, asked before anything is done, so that a dry run refuses what the run would
/// (ops54 F1: a directory, `/dev/null`, passed the dry run, exit 0, and failed the run).
fn appendable(path: &Path, given: bool) -> Result<(), ArgError> {
    let refused = |why: String| {
        ArgError::usage(format!(
            "{}: {why}: give a file, where the decisions last",
            log_named(path, given)
        ))
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(refused("a directory".to_owned())),
        Ok(meta) if !meta.is_file() => {
            Err(refused("not a regular file (a device, a FIFO)".to_owned()))
        }
        Ok(_) => std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| refused(e.to_string())),
        Err(_) => Ok(()),
    }
}

/// The decision log a run writes: as given ([`decision_log`]), one it can write.
pub(crate) fn decision_log_to_write(
    given: Option<PathBuf>,
    env: &Env,
) -> Result<PathBuf, ArgError> {
    if let Some(path) = &given {
        to_be_written("--decision-log", path)?;
    }
    let named = given.is_some();
    let path = decision_log(given, env)?;
    appendable(&path, named)?;
    // In memory, it is gone at the reboot after a crash of this host, when a recovery needs it
    // most (commit68 F3: taken on /dev/shm without a word).
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(kind) = crate::dest::held_in_memory(dir.unwrap_or(Path::new("."))) {
        crate::report::warn(format_args!(
            "{} is on a {kind} file system, held in memory: its decisions are gone at a reboot \
             of this host — after a crash, when copyman recover needs them; give a file on a disk",
            log_named(&path, named)
        ));
    }
    Ok(path)
}

/// How the words name the decision log at `path`: as the `--decision-log` given, or as the
/// default one (recheck67 F12: a file there that was no log was refused only when given).
fn log_named(path: &Path, given: bool) -> String {
    if given {
        format!("--decision-log {}", path.display())
    } else {
        format!(
            "the decision log {} (the default, --decision-log not given)",
            path.display()
        )
    }
}

/// Refuses a decision log at `path` that is some other file: a job's state file, or a file
/// that holds no decision log's records.
fn is_a_log(path: &Path, given: bool) -> Result<(), ArgError> {
    // A job's state file is no decision log: decisions appended to it would be read by
    // neither (the reverse is refused as a state file that is not one).
    if copyman_job::state::found(path) == copyman_job::state::Found::StateFile {
        return Err(ArgError::usage(format!(
            "{}: that is a job's state file, not a decision log",
            log_named(path, given)
        )));
    }
    // Another file (a CSV, the run's own --from): a run cut its last row and appended its
    // records to it, exit 0 (files67 F18).
    if let Some(why) = copyman_job::commit::not_a_log(path) {
        return Err(ArgError::usage(format!(
            "{} is not a copyman decision log ({why}): a run appends its records to one, and \
             recover finds none in it; give the decision log's path, or a new file's",
            log_named(path, given)
        )));
    }
    Ok(())
}

/// The decision log: as given, else under the user's state directory.
pub(crate) fn decision_log(given: Option<PathBuf>, env: &Env) -> Result<PathBuf, ArgError> {
    if let Some(path) = given {
        no_dash("--decision-log", &path)?;
        is_a_log(&path, true)?;
        let path = in_a_directory("--decision-log", &path)?;
        crate::recover::log_given(&path);
        return Ok(path);
    }
    let state = env
        .xdg_dir("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| env.home().map(|h| PathBuf::from(h).join(".local/state")))
        .ok_or_else(|| {
            ArgError::usage("--decision-log is needed: neither XDG_STATE_HOME nor HOME is set")
        })?;
    let dir = state.join("copyman");
    // (Made when a run first writes there: a file in its place was a bare "File exists".)
    if dir.exists() && !dir.is_dir() {
        return Err(ArgError::usage(format!(
            "{} is not a directory: the default decision log cannot be kept there; give \
             --decision-log",
            dir.display()
        )));
    }
    let path = dir.join("decisions.log");
    is_a_log(&path, false)?;
    Ok(path)
}

/// Refuses ends that read the data as something else than it was written: every `--receive`
/// must have the `--send`'s format and options (`FORMAT`, `DELIMITER`, `NULL`, `QUOTE`,
/// `ESCAPE`, `ENCODING`), or, from a file, each other's. The rule and its words are core's
/// ([`start::check_representations`], which a copy's start applies again with each session's
/// `client_encoding` for an ENCODING left out); here it is applied before connecting.
fn same_representation(send: Option<&str>, receive: &[Option<String>]) -> Result<(), ArgError> {
    // Options copyman cannot read (a dollar-quoted or U& value or name) cannot be compared: a
    // NULL or QUOTE of its own went through unseen ('' and NULL swapped).
    // (A FORMAT the server does not know: said as that, the server's refusal.)
    let unreadable = |what: &str, sql: &str| match statement::unknown_format(sql) {
        Some(format) => ArgError::usage(format!(
            "{what}: FORMAT {format} is not a COPY format: text, csv or binary"
        )),
        None => ArgError::usage(format!(
            "{what}: copyman cannot read its options (a dollar-quoted or U& value or name, or \
             an E'…' escape beyond ASCII: \\xe9, \\u00e9), so it cannot tell that both ends read \
             the data alike: write each option's name unquoted and its value as a plain \
             'string', its characters as they are"
        )),
    };
    if let Some(sql) = send
        && statement::representation(sql).is_none()
    {
        return Err(unreadable("--send", sql));
    }
    for (i, sql) in receive.iter().enumerate() {
        if let Some(sql) = sql
            && statement::representation(sql).is_none()
        {
            return Err(unreadable(
                &format!("the --receive of destination {}", i + 1),
                sql,
            ));
        }
    }
    // Options the server refuses together (FORCE_QUOTE in text, HEADER MATCH in a COPY TO, a
    // two-byte DELIMITER): said now, and by a dry run, rather than by the server at the start.
    let refused = send
        .and_then(|sql| statement::refused_options(sql, Direction::ToStdout))
        .map(|refusal| ("--send".to_owned(), refusal))
        .or_else(|| {
            receive.iter().enumerate().find_map(|(i, sql)| {
                let refusal = statement::refused_options(sql.as_deref()?, Direction::FromStdin)?;
                Some((format!("the --receive of destination {}", i + 1), refusal))
            })
        });
    if let Some((what, refusal)) = refused {
        return Err(ArgError::usage(format!(
            "{what}: the server refuses its options: {refusal}"
        )));
    }
    let send = send.and_then(statement::representation);
    // In text a value whose field is the NULL string is read back as NULL by a destination
    // server: the string 'NULL' under NULL 'NULL', every empty string under NULL '', a tab
    // under NULL E'\\t' (a file is written as asked: it is for another reader).
    // (Core's rule, start::NullMisread, which a copy's start applies again; said here in the
    // command's words, before connecting.)
    let misread = send.as_ref().and_then(start::NullMisread::of);
    if let Some(rep) = send
        .as_ref()
        .filter(|_| misread.as_ref().is_some_and(|m| !m.marker))
        && receive.iter().any(Option::is_some)
    {
        return Err(ArgError::usage(format!(
            "--send writes FORMAT text with NULL '{}': in text a value is written as that string \
             (its characters and the escapes COPY writes), and a destination reads it back as \
             NULL, so such values would arrive as NULLs; leave NULL at its default (\\N), give \
             one with a backslash before a character COPY never escapes (E'\\\\Z'), or use \
             FORMAT csv, which quotes such a value",
            rep.null.replace('\'', "''")
        )));
    }
    // A NULL string that is the end-of-data marker: a row that ends in a NULL (a one-column
    // row in csv) is written as `\.`, where every reader, a destination server or psql, stops
    // (rows lost; the count mismatch blamed triggers and advised --allow-count-mismatch).
    if let Some(rep) = send.as_ref().filter(|_| misread.is_some_and(|m| m.marker)) {
        return Err(ArgError::usage(format!(
            "--send writes FORMAT {} with NULL '{}', the end-of-data marker: a row ending in a \
             NULL would be written as it, and every reader stops there (the rows after it would \
             be lost); give another NULL string",
            rep.format, rep.null
        )));
    }
    let receive: Vec<_> = receive
        .iter()
        .map(|sql| sql.as_deref().and_then(statement::representation))
        .collect();
    let name = |i: usize| format!("the --receive of destination {}", i + 1);
    let refused = start::check_representations(
        send.as_ref(),
        receive.iter().enumerate().map(|(i, rep)| (i, rep.as_ref())),
        name,
        |against| against.map_or_else(|| "--send".to_owned(), name),
    );
    match refused.into_iter().next() {
        Some((_, mismatch)) => Err(ArgError::usage(mismatch.to_string())),
        None => Ok(()),
    }
}

/// `--encoding` says what the file and stdin endpoints are in; a statement that reads or writes
/// one of them naming another ENCODING overrides it there (the server converts to and from the
/// statement's): two answers to one question, refused rather than one silently taken (a file
/// written in UTF-8 under `--encoding LATIN1`; copy41 F13).
fn refuse_two_file_encodings(
    safety: &Safety,
    source: &Endpoint,
    destinations: &[Endpoint],
    send: Option<&str>,
    receive: &[Option<String>],
) -> Result<(), ArgError> {
    let Some(given) = &safety.encoding else {
        return Ok(());
    };
    let name = statement::encoding_name(given);
    let other = |sql: &str| {
        statement::representation(sql)
            .and_then(|rep| rep.encoding)
            .filter(|encoding| *encoding != name)
    };
    // The --send writes the file destinations; each --receive reads a file source.
    let send = send
        .filter(|_| destinations.iter().any(|d| !d.is_server()))
        .and_then(|sql| Some(("the --send".to_owned(), other(sql)?)));
    let receive = || {
        let read = if source.is_server() { &[] } else { receive };
        read.iter().enumerate().find_map(|(i, sql)| {
            Some((
                format!("the --receive of destination {}", i + 1),
                other(sql.as_deref()?)?,
            ))
        })
    };
    match send.or_else(receive) {
        Some((what, encoding)) => Err(ArgError::usage(format!(
            "--encoding {given} says the file and stdin endpoints are in {name}, but {what} \
             names ENCODING '{encoding}', which overrides it there: give one of the two"
        ))),
        None => Ok(()),
    }
}

/// The ports of the server sockets (`.s.PGSQL.PORT`) a directory `path` holds, sorted; none
/// where it is no directory or cannot be read.
fn socket_ports(path: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    let mut ports: Vec<String> = entries
        .flatten()
        .filter(|e| {
            e.file_type()
                .is_ok_and(|t| std::os::unix::fs::FileTypeExt::is_socket(&t))
        })
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some(name.strip_prefix(".s.PGSQL.")?.to_owned())
        })
        .collect();
    ports.sort();
    ports
}

/// Gives each destination its `--receive`: the one right after its `--to`, or the single one
/// given for all.
fn pair_receives(
    low: &LowCopy,
    destinations: &[Endpoint],
) -> Result<Vec<Option<String>>, ArgError> {
    let servers = destinations.iter().filter(|d| d.is_server()).count();
    if servers == 0 {
        if low.receive.is_empty() {
            return Ok(vec![None; destinations.len()]);
        }
        return Err(ArgError::usage(
            "--receive is for server destinations; files are written as they are",
        ));
    }
    if low.receive.len() == 1 {
        let statement = &low.receive[0];
        return Ok(destinations
            .iter()
            .map(|d| d.is_server().then(|| statement.clone()))
            .collect());
    }
    let Positions { to, receive } = &low.positions;
    let mut paired: Vec<Option<String>> = vec![None; destinations.len()];
    for (statement, at) in low.receive.iter().zip(receive) {
        // The --to this --receive follows.
        let Some(owner) = to.iter().rposition(|t| t < at) else {
            return Err(ArgError::usage(
                "--receive must follow the --to it belongs to",
            ));
        };
        if paired[owner].is_some() {
            return Err(ArgError::usage(format!(
                "two --receive statements follow --to {}",
                destinations[owner].display()
            )));
        }
        if !destinations[owner].is_server() {
            return Err(ArgError::usage(format!(
                "--receive follows --to {}, which is a file: files are written as they are",
                destinations[owner].display()
            )));
        }
        paired[owner] = Some(statement.clone());
    }
    for (destination, statement) in destinations.iter().zip(&paired) {
        if destination.is_server() && statement.is_none() {
            return Err(ArgError::usage(format!(
                "--to {} has no --receive 'COPY … FROM STDIN' (give one after each server \
                 --to, or a single one for all)",
                destination.display()
            )));
        }
    }
    Ok(paired)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::from_pairs(&[("USER", "tester"), ("PGPASSFILE", "/nonexistent/pgpass")])
    }

    fn hi(args: &[&str]) -> Result<HiArgs, ArgError> {
        let low = LowArgs::parse_from_args(std::iter::once("copyman").chain(args.iter().copied()))
            .map_err(|e| ArgError::usage(e.to_string()))?;
        HiArgs::from_low(low, &env())
    }

    fn transfer(args: &[&str]) -> Transfer {
        match hi(args).unwrap().command {
            Command::Transfer(t) => *t,
            _ => panic!("not a transfer"),
        }
    }

    fn usage(args: &[&str]) -> String {
        let err = hi(args).unwrap_err();
        assert_eq!(err.exit, Exit::Usage, "{err}");
        err.message
    }

    #[test]
    fn clap_definition_is_consistent() {
        LowArgs::command().debug_assert();
    }

    #[test]
    fn table_defaults() {
        let t = transfer(&[
            "table",
            "App.Items",
            "--from",
            "host=a",
            "--to",
            "host=b",
            "--to",
            "out.csv",
        ]);
        assert!(t.source.is_server());
        assert_eq!(t.destinations.len(), 2);
        let Statements::Table {
            copy,
            truncate,
            format,
            ..
        } = t.statements
        else {
            panic!("table statements")
        };
        assert_eq!(copy.table.to_string(), r#""app"."items""#);
        assert!(!truncate);
        // A .csv file among the endpoints makes CSV the default.
        assert_eq!(format, Some(Format::Csv));
        // But a file source is read in its own format, whatever a destination is named (a text
        // file beside a `backup.csv` was sent as CSV: its NULLs stored as the string \N).
        for from in ["in.txt", "-"] {
            let t = transfer(&[
                "table",
                "t",
                "--from",
                from,
                "--to",
                "host=b",
                "--to",
                "backup.csv",
            ]);
            let Statements::Table { format, .. } = t.statements else {
                panic!("table statements")
            };
            assert_eq!(format, None, "{from}");
        }
        let t = transfer(&[
            "table", "t", "--from", "host=a", "--to", "host=b", "--header",
        ]);
        assert!(matches!(
            t.statements,
            Statements::Table {
                format: Some(Format::Csv),
                ..
            }
        ));
        let t = transfer(&["table", "t", "--from", "host=a", "--to", "host=b"]);
        assert!(matches!(
            t.statements,
            Statements::Table { format: None, .. }
        ));
        // Flags that conflict, on either side of the subcommand (cli43 F1).
        for args in [
            &[
                "-v", "table", "t", "--from", "host=a", "--to", "host=b", "-q",
            ][..],
            &[
                "-q",
                "table",
                "t",
                "--from",
                "host=a",
                "--to",
                "host=b",
                "--progress",
            ],
        ] {
            let err = hi(args).expect_err("refused");
            assert!(
                err.message.contains("'--quiet' cannot be used with"),
                "{}",
                err.message
            );
        }
        // The demo takes no password (docs43 F3).
        let err = hi(&["demo", "-W"]).expect_err("refused");
        assert!(
            err.message.contains("the demo's own clusters take none"),
            "{}",
            err.message
        );
        // Any case, as PostgreSQL reads FORMAT (CSV was refused: cli43 F2).
        let t = transfer(&[
            "table", "t", "--from", "host=a", "--to", "host=b", "--format", "CSV",
        ]);
        assert!(matches!(
            t.statements,
            Statements::Table {
                format: Some(Format::Csv),
                ..
            }
        ));
    }

    #[test]
    fn copy_ends_that_read_the_data_otherwise_are_refused() {
        let copy = |send: &str, receives: &[&str]| {
            let mut args = vec!["copy", "--from", "host=a", "--send", send];
            for (i, r) in receives.iter().enumerate() {
                args.extend(["--to", ["host=b", "host=c"][i], "--receive", r]);
            }
            hi(&args)
        };
        let err = copy("COPY t TO STDOUT", &["COPY t FROM STDIN (FORMAT csv)"]).unwrap_err();
        assert_eq!(err.exit, Exit::Usage);
        assert!(
            err.message.contains("destination 1 reads FORMAT csv")
                && err.message.contains("--send writes FORMAT text"),
            "{}",
            err.message
        );
        let err = copy(
            "COPY t TO STDOUT (FORMAT csv)",
            &[
                "COPY t FROM STDIN CSV",
                "COPY t FROM STDIN CSV NULL AS '\\N'",
            ],
        )
        .unwrap_err();
        assert!(err.message.contains("destination 2"), "{}", err.message);
        // The same representation, spelled otherwise.
        assert!(
            copy(
                "copy t to stdout with csv",
                &["COPY u FROM STDIN (FORMAT 'csv')"]
            )
            .is_ok()
        );
        // From a file, the destinations must agree with each other.
        let err = hi(&[
            "copy",
            "--from",
            "./in.txt",
            "--to",
            "host=b",
            "--receive",
            "COPY t FROM STDIN",
            "--to",
            "host=c",
            "--receive",
            "COPY t FROM STDIN (FORMAT csv)",
        ])
        .unwrap_err();
        assert!(
            err.message.contains(
                "the --receive of destination 2 reads FORMAT csv, but the --receive of \
                 destination 1 reads FORMAT text"
            ),
            "{}",
            err.message
        );
    }

    /// A `--receive` that filters rows stores fewer than the source sends: refused before
    /// anything unless the count may differ (it failed on the count after the whole copy,
    /// types43 F11).
    #[test]
    fn a_receive_that_filters_rows_needs_allow_count_mismatch() {
        let copy = |extra: &[&str]| {
            let mut args = vec![
                "copy",
                "--from",
                "host=a",
                "--send",
                "COPY t TO STDOUT",
                "--to",
                "host=b",
                "--receive",
                "COPY t FROM STDIN",
                "--to",
                "host=c",
                "--receive",
                "COPY t FROM STDIN WHERE note IS NULL AND x > 0",
            ];
            args.extend(extra);
            hi(&args)
        };
        let err = copy(&[]).unwrap_err();
        assert!(
            err.message.contains(
                "the --receive of destination 2 filters rows with WHERE: its destination stores \
                 fewer rows"
            ) && err.message.contains("give --allow-count-mismatch"),
            "{}",
            err.message
        );
        assert!(copy(&["--allow-count-mismatch"]).is_ok());
        // A move into it: what the WHERE leaves out would be stored nowhere (copy44 F8).
        let moving = [
            "copy",
            "--from",
            "host=a",
            "--send",
            "COPY (DELETE FROM t WHERE id <= 100 RETURNING *) TO STDOUT",
            "--to",
            "host=b",
            "--receive",
            "COPY t FROM STDIN WHERE id % 2 = 0",
            "--allow-count-mismatch",
        ];
        let err = hi(&moving).unwrap_err();
        assert!(
            err.message.contains("stored nowhere; filter in the --send"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_file_name_with_control_characters_is_shown_quoted() {
        let file = Endpoint::File(PathBuf::from("./x.csv\n  failed   db"));
        assert_eq!(file.display(), "\"./x.csv\\n  failed   db\"");
        let plain = Endpoint::File(PathBuf::from("./x y.csv"));
        assert_eq!(plain.display(), "./x y.csv");
    }

    #[test]
    fn a_statement_left_out_before_an_option_is_said() {
        let err = hi(&[
            "copy",
            "--from",
            "host=a",
            "--send",
            "--dry-run",
            "--to",
            "host=b",
            "--receive",
            "COPY t FROM STDIN",
        ])
        .unwrap_err();
        assert!(
            err.message
                .contains("--send took --dry-run as its statement: give the COPY statement"),
            "{}",
            err.message
        );
    }

    #[test]
    fn statements_may_start_with_a_comment() {
        let parsed = hi(&[
            "copy",
            "--from",
            "host=a",
            "--send",
            "-- nightly\nCOPY t TO STDOUT",
            "--to",
            "host=b",
            "--receive",
            "-- load\nCOPY t FROM STDIN",
        ]);
        assert!(parsed.is_ok(), "{:?}", parsed.err().map(|e| e.message));
    }

    #[test]
    fn copy_ends_that_read_the_data_alike_are_not_refused() {
        let copy = |send: &str, receive: &str| {
            hi(&[
                "copy",
                "--from",
                "host=a",
                "--send",
                send,
                "--to",
                "host=b",
                "--receive",
                receive,
            ])
        };
        for (send, receive) in [
            (
                "COPY t TO STDOUT (ENCODING 'latin1')",
                "COPY t FROM STDIN (ENCODING 'LATIN1')",
            ),
            // Aliases of one encoding, and an ENCODING against none (the session's
            // client_encoding, which the copy's start compares once connected).
            (
                "COPY t TO STDOUT (ENCODING 'latin1')",
                "COPY t FROM STDIN (ENCODING 'ISO-8859-1')",
            ),
            (
                "COPY t TO STDOUT (ENCODING 'unicode')",
                "COPY t FROM STDIN (ENCODING 'UTF8')",
            ),
            ("COPY t TO STDOUT", "COPY t FROM STDIN (ENCODING 'UTF8')"),
            (
                "COPY t TO STDOUT (DELIMITER E'\\t')",
                "COPY t FROM STDIN (DELIMITER '\t')",
            ),
            (
                "COPY t TO STDOUT (FORMAT csv, DELIMITER ',')",
                "COPY t FROM STDIN (FORMAT csv)",
            ),
        ] {
            assert!(copy(send, receive).is_ok(), "{send} / {receive}");
        }
        let err = copy(
            "COPY t TO STDOUT (ENCODING 'latin1')",
            "COPY t FROM STDIN (ENCODING 'UTF8')",
        )
        .unwrap_err();
        assert!(
            err.message
                .contains("reads FORMAT text, ENCODING 'UTF8', but --send writes"),
            "{}",
            err.message
        );
        let err = copy(
            "COPY t TO STDOUT (FORMAT csv, DELIMITER E'\\t')",
            "COPY t FROM STDIN (FORMAT csv) WHERE a IS NULL",
        )
        .unwrap_err();
        assert!(
            err.message
                .contains("reads FORMAT csv, but --send writes FORMAT csv, DELIMITER E'\\t'"),
            "{}",
            err.message
        );
    }

    #[test]
    fn compressed_file_names_are_refused_as_destinations() {
        let said = usage(&[
            "table",
            "t",
            "--from",
            "host=a",
            "--to",
            "/tmp/my out.csv.GZ",
        ]);
        assert!(
            said.ends_with("--to - --format csv | gzip > '/tmp/my out.csv.GZ'"),
            "{said}"
        );
        assert!(said.contains("the name says gzip-compressed"), "{said}");
        // File to file, a column list would be ignored (three columns written for `--columns a`).
        let said = usage(&[
            "table",
            "t",
            "--from",
            "a.csv",
            "--to",
            "b.csv",
            "--columns",
            "a",
        ]);
        assert!(
            said.contains("--columns names columns on a server"),
            "{said}"
        );
        let said = usage(&["copy", "--from", "a.csv", "--to", "b.zst", "--to", "host=b"]);
        assert!(said.ends_with("| zstd > b.zst"), "{said}");
        let said = usage(&["table", "t", "--from", "host=a", "--to", "./t.zip"]);
        assert!(said.ends_with("| zip -q - - > ./t.zip"), "{said}");
        // A compressed name is refused as a destination only: a source is told by its bytes.
        assert!(hi(&["table", "t", "--from", "in.csv.gz", "--to", "host=b"]).is_ok());
        assert!(hi(&["table", "t", "--from", "host=a", "--to", "out.gzipped"]).is_ok());
        // The tools' own names are compressed names too (files39 F9).
        let said = usage(&["table", "t", "--from", "host=a", "--to", "out.gzip"]);
        assert!(said.ends_with("| gzip > out.gzip"), "{said}");
    }

    #[test]
    fn table_refusals() {
        assert!(usage(&["table", "a.b.c", "--from", "host=a", "--to", "host=b"]).contains("TABLE"));
        // psql's `\copy t(a, b)` form points to --columns.
        let said = usage(&["table", "t(a,b)", "--from", "host=a", "--to", "host=b"]);
        assert!(
            said.contains("TABLE: ") && said.contains("t --columns a,b"),
            "{said}"
        );
        assert!(
            usage(&[
                "table",
                "t",
                "--from",
                "host=a",
                "--to",
                "host=b",
                "--columns",
                "a,,b"
            ])
            .contains("--columns")
        );
        assert!(
            usage(&[
                "table", "t", "--from", "in.csv", "--to", "host=b", "--where", "a>1"
            ])
            .contains("--where")
        );
        assert!(
            usage(&[
                "table",
                "t",
                "--from",
                "host=a",
                "--to",
                "host=b",
                "--where",
                "1=1); DROP TABLE t; --"
            ])
            .contains("--where")
        );
        assert!(
            usage(&[
                "table",
                "t",
                "--from",
                "host=a",
                "--to",
                "out.txt",
                "--truncate"
            ])
            .contains("--truncate")
        );
        assert!(
            usage(&[
                "table",
                "t",
                "--from",
                "host=a",
                "--to",
                "out.txt",
                "--target-table",
                "u"
            ])
            .contains("--target-table")
        );
        assert!(
            usage(&[
                "table", "t", "--from", "host=a", "--to", "host=b", "--header", "--format",
                "binary"
            ])
            .contains("--header")
        );
        assert!(
            usage(&["table", "t", "--from", "host=a", "--to", "-", "--json"]).contains("--json")
        );
        assert!(
            usage(&["table", "t", "--from", "host=a", "--to", "-", "--to", "-"]).contains("once")
        );
        // clap's own checks.
        assert!(hi(&["table", "t", "--from", "host=a"]).is_err());
        assert!(
            hi(&[
                "table", "t", "--from", "host=a", "--to", "host=b", "--format", "xml"
            ])
            .is_err()
        );
        assert!(
            hi(&[
                "table",
                "--quiet",
                "--verbose",
                "t",
                "--from",
                "host=a",
                "--to",
                "host=b"
            ])
            .is_err()
        );
    }

    #[test]
    fn connection_strings_are_checked() {
        assert!(
            usage(&[
                "table",
                "t",
                "--from",
                "host=a nonsense=1",
                "--to",
                "host=b"
            ])
            .contains("--from")
        );
        let err = hi(&[
            "table",
            "t",
            "--from",
            "host=a sslmode=requires password=hush",
            "--to",
            "host=b",
        ])
        .unwrap_err();
        assert_eq!(err.exit, Exit::Usage);
        assert!(err.message.contains("invalid sslmode"), "{err}");
        assert!(!err.message.contains("hush"), "{err}");
    }

    #[test]
    fn receives_pair_with_their_destinations() {
        let t = transfer(&[
            "copy",
            "--from",
            "host=a",
            "--send",
            "COPY t TO STDOUT",
            "--to",
            "host=b",
            "--receive",
            "COPY b FROM STDIN",
            "--to",
            "out.txt",
            "--to",
            "host=c",
            "--receive",
            "COPY c FROM STDIN",
        ]);
        let Statements::Raw { send, receive } = t.statements else {
            panic!("raw")
        };
        assert_eq!(send.as_deref(), Some("COPY t TO STDOUT"));
        assert_eq!(
            receive,
            [
                Some("COPY b FROM STDIN".to_owned()),
                None,
                Some("COPY c FROM STDIN".to_owned())
            ]
        );
        // One --receive serves every server destination.
        let t = transfer(&[
            "copy",
            "--from",
            "-",
            "--to",
            "host=b",
            "--to",
            "host=c",
            "--to",
            "out.txt",
            "--receive",
            "COPY x FROM STDIN",
        ]);
        let Statements::Raw { send, receive } = t.statements else {
            panic!("raw")
        };
        assert_eq!(send, None);
        assert_eq!(receive.iter().filter(|r| r.is_some()).count(), 2);
        assert!(receive[2].is_none());
    }

    #[test]
    fn copy_refusals() {
        assert!(
            usage(&[
                "copy",
                "--from",
                "host=a",
                "--to",
                "host=b",
                "--receive",
                "R"
            ])
            .contains("--send")
        );
        assert!(
            usage(&[
                "copy",
                "--from",
                "in.txt",
                "--send",
                "S",
                "--to",
                "host=b",
                "--receive",
                "R"
            ])
            .contains("--send")
        );
        assert!(
            usage(&[
                "copy",
                "--from",
                "host=a",
                "--send",
                "S",
                "--to",
                "host=b",
                "--to",
                "host=c",
                "--receive",
                "R1",
                "--receive",
                "R2"
            ])
            .contains("two --receive")
        );
        assert!(
            usage(&[
                "copy",
                "--from",
                "host=a",
                "--send",
                "S",
                "--to",
                "host=b",
                "--receive",
                "R1",
                "--to",
                "host=c",
                "--to",
                "host=d",
                "--receive",
                "R2"
            ])
            .contains("no --receive")
        );
        assert!(
            usage(&[
                "copy",
                "--from",
                "host=a",
                "--send",
                "S",
                "--to",
                "-",
                "--receive",
                "R"
            ])
            .contains("files")
        );
        assert!(
            usage(&["copy", "--from", "host=a", "--send", "S", "--to", "host=b"])
                .contains("no --receive")
        );
    }

    #[test]
    fn target_table_and_dry_run() {
        let t = transfer(&[
            "table",
            "items",
            "--from",
            "host=a",
            "--to",
            "host=b",
            "--target-table",
            r#"Archive."Items 2024""#,
            "--dry-run",
        ]);
        assert!(t.dry_run);
        let Statements::Table { copy, .. } = t.statements else {
            panic!("table statements")
        };
        assert_eq!(copy.table.to_string(), r#""items""#);
        assert_eq!(copy.target().to_string(), r#""archive"."Items 2024""#);
        assert!(
            usage(&[
                "table",
                "t",
                "--from",
                "host=a",
                "--to",
                "host=b",
                "--target-table",
                "a.b.c"
            ])
            .contains("--target-table")
        );
        let t = transfer(&["table", "t", "--from", "host=a", "--to", "host=b"]);
        assert!(!t.dry_run);
    }

    #[test]
    fn copy_statements_are_checked_before_connecting() {
        let copy = |send: &str, receive: &str| {
            usage(&[
                "copy",
                "--from",
                "host=a",
                "--send",
                send,
                "--to",
                "host=b",
                "--receive",
                receive,
            ])
        };
        assert!(
            copy("SELECT 1", "COPY t FROM STDIN").contains("--send: the statement is not a COPY")
        );
        // A pattern where a name is: pointed to --table (ux70 F5); a quoted `*` is a name's.
        assert!(table_pattern_tip("sales.*").is_some() && table_pattern_tip("log_202?").is_some());
        assert!(table_pattern_tip("\"a*b\"").is_none() && table_pattern_tip("t").is_none());
        // A query alone: its COPY said (ux70 F5).
        assert!(copy("SELECT 1;", "COPY t FROM STDIN").contains("COPY (SELECT 1) TO STDOUT"));
        assert!(!copy("DELETE FROM t", "COPY t FROM STDIN").contains("a query's rows"));
        assert!(
            copy("COPY t TO STDOUT", "COPY t TO STDOUT")
                .contains("--receive: expected a COPY FROM STDIN")
        );
        assert!(
            copy("COPY t TO STDOUT", "COPY t FROM STDIN; COPY u FROM STDIN")
                .contains("--receive: expected a single")
        );
        assert!(copy("COPY t TO '/tmp/x'", "COPY t FROM STDIN").contains("a file or program"));
    }

    #[test]
    fn durations_and_safety_flags() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2min"), Ok(Duration::from_secs(120)));
        assert!(
            parse_duration("0")
                .unwrap_err()
                .contains("leave the option out")
        );
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("soon").is_err());
        let t = transfer(&[
            "table",
            "t",
            "--from",
            "in.txt",
            "--to",
            "host=b",
            "--lock-timeout",
            "250ms",
            "--stall-timeout",
            "1min",
            "--encoding",
            "LATIN1",
            "--allow-count-mismatch",
        ]);
        assert_eq!(t.safety.lock_timeout, Some(Duration::from_millis(250)));
        assert_eq!(t.safety.stall_timeout, Some(Duration::from_secs(60)));
        assert_eq!(t.safety.encoding.as_deref(), Some("LATIN1"));
        assert!(t.safety.allow_count_mismatch);
        assert!(
            usage(&[
                "table",
                "t",
                "--from",
                "in.txt",
                "--to",
                "host=b",
                "--encoding",
                "x'; DROP"
            ])
            .contains("--encoding")
        );
        assert!(
            usage(&[
                "table",
                "t",
                "--from",
                "host=a",
                "--to",
                "host=b",
                "--encoding",
                "LATIN1"
            ])
            .contains("file and stdin")
        );
        assert!(
            hi(&[
                "table",
                "t",
                "--from",
                "host=a",
                "--to",
                "host=b",
                "--progress"
            ])
            .is_ok()
        );
        assert!(
            hi(&[
                "table",
                "t",
                "--from",
                "host=a",
                "--to",
                "host=b",
                "--progress",
                "--quiet"
            ])
            .is_err()
        );
    }

    #[test]
    fn demo_bounds() {
        assert!(matches!(
            hi(&["demo"]).unwrap().command,
            Command::Demo {
                rows: 1_000_000,
                destinations: 3
            }
        ));
        assert!(usage(&["demo", "--rows", "0"]).contains("--rows"));
        assert!(usage(&["demo", "--destinations", "0"]).contains("--destinations"));
    }

    #[test]
    fn password_flag_parses_anywhere() {
        for args in [
            &[
                "copyman", "-W", "table", "t", "--from", "a.csv", "--to", "-",
            ][..],
            &[
                "copyman",
                "table",
                "t",
                "--password",
                "--from",
                "a.csv",
                "--to",
                "-",
            ],
            &["copyman", "copy", "--from", "a.csv", "--to", "-", "-W"],
        ] {
            let low = LowArgs::parse_from_args(args).unwrap();
            assert!(low.password, "{args:?}");
        }
        let low = LowArgs::parse_from_args(["copyman", "table", "t", "--from", "a", "--to", "-"]);
        assert!(!low.unwrap().password);
    }

    /// A `--state` or `--decision-log` in a directory that does not exist is refused, not
    /// created (a typo left a job's records where nobody would look); one that exists, or a
    /// bare file name, is taken.
    #[test]
    fn a_given_path_in_a_missing_directory_is_refused() {
        let missing = Path::new("/nonexistent-copyman-dir/x.state");
        let error = in_a_directory("--state", missing).unwrap_err();
        assert!(
            error
                .message
                .contains("no directory /nonexistent-copyman-dir"),
            "{error}"
        );
        assert!(in_a_directory("--state", Path::new("/tmp/x.state")).is_ok());
        assert!(in_a_directory("--decision-log", Path::new("d.log")).is_ok());
    }

    /// `-` as a file copyman records to is refused, not made a file of that name; so is a loop
    /// of symbolic links (recheck67 F14, F4: exit 1 once it was opened).
    #[test]
    fn a_dash_or_a_loop_of_links_is_no_file_to_record_to() {
        let dash = to_be_written("--state", Path::new("-")).unwrap_err();
        assert!(dash.message.contains("./- for a file named -"), "{dash}");
        let env = Env::default();
        let dash = decision_log(Some(PathBuf::from("-")), &env).unwrap_err();
        assert!(dash.message.starts_with("--decision-log -:"), "{dash}");
        let dir = std::env::temp_dir().join(format!("copyman-loop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a"), dir.join("b"));
        let _ = (std::fs::remove_file(&a), std::fs::remove_file(&b));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let looped = to_be_written("--state", &a).unwrap_err();
        assert!(looped.message.contains("lead round in a loop"), "{looped}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// psql's `-h HOST` among a command's arguments is refused (exit 2), not taken for the help
    /// (exit 0, nothing copied, even under `--json`); `-h` alone is the help.
    #[test]
    fn a_host_given_as_psql_does_is_refused_not_the_help() {
        let parse = |args: &[&str]| LowArgs::parse_from_args(args).err().expect("no run");
        let run = [
            "copyman", "table", "t", "-h", "db1", "--from", "a", "--to", "-",
        ];
        let refused = parse(&run);
        assert!(refused.use_stderr(), "{refused}");
        assert!(
            refused.to_string().contains("not a host as psql's"),
            "{refused}"
        );
        for help in [&["copyman", "-h"][..], &["copyman", "table", "-h"]] {
            assert_eq!(parse(help).kind(), clap::error::ErrorKind::DisplayHelp);
        }
        let long = parse(&["copyman", "table", "t", "--help", "--from", "a"]);
        assert_eq!(long.kind(), clap::error::ErrorKind::DisplayHelp);
    }

    #[test]
    fn bare_copyman_shows_the_help_as_help_shows_it() {
        // The tester's F8: the help bare `copyman` prints on stderr went through the password
        // mask, and its URL placeholder came out as `user:***@`, out of line.
        let line = "  postgresql://user:password@host:port/dbname?param=value   a URL\n";
        let error = |args: &[&str]| LowArgs::parse_from_args(args).err().expect("an error");
        let bare = error(&["copyman"]);
        assert!(bare.use_stderr());
        assert!(usage_text(&bare).contains(line), "{}", usage_text(&bare));
        let help = error(&["copyman", "--help"]);
        assert!(help.to_string().contains(line));
        // Any other error that goes to stderr is still masked: it may quote the command line.
        let quoted = error(&[
            "copyman",
            "copy",
            "--from",
            "postgresql://u:s3cret@h/db",
            "--bogus",
        ]);
        assert!(quoted.use_stderr());
        assert!(!usage_text(&quoted).contains("s3cret"));
    }
}
