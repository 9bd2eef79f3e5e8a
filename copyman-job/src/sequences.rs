//! Sequences carried forward. A copied `serial` or identity column brings rows whose values came
//! from the source's sequence; the destination's own sequence has not moved, so the next INSERT
//! there that takes its default would collide with a copied row. After the copy, inside each
//! destination's transaction and before its COMMIT, the sequence the column owns there is set to
//! where the source's stands (as pg_dump's `setval` and pgcopydb do), with two differences a copy
//! into live tables needs: it is **never moved back** (a destination ahead of the source keeps
//! its place), and a role that may not `UPDATE` it gets a warning, not a failed copy.
//!
//! `setval` is not transactional: a copy that rolls back afterwards leaves the sequence advanced
//! (a gap in the destination's numbering, never a collision). Only the sequences the copied
//! columns own on both sides are carried (`pg_depend`, as `pg_get_serial_sequence`); the source's
//! is read after its rows, so it stands at or beyond every copied value it produced.
//!
//! ```no_run
//! use copyman_job::sequences::{self, Carry};
//! use copyman_sync::Connection;
//!
//! # fn carries() -> Vec<Carry> { Vec::new() }
//! let mut source = Connection::connect_str("host=src dbname=shop")?;
//! let mut dest = Connection::connect_str("host=dst dbname=shop")?;
//! let carries = carries(); // from `sequences::carried`, with the plan's catalogs
//! let at = sequences::positions(&mut source, &carries)?;
//! dest.execute("BEGIN")?; // … the copy into it …
//! for said in sequences::advance(&mut dest, &carries, &at)? {
//!     eprintln!("{said}");
//! }
//! dest.execute("COMMIT")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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

/// Where a sequence stands, as its server tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Never used (`nextval` never called, or reset by `setval(…, false)` to its start).
    Unused,
    /// The role may not read it (neither `SELECT` nor `USAGE`).
    Unreadable,
    /// The last value it gave.
    Last(i64),
}

impl Position {
    fn from_field(field: Option<&str>, readable: bool) -> Self {
        match (readable, field.and_then(|v| v.parse().ok())) {
            (false, _) => Self::Unreadable,
            (true, Some(last)) => Self::Last(last),
            (true, None) => Self::Unused,
        }
    }
}

/// What one destination's sequence needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing: the source's was never used, or the destination's is at or beyond it.
    Keep,
    /// `setval(seq, n, true)`.
    Advance(i64),
    /// It is behind, and the role may not `UPDATE` it.
    Denied,
    /// One side could not be read: whether it is behind is unknown.
    Unknown,
}

/// Decides, for a destination sequence that counts by `increment`, given where the source's
/// and the destination's stand and whether the role may `UPDATE` it.
pub fn step(source: Position, destination: Position, increment: i64, may_update: bool) -> Step {
    let last = match source {
        Position::Unused => return Step::Keep,
        Position::Unreadable => return Step::Unknown,
        Position::Last(last) => last,
    };
    let behind = match destination {
        Position::Unreadable => return Step::Unknown,
        Position::Unused => true,
        Position::Last(at) if increment < 0 => at > last,
        Position::Last(at) => at < last,
    };
    match (behind, may_update) {
        (false, _) => Step::Keep,
        (true, false) => Step::Denied,
        (true, true) => Step::Advance(last),
    }
}

/// Where the source's sequences of `carries` stand (read after the copy's rows).
///
/// # Errors
/// The server's.
pub fn positions(source: &mut Connection, carries: &[Carry]) -> Result<Vec<Position>, Error> {
    if carries.is_empty() {
        return Ok(Vec::new());
    }
    // pg_sequence_last_value is from PostgreSQL 10: an older source's cannot be read.
    if !has_sequence_catalog(source) {
        return Ok(vec![Position::Unreadable; carries.len()]);
    }
    let oids: Vec<String> = carries.iter().map(|c| c.source.to_string()).collect();
    let rows = source.query(&format!(
        "SELECT pg_catalog.has_sequence_privilege(u.o, 'SELECT,USAGE'), \
           CASE WHEN pg_catalog.has_sequence_privilege(u.o, 'SELECT,USAGE') \
             THEN pg_catalog.pg_sequence_last_value(u.o::pg_catalog.regclass)::text END \
         FROM unnest('{{{}}}'::pg_catalog.oid[]) WITH ORDINALITY u(o, n) ORDER BY u.n",
        oids.join(",")
    ))?;
    Ok(rows
        .iter()
        .map(|row| {
            let readable = row.first().cloned().flatten().as_deref() == Some("t");
            Position::from_field(row.get(1).cloned().flatten().as_deref(), readable)
        })
        .collect())
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
        matches!(self.step, Step::Denied | Step::Unknown)
    }
}

