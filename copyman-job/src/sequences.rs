//! Sequences carried forward. A copied `serial` or identity column brings rows whose values came
//! from the source's sequence; the destination's own sequence has not moved, so the next INSERT
//! there that takes its default would collide with a copied row. After the copy, inside each
//! destination's transaction and before its COMMIT, the sequence the column owns there is set to
//! where the source's stands (as pg_dump's `setval` and pgcopydb do), with two differences a copy
//! into live tables needs: it is **never moved back** (a destination ahead of the source keeps
//! its place), and a role that may not `UPDATE` it gets a warning, not a failed copy. Where the
//! source's cannot be read (a role granted `SELECT` on the tables only), the destination's is set
//! past the copied rows' highest value, said: never behind the rows an INSERT must not collide
//! with.
//!
//! `setval` is not transactional: a copy that rolls back afterwards leaves the sequence advanced
//! (a gap in the destination's numbering, never a collision). Only the sequences the copied
//! columns take their values from on both sides are carried (`pg_depend`: the one a column owns,
//! as `pg_get_serial_sequence` finds it, else its default's `nextval`, else a partition's
//! partitioned ancestor's identity: [`Column::sequence`](crate::sql::Column::sequence)); the
//! source's is read after its rows, so it stands at or beyond every copied value it produced.
//!
//! ```no_run
//! use copyman_job::sequences::{Carrier, Carry};
//! use copyman_sync::Connection;
//!
//! # fn carries() -> Vec<Carry> { Vec::new() }
//! let mut source = Connection::connect_str("host=src dbname=shop")?;
//! let mut dests = [
//!     Connection::connect_str("host=dst1 dbname=shop")?,
//!     Connection::connect_str("host=dst2 dbname=shop")?,
//! ];
//! let carries = carries(); // from `sequences::carried`, with the plan's catalogs
//! let mut carrier = Carrier::default(); // one per table: the source's read once
//! for dest in &mut dests {
//!     dest.execute("BEGIN")?; // … the copy into it …
//!     for said in carrier.carry(&mut source, dest, &carries)? {
//!         eprintln!("{said}");
//!     }
//! }
//! for dest in &mut dests {
//!     dest.execute("COMMIT")?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::fmt;

use copyman_sync::{Connection, Error};

use crate::sql::{Ident, Relation};

/// A copied column whose sequence is carried: its sequence's OID on the source and on one
/// destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carry {
    /// The column.
    pub column: Ident,
    /// The source's sequence.
    pub source: u32,
    /// The destination's sequence.
    pub destination: u32,
}

/// The copied columns that own a sequence on the source and on `destination`.
pub fn carried(columns: &[Ident], source: &Relation, destination: &Relation) -> Vec<Carry> {
    columns
        .iter()
        .filter_map(|name| {
            Some(Carry {
                column: name.clone(),
                source: source.column(name)?.sequence?,
                destination: destination.column(name)?.sequence?,
            })
        })
        .collect()
}

/// The copied columns that own a sequence on `destination` but not on the source (an `int` there,
/// a `serial` here): nothing says where the destination's should stand, so it is left where it
/// is, and an INSERT there that takes its default may collide with a copied row — said.
pub fn uncarried(columns: &[Ident], source: &Relation, destination: &Relation) -> Vec<Ident> {
    columns
        .iter()
        .filter(|name| {
            destination
                .column(name)
                .is_some_and(|c| c.sequence.is_some())
                && source.column(name).is_some_and(|c| c.sequence.is_none())
        })
        .cloned()
        .collect()
}

/// What the user is told of [`uncarried`] columns on `destination` (its label).
pub fn uncarried_warning(table: &str, destination: &str, columns: &[Ident]) -> Option<String> {
    let names: Vec<String> = columns.iter().map(ToString::to_string).collect();
    (!names.is_empty()).then(|| {
        format!(
            "{table} on {destination}: {} owns a sequence there but not on the source, which is \
             left where it stands: an INSERT there that takes its default may collide with a \
             copied row (setval it past the copied values)",
            names.join(", ")
        )
    })
}

/// Of the sequences `oids` (a destination's, carried: [`Carry::destination`]), those `conn`'s
/// role may not advance there, by name: it must read (`SELECT`) and set (`UPDATE`) them. Asked
/// while planning, in one question for every table of a job, so that the plan does not promise
/// to advance them (an application role's usual `GRANT USAGE ON ALL SEQUENCES` is neither).
/// Empty where that cannot be asked (the copy then says what it met).
pub fn unadvanceable(
    conn: &mut Connection,
    oids: impl IntoIterator<Item = u32>,
) -> HashMap<u32, String> {
    let oids: Vec<String> = oids.into_iter().map(|oid| oid.to_string()).collect();
    if oids.is_empty() {
        return HashMap::new();
    }
    let Ok(rows) = conn.query(&format!(
        "SELECT s.oid::text, s.oid::pg_catalog.regclass::text FROM \
           pg_catalog.unnest(ARRAY[{}]::pg_catalog.oid[]) AS s(oid) \
         WHERE NOT (pg_catalog.has_sequence_privilege(s.oid, 'SELECT') \
           AND pg_catalog.has_sequence_privilege(s.oid, 'UPDATE'))",
        oids.join(", ")
    )) else {
        return HashMap::new();
    };
    rows.iter()
        .filter_map(|row| Some((row.first()?.as_deref()?.parse().ok()?, row.get(1)?.clone()?)))
        .collect()
}

/// Of `carries` (tables' on one destination), the ones whose source sequence already stands
/// beyond the bounds of the destination's (an identity column narrower there: `smallint` where
/// the source's is `integer`): its `setval` would fail the copy (22003) after every row was sent,
/// every row fitting. Only those the copy would advance ([`step`]): one already ahead there (a
/// server's own id range, `START WITH 1000000 MINVALUE 1000000`) is left alone, and its bounds
/// are no matter (types66 F10: refused, with advice that could not help). Asked while
/// planning, in one question on each side (and where a destination sequence stands, of the few
/// beyond bounds), so that the dry run fails as the run would; by [`Carry::destination`], with
/// what the refusal says (the way out: widen the sequence there). Empty where that cannot be
/// asked (the copy then says what it met).
pub fn beyond_bounds<'c>(
    source: &mut Connection,
    destination: &mut Connection,
    carries: impl IntoIterator<Item = &'c Carry>,
) -> HashMap<u32, String> {
    let carries: Vec<&Carry> = carries.into_iter().collect();
    if carries.is_empty() || !has_sequence_catalog(source) || !has_sequence_catalog(destination) {
        return HashMap::new();
    }
    let oids = |oids: Vec<u32>| {
        let oids: Vec<String> = oids.iter().map(u32::to_string).collect();
        oids.join(", ")
    };
    // pg_sequences' reading: NULL where the role may not read it, or it was never called.
    let Ok(at) = source.query(&format!(
        "SELECT s.oid::text, CASE WHEN pg_catalog.has_sequence_privilege(s.oid, 'SELECT,USAGE') \
           THEN pg_catalog.pg_sequence_last_value(s.oid)::text END, q.seqincrement::text \
         FROM pg_catalog.unnest(ARRAY[{}]::pg_catalog.oid[]) AS s(oid) \
         JOIN pg_catalog.pg_sequence q ON q.seqrelid = s.oid",
        oids(carries.iter().map(|c| c.source).collect())
    )) else {
        return HashMap::new();
    };
    let Ok(bounds) = destination.query(&format!(
        "SELECT q.seqrelid::text, q.seqrelid::pg_catalog.regclass::text, q.seqmin::text, \
           q.seqmax::text, pg_catalog.format_type(q.seqtypid, NULL), q.seqincrement::text, \
           q.seqstart::text \
         FROM pg_catalog.pg_sequence q WHERE q.seqrelid = ANY (ARRAY[{}]::pg_catalog.oid[])",
        oids(carries.iter().map(|c| c.destination).collect())
    )) else {
        return HashMap::new();
    };
    let number = |row: &Vec<Option<String>>, i: usize| -> Option<i64> {
        row.get(i)?.as_deref()?.parse().ok()
    };
    // Where a destination sequence stands, asked only of one the source's position lies
    // beyond (reading it takes the sequence's lock, which a migration's ALTER SEQUENCE holds:
    // the plan waited there for every table). Unread: not advanced by the copy either
    // ([`Step::Unknown`]).
    let mut there = |oid: u32, start: Option<i64>| -> Position {
        let Ok(rows) = destination.query(&format!(
            "SELECT pg_catalog.has_sequence_privilege({oid}, 'SELECT,USAGE')::text, \
               CASE WHEN pg_catalog.has_sequence_privilege({oid}, 'SELECT,USAGE') \
                 THEN pg_catalog.pg_sequence_last_value({oid})::text END"
        )) else {
            return Position::Unreadable;
        };
        let row = rows.into_iter().next().unwrap_or_default();
        match (row.first().cloned().flatten().as_deref(), number(&row, 1)) {
            (Some("true"), Some(last)) => Position::At { last, called: true },
            (Some("true"), None) => start.map_or(Position::Unreadable, |last| Position::At {
                last,
                called: false,
            }),
            _ => Position::Unreadable,
        }
    };
    // Where each source sequence stands (called: a copy advances only to one that was), and
    // its increment.
    let at: HashMap<u32, (i64, i64)> = (at.iter())
        .filter_map(|row| {
            let oid = u32::try_from(number(row, 0)?).ok()?;
            Some((oid, (number(row, 1)?, number(row, 2)?)))
        })
        .collect();
    let mut beyond = HashMap::new();
    for row in &bounds {
        let (Some(oid), Some(name), Some(min), Some(max)) = (
            number(row, 0).and_then(|n| u32::try_from(n).ok()),
            row.get(1).cloned().flatten(),
            number(row, 2),
            number(row, 3),
        ) else {
            continue;
        };
        let ty = row.get(4).cloned().flatten().unwrap_or_default();
        let increment = number(row, 5).unwrap_or(1);
        for carry in carries.iter().filter(|c| c.destination == oid) {
            let Some(&(last, source_increment)) = at.get(&carry.source) else {
                continue;
            };
            if (min..=max).contains(&last) {
                continue;
            }
            let here = Position::At { last, called: true };
            let there = there(oid, number(row, 6));
            if !matches!(
                step(here, source_increment, there, increment, true),
                Step::Advance { .. }
            ) {
                continue;
            }
            beyond.insert(
                oid,
                format!(
                    "the source's sequence of column {} stands at {last}, beyond what its \
                     sequence {name} there can hold ({ty}, {min}..{max}): advancing it would \
                     fail the copy once every row was sent; widen it there (ALTER SEQUENCE \
                     {name} AS bigint, or its MINVALUE/MAXVALUE), with the column's type if \
                     the rows need it",
                    carry.column
                ),
            );
        }
    }
    beyond
}