impl fmt::Display for Said {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sequence, column) = (&self.sequence, &self.column);
        match (self.step, self.source) {
            (Step::Advance(to), _) => write!(f, "sequence {sequence} advanced to {to}"),
            (Step::Keep, _) => write!(f, "sequence {sequence} left as it is (not behind)"),
            (Step::Denied, Position::Last(last)) => write!(
                f,
                "sequence {sequence} (column {column}) is behind the source's ({last}) and the \
                 role may not UPDATE it: an INSERT that takes its default may collide with a \
                 copied row"
            ),
            (Step::Unknown, Position::Unreadable) => write!(
                f,
                "the source's sequence of column {column} cannot be read by its role (SELECT or \
                 USAGE): {sequence} left as it is"
            ),
            _ => write!(
                f,
                "sequence {sequence} (column {column}) cannot be read by the role (SELECT or \
                 USAGE): left as it is, perhaps behind the copied rows"
            ),
        }
    }
}

/// Advances each of `carries`' sequences on `destination` (in its open transaction) to the
/// source's `positions`, never back.
///
/// # Errors
/// The server's: a `setval` beyond the sequence's bounds there (`22003`) fails the copy.
pub fn advance(
    destination: &mut Connection,
    carries: &[Carry],
    positions: &[Position],
) -> Result<Vec<Said>, Error> {
    let mut said = Vec::new();
    let readable = has_sequence_catalog(destination);
    for (carry, &source) in carries.iter().zip(positions) {
        if !readable {
            said.push(Said {
                sequence: format!("of column {}", carry.column),
                column: carry.column.clone(),
                step: Step::Unknown,
                source,
            });
            continue;
        }
        let oid = carry.destination;
        let rows = destination.query(&format!(
            "SELECT s.seqrelid::pg_catalog.regclass::text, s.seqincrement::text, \
               pg_catalog.has_sequence_privilege(s.seqrelid, 'SELECT,USAGE'), \
               CASE WHEN pg_catalog.has_sequence_privilege(s.seqrelid, 'SELECT,USAGE') \
                 THEN pg_catalog.pg_sequence_last_value(s.seqrelid)::text END, \
               pg_catalog.has_sequence_privilege(s.seqrelid, 'UPDATE') \
             FROM pg_catalog.pg_sequence s WHERE s.seqrelid = {oid}"
        ))?;
        // Dropped since the plan: nothing to carry.
        let Some(row) = rows.first() else { continue };
        let field = |i: usize| row.get(i).cloned().flatten();
        let name = field(0).unwrap_or_else(|| oid.to_string());
        let increment = field(1).and_then(|v| v.parse().ok()).unwrap_or(1);
        let at = Position::from_field(field(3).as_deref(), field(2).as_deref() == Some("t"));
        let step = step(source, at, increment, field(4).as_deref() == Some("t"));
        if let Step::Advance(to) = step {
            // Decided on what was read; the statement checks again, so that a sequence that
            // moved on meanwhile is not set back.
            let ahead = if increment < 0 { "<=" } else { ">=" };
            destination.query(&format!(
                "SELECT pg_catalog.setval({oid}::pg_catalog.regclass, {to}, true) \
                 WHERE NOT coalesce(pg_catalog.pg_sequence_last_value({oid}::pg_catalog.regclass) \
                   {ahead} {to}, false)"
            ))?;
        }
        said.push(Said {
            sequence: name,
            column: carry.column.clone(),
            step,
            source,
        });
    }
    Ok(said)
}

/// Whether the server has `pg_sequence` and `pg_sequence_last_value` (PostgreSQL 10 on).
fn has_sequence_catalog(conn: &Connection) -> bool {
    conn.session()
        .server_version_num()
        .is_none_or(|v| v >= 100_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Position::{Last, Unreadable, Unused};

    #[test]
    fn a_sequence_moves_forward_only() {
        assert_eq!(step(Last(100), Unused, 1, true), Step::Advance(100));
        assert_eq!(step(Last(100), Last(7), 1, true), Step::Advance(100));
        assert_eq!(step(Last(100), Last(100), 1, true), Step::Keep);
        assert_eq!(step(Last(100), Last(500), 1, true), Step::Keep);
        // Counting down: behind means above.
        assert_eq!(step(Last(-100), Last(-7), -1, true), Step::Advance(-100));
        assert_eq!(step(Last(-100), Last(-500), -1, true), Step::Keep);
    }

    #[test]
    fn an_unused_source_changes_nothing_and_what_cannot_be_read_is_said() {
        assert_eq!(step(Unused, Unused, 1, true), Step::Keep);
        assert_eq!(step(Unused, Last(3), 1, false), Step::Keep);
        assert_eq!(step(Unreadable, Last(3), 1, true), Step::Unknown);
        assert_eq!(step(Last(9), Unreadable, 1, true), Step::Unknown);
        assert_eq!(step(Last(9), Last(3), 1, false), Step::Denied);
        assert_eq!(step(Last(9), Last(30), 1, false), Step::Keep);
    }
}