/// Takes out of `carries` (one table's on a destination) those its role may not advance
/// (`denied`, [`unadvanceable`]), and says them: left where they stand, perhaps behind the
/// copied rows, with the grant that lets a copy advance them. `table` and `destination` name
/// them in the words.
pub fn unadvanceable_warning(
    table: &str,
    destination: &str,
    carries: &mut Vec<Carry>,
    denied: &HashMap<u32, String>,
) -> Option<String> {
    let (each, names): (Vec<String>, Vec<&str>) = (carries.iter())
        .filter_map(|c| {
            let sequence = denied.get(&c.destination)?;
            Some((
                format!("{sequence} (column {})", c.column),
                sequence.as_str(),
            ))
        })
        .unzip();
    carries.retain(|c| !denied.contains_key(&c.destination));
    (!each.is_empty()).then(|| {
        format!(
            "{table} on {destination}: the role there may not read and set {} (SELECT and \
             UPDATE on it), so it is not advanced to the source's and stays where it stands, \
             perhaps behind the copied rows: an INSERT there that takes its default may collide \
             with a copied row (GRANT SELECT, UPDATE ON SEQUENCE {} TO the role, or setval it \
             yourself once the copy committed)",
            each.join(", "),
            names.join(", ")
        )
    })
}

/// What the user is told of the copied `columns` that own a sequence on `destination` (its
/// label), loaded from a file: a file says nothing of where a sequence stood, so each is left
/// where it is (as psql's `\copy` leaves it), and an INSERT there that takes its default may
/// collide with a loaded row (an identity column's first INSERT after loading a file of its
/// ids failed, 23505) — said, with the statement that advances it.
pub fn from_file_warning(
    table: &str,
    destination: &str,
    columns: &[Ident],
    relation: &Relation,
) -> Option<String> {
    let owned: Vec<&Ident> = (columns.iter())
        .filter(|name| relation.column(name).is_some_and(|c| c.sequence.is_some()))
        .collect();
    let first = owned.first()?;
    let names: Vec<String> = owned.iter().map(ToString::to_string).collect();
    let literal = |text: &str| crate::sql::literal(text);
    // Forward only: a sequence that stands past every loaded value already is left there
    // (docs45 F2: the advice moved one at 1,000,000 back to the file's 300,000).
    Some(format!(
        "{table} on {destination}: {} owns a sequence there, which the file's values do not \
         advance (as with psql's \\copy): an INSERT there that takes its default may collide \
         with a loaded row where it stands below them; advance it past them: SELECT setval(s, \
         m) FROM (SELECT pg_get_serial_sequence({}, {})::regclass AS s, max({first}) AS m FROM \
         {table}) q WHERE m > coalesce(pg_sequence_last_value(s), 0)",
        names.join(", "),
        literal(table),
        literal(first.as_str()),
    ))
}

/// Where a sequence stands, as its server tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The role may not read it (`SELECT` on the sequence).
    Unreadable,
    /// Its `last_value` and `is_called`: the next value it gives is `last_value`, or one step
    /// beyond it once called (as after `setval(…, true)` or a `nextval`). A sequence created
    /// `START WITH 1000`, or `RESTART`ed, stands at its start uncalled.
    At {
        /// `last_value`.
        last: i64,
        /// `is_called`.
        called: bool,
    },
}

impl Position {
    /// The value its next `nextval` gives, counting by `increment` (beyond i64 when it is
    /// used up).
    fn next(self, increment: i64) -> Option<i128> {
        match self {
            Self::Unreadable => None,
            Self::At { last, called } => {
                Some(i128::from(last) + if called { i128::from(increment) } else { 0 })
            }
        }
    }
}

/// What one destination's sequence needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing: its next value is at or beyond the source's.
    Keep,
    /// `setval(seq, last, called)`: it stands where the source's stands (the source's own pair,
    /// always within the bounds of a sequence defined alike, a used-up or cycling one too).
    Advance {
        /// The source's `last_value`.
        last: i64,
        /// The source's `is_called`.
        called: bool,
    },
    /// It is behind, and the role may not `UPDATE` it.
    Denied,
    /// One side could not be read: whether it is behind is unknown.
    Unknown,
    /// The source's could not be read, and it was behind the copied rows there: set past
    /// their highest value (their lowest, counting down), `last` — never behind the rows it
    /// must not collide with, though perhaps behind the source's.
    PastTheRows {
        /// The value it was set to (`setval(…, last, true)`).
        last: i64,
    },
}

/// Decides, for a destination sequence that counts by `increment`, given where the source's
/// (counting by `source_increment`) and the destination's stand and whether the role may
/// `UPDATE` it: behind when its next value comes before the source's, in its direction. Two
/// that count in opposite directions are left alone: the source's position says nothing of
/// where the copied rows lie in the destination's direction, and set to it the destination's
/// next values were the copied rows' (types66 F9: the next INSERT there failed, 23505).
pub fn step(
    source: Position,
    source_increment: i64,
    destination: Position,
    increment: i64,
    may_update: bool,
) -> Step {
    let (Some(theirs), Some(ours)) = (source.next(source_increment), destination.next(increment))
    else {
        return Step::Unknown;
    };
    if (source_increment < 0) != (increment < 0) {
        return Step::Keep;
    }
    let behind = if increment < 0 {
        ours > theirs
    } else {
        ours < theirs
    };
    match (behind, may_update, source) {
        (false, _, _) => Step::Keep,
        (true, false, _) => Step::Denied,
        (true, true, Position::At { last, called }) => Step::Advance { last, called },
        (true, true, Position::Unreadable) => Step::Unknown,
    }
}

/// A sequence as its server describes it: its name there, its increment, whether the role may
/// read and update it, and where it stands (read only when it may).
struct Described {
    name: String,
    increment: i64,
    may_update: bool,
    at: Position,
}

/// Reads the sequence `oid` on `conn`; `None` when there is no such sequence (dropped).
fn describe(conn: &mut Connection, oid: u32) -> Result<Option<Described>, Error> {
    let rows = conn.query(&format!(
        "SELECT s.seqrelid::pg_catalog.regclass::text, s.seqincrement::text, \
           pg_catalog.has_sequence_privilege(s.seqrelid, 'SELECT'), \
           pg_catalog.has_sequence_privilege(s.seqrelid, 'UPDATE') \
         FROM pg_catalog.pg_sequence s WHERE s.seqrelid = {oid}"
    ))?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let field = |i: usize| row.get(i).cloned().flatten();
    let name = field(0).unwrap_or_else(|| oid.to_string());
    let increment = field(1).and_then(|v| v.parse().ok()).unwrap_or(1);
    let at = if field(2).as_deref() == Some("t") {
        // The server's own name for it (quoted as needed), read in the same session.
        let rows = conn.query(&format!(
            "SELECT last_value::text, is_called::text FROM {name}"
        ))?;
        let row = rows.first();
        let value = |i: usize| row.and_then(|r| r.get(i).cloned().flatten());
        match value(0).and_then(|v| v.parse().ok()) {
            Some(last) => Position::At {
                last,
                called: value(1).as_deref() == Some("true"),
            },
            None => Position::Unreadable,
        }
    } else {
        Position::Unreadable
    };
    Ok(Some(Described {
        name,
        increment,
        may_update: field(3).as_deref() == Some("t"),
        at,
    }))
}

/// Where a source's sequence stands, and its increment.
pub type SourcePosition = (Position, i64);

/// Where the source's sequences of `carries` stand (read after the copy's rows), with their
/// increments.
///
/// # Errors
/// The server's.
pub fn positions(source: &mut Connection, carries: &[Carry]) -> Result<Vec<SourcePosition>, Error> {
    let mut at = Vec::new();
    for carry in carries {
        // pg_sequence is from PostgreSQL 10: an older source's cannot be read.
        let described = if has_sequence_catalog(source) {
            describe(source, carry.source)?
        } else {
            None
        };
        at.push(described.map_or((Position::Unreadable, 1), |d| (d.at, d.increment)));
    }
    Ok(at)
}

/// What [`advance`] did to one sequence, for the log or a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    /// The destination's sequence, as its server names it.
    pub sequence: String,
    /// The column that owns it.
    pub column: Ident,
    /// What was decided.
    pub step: Step,
    /// The source's position.
    pub source: Position,
}

impl Said {
    /// Whether the user must hear of it: the sequence may be behind the copied rows.
    pub fn is_warning(&self) -> bool {
        matches!(
            self.step,
            Step::Denied | Step::Unknown | Step::PastTheRows { .. }
        )
    }
}

impl fmt::Display for Said {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sequence, column) = (&self.sequence, &self.column);
        match (self.step, self.source) {
            (Step::Advance { last, called }, _) => write!(
                f,
                "sequence {sequence} advanced to the source's ({last}, {})",
                if called { "called" } else { "not called yet" }
            ),
            (Step::Keep, _) => write!(f, "sequence {sequence} left as it is (not behind)"),
            (Step::PastTheRows { last }, _) => write!(
                f,
                "the source's sequence of column {column} cannot be read (SELECT on it, \
                 PostgreSQL 10 or later): {sequence} set past the copied rows ({last}), perhaps \
                 behind the source's own"
            ),
            (Step::Denied, _) => write!(
                f,
                "sequence {sequence} (column {column}) is behind the source's and the role may \
                 not UPDATE it: an INSERT that takes its default may collide with a copied row"
            ),
            (Step::Unknown, Position::Unreadable) => write!(
                f,
                "the source's sequence of column {column} cannot be read (SELECT on it, \
                 PostgreSQL 10 or later): {sequence} left as it is, perhaps behind the copied rows"
            ),
            (Step::Unknown, Position::At { .. }) => write!(
                f,
                "sequence {sequence} (column {column}) cannot be read (SELECT on it, PostgreSQL \
                 10 or later): left as it is, perhaps behind the \
                 copied rows"
            ),
        }
    }
}

/// Advances each of `carries`' sequences on `destination` (in its open transaction) to the
/// source's `positions` ([`positions`]), never back.
///
/// # Errors
/// The server's: a `setval` beyond the sequence's bounds there (`22003`) fails the copy.
pub fn advance(
    destination: &mut Connection,
    carries: &[Carry],
    positions: &[SourcePosition],
) -> Result<Vec<Said>, Error> {
    let mut said = Vec::new();
    let readable = has_sequence_catalog(destination);
    for (carry, &(source, source_increment)) in carries.iter().zip(positions) {
        let described = if readable {
            describe(destination, carry.destination)?
        } else {
            None
        };
        let Some(d) = described else {
            said.push(Said {
                sequence: format!("of column {}", carry.column),
                column: carry.column.clone(),
                step: Step::Unknown,
                source,
            });
            continue;
        };
        let mut step = step(source, source_increment, d.at, d.increment, d.may_update);
        // The source's unreadable (a role granted SELECT on the tables only): the copied rows
        // at least say where it must not stand — at or before them, the next INSERT that takes
        // its default collides with one.
        if step == Step::Unknown
            && source == Position::Unreadable
            && d.may_update
            && matches!(d.at, Position::At { .. })
            && let Some(last) = past_the_rows(destination, carry, &d)?
        {
            step = Step::PastTheRows { last };
        }
        if let Step::Advance { last, called } = step {
            // Decided on what was read; the statement checks again, so that a sequence that
            // moved on meanwhile is not set back.
            let (name, inc) = (&d.name, d.increment);
            let behind = if inc < 0 { ">" } else { "<" };
            let theirs = i128::from(last)
                + if called {
                    i128::from(source_increment)
                } else {
                    0
                };
            destination.query(&format!(
                "SELECT pg_catalog.setval('{}'::pg_catalog.regclass, {last}, {called}) \
                 FROM {name} WHERE (CASE WHEN is_called THEN last_value::numeric + {inc} \
                        ELSE last_value::numeric END) {behind} {theirs}",
                carry.destination
            ))?;
        }
        said.push(Said {
            sequence: d.name,
            column: carry.column.clone(),
            step,
            source,
        });
    }
    Ok(said)
}

/// Sets `d` (the destination's sequence of `carry`, which its table owns: `serial`, identity)
/// past the highest value of the column in that table (the lowest, counting down), where its
/// next value is not beyond it; the value set, or `None` (not behind, no rows, a sequence no
/// table owns — a shared `nextval` default, whose users cannot all be told —, or a column the
/// role may not read whole there).
fn past_the_rows(
    destination: &mut Connection,
    carry: &Carry,
    d: &Described,
) -> Result<Option<i64>, Error> {
    // Only where the role may read the column and no row security hides rows or refuses the
    // read: an error here would abort the destination's transaction, and the copy with it.
    let owner = destination.query(&format!(
        "SELECT d.refobjid::pg_catalog.regclass::text FROM pg_catalog.pg_depend d \
         WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = {} \
           AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass \
           AND d.deptype IN ('a', 'i') \
           AND d.refobjsubid > 0 \
           AND pg_catalog.has_column_privilege(d.refobjid, d.refobjsubid::int2, 'SELECT') \
           AND NOT pg_catalog.row_security_active(d.refobjid) LIMIT 1",
        carry.destination
    ))?;
    let Some(table) = owner.first().and_then(|r| r.first().cloned().flatten()) else {
        return Ok(None);
    };
    let (inc, name, column) = (d.increment, &d.name, &carry.column);
    let (aggregate, behind) = if inc < 0 {
        ("min", ">=")
    } else {
        ("max", "<=")
    };
    let rows = destination.query(&format!(
        "SELECT pg_catalog.setval('{}'::pg_catalog.regclass, m, true)::text \
         FROM (SELECT {aggregate}({column})::bigint AS m FROM {table}) r, {name} q \
         WHERE r.m IS NOT NULL AND (CASE WHEN q.is_called THEN q.last_value::numeric + {inc} \
               ELSE q.last_value::numeric END) {behind} r.m",
        carry.destination
    ))?;
    Ok(rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|v| v.parse().ok()))
}

/// Why carrying a table's sequences to a destination failed.
#[derive(Debug, thiserror::Error)]
pub enum CarryError {
    /// The source's sequences could not be read.
    #[error("reading the source's sequences: {0}")]
    Source(#[source] Error),
    /// The destination refused a `setval` (or its reads).
    #[error("advancing its sequences: {0}")]
    Destination(#[source] Error),
}

impl CarryError {
    /// What failed, in words: "reading the source's sequences", "advancing its sequences".
    pub fn what(&self) -> &'static str {
        match self {
            Self::Source(_) => "reading the source's sequences",
            Self::Destination(_) => "advancing its sequences",
        }
    }

    /// The server's error.
    pub fn error(&self) -> &Error {
        match self {
            Self::Source(e) | Self::Destination(e) => e,
        }
    }
}

/// Carries one table's sequences to its destinations, one after another: each source sequence
/// is read once (after the table's rows), whatever the number of destinations.
#[derive(Debug, Default)]
pub struct Carrier {
    read: HashMap<u32, SourcePosition>,
}

impl Carrier {
    /// Advances `destination`'s sequences of `carries` (in its open transaction) to where the
    /// source's stand ([`positions`], [`advance`]).
    ///
    /// # Errors
    /// [`CarryError`]: the source's or the destination's error.
    pub fn carry(
        &mut self,
        source: &mut Connection,
        destination: &mut Connection,
        carries: &[Carry],
    ) -> Result<Vec<Said>, CarryError> {
        let unread: Vec<Carry> = carries
            .iter()
            .filter(|c| !self.read.contains_key(&c.source))
            .cloned()
            .collect();
        let read = positions(source, &unread).map_err(CarryError::Source)?;
        self.read.extend(unread.iter().map(|c| c.source).zip(read));
        let at: Vec<SourcePosition> = carries
            .iter()
            .map(|c| {
                self.read
                    .get(&c.source)
                    .copied()
                    .unwrap_or((Position::Unreadable, 1))
            })
            .collect();
        advance(destination, carries, &at).map_err(CarryError::Destination)
    }
}

/// Whether the server has `pg_sequence` (PostgreSQL 10 on).
fn has_sequence_catalog(conn: &Connection) -> bool {
    conn.session()
        .server_version_num()
        .is_none_or(|v| v >= 100_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(last: i64, called: bool) -> Position {
        Position::At { last, called }
    }

    #[test]
    fn a_sequence_moves_forward_only() {
        // Source used up to 100: next 101.
        assert_eq!(
            step(at(100, true), 1, at(1, false), 1, true),
            Step::Advance {
                last: 100,
                called: true
            }
        );
        assert_eq!(
            step(at(100, true), 1, at(7, true), 1, true),
            Step::Advance {
                last: 100,
                called: true
            }
        );
        assert_eq!(step(at(100, true), 1, at(100, true), 1, true), Step::Keep);
        assert_eq!(step(at(100, true), 1, at(500, true), 1, true), Step::Keep);
        // A destination created START WITH 1000000 (uncalled) is ahead, not unused.
        assert_eq!(
            step(at(500, true), 1, at(1_000_000, false), 1, true),
            Step::Keep
        );
        // A source RESTARTed at 1000 (uncalled) gives 1000 next: carried.
        assert_eq!(
            step(at(1000, false), 1, at(1, false), 1, true),
            Step::Advance {
                last: 1000,
                called: false
            }
        );
        // Counting down: behind means above.
        assert_eq!(
            step(at(-100, true), -1, at(-7, true), -1, true),
            Step::Advance {
                last: -100,
                called: true
            }
        );
        assert_eq!(
            step(at(-100, true), -1, at(-500, true), -1, true),
            Step::Keep
        );
        // Counting the other way there: the source's position says nothing of the copied
        // rows' place in its direction; left alone (types66 F9: set among the rows).
        assert_eq!(step(at(20, true), 1, at(1000, false), -1, true), Step::Keep);
        assert_eq!(step(at(-20, true), -1, at(1, false), 1, true), Step::Keep);
    }

    #[test]
    fn an_unused_source_changes_nothing_and_what_cannot_be_read_is_said() {
        assert_eq!(step(at(1, false), 1, at(1, false), 1, true), Step::Keep);
        assert_eq!(step(at(1, false), 1, at(3, true), 1, false), Step::Keep);
        assert_eq!(
            step(Position::Unreadable, 1, at(3, true), 1, true),
            Step::Unknown
        );
        assert_eq!(
            step(at(9, true), 1, Position::Unreadable, 1, true),
            Step::Unknown
        );
        assert_eq!(step(at(9, true), 1, at(3, true), 1, false), Step::Denied);
        assert_eq!(step(at(9, true), 1, at(30, true), 1, false), Step::Keep);
        // A source used up (at i64::MAX, or at a MAXVALUE of its own, cycling or not): the
        // destination is set to the source's own pair, within the bounds they share.
        assert_eq!(
            step(at(i64::MAX, true), 1, at(3, true), 1, true),
            Step::Advance {
                last: i64::MAX,
                called: true
            }
        );
    }
}
