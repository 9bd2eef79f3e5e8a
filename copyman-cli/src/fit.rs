//! A job's `--jobs` fitted to what its servers accept now: connections (`max_connections`, a
//! role's `CONNECTION LIMIT`) and, under `--atomic`, prepared transactions. Each server is asked
//! once, before the plan's own sessions count against it ([`Rooms::ask`]); the job is fitted to
//! what the plan holds ([`Demand::of`]: how many tables, how many split and into how many
//! ranges), the workers first capped to what an unsplit job takes so that the plan splits a
//! table into no more ranges than there are workers.

use copyman_job::job::{Plan, Server};

use crate::job::plural;
use crate::report;
use crate::report::{Exit, Fatal};

/// What a job's workers hold at once on each server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Demand {
    /// Tables copied side by side: each worker's session.
    pub(crate) workers: usize,
    /// Of them, those copying a split table, each in `ranges` ranges on sessions of their own.
    pub(crate) splitting: usize,
    pub(crate) ranges: usize,
}

impl Demand {
    /// `jobs` workers, none splitting (before the plan says whether a table is split).
    pub(crate) fn unsplit(jobs: usize) -> Self {
        Self {
            workers: jobs,
            splitting: 0,
            ranges: 0,
        }
    }

    /// `jobs` workers copying `plan`'s tables: no more than there are tables; as many split
    /// tables at once as there are workers; each in at most `jobs` ranges, 2 at the least
    /// (copyman-job's `split`), however many the plan cut it into.
    pub(crate) fn of(plan: &Plan, jobs: usize) -> Self {
        let split = plan.tables.iter().filter(|t| !t.ranges.is_empty()).count();
        let most = plan
            .tables
            .iter()
            .map(|t| t.ranges.len())
            .max()
            .unwrap_or(0);
        let workers = jobs.min(plan.tables.len()).max(1);
        let splitting = split.min(workers);
        Self {
            workers,
            splitting,
            ranges: if splitting == 0 {
                0
            } else {
                most.min(jobs.max(2))
            },
        }
    }

    /// The connections it holds on an endpoint: each worker's session and each range's, the
    /// watch's monitoring session, and on the source the session that holds the snapshot.
    fn connections(self, source: bool) -> usize {
        self.workers + self.splitting * self.ranges + 1 + usize::from(source)
    }

    /// The prepared transactions it holds on a destination under `--atomic`: one per table,
    /// a split table's ranges each their own, all prepared before the decision.
    fn prepared(self) -> usize {
        self.workers - self.splitting + self.splitting * self.ranges
    }

    /// How a cap to it is said: the tables at a time, and a split table's ranges where the
    /// cap cut them.
    fn said(self, plan_ranges: usize) -> String {
        let ranges = if self.ranges < plan_ranges {
            format!(
                ", a table over --split-larger-than in {} ranges",
                self.ranges
            )
        } else {
            String::new()
        };
        format!("{} at a time{ranges}", plural(self.workers, "table"))
    }
}

/// A server's room: its names in the job, the connections it accepts now and the limit that
/// says so, its endpoints (whether each is the source).
struct Room {
    key: String,
    /// Its first endpoint, with its CONN (redacted); the others' roles after it.
    names: Vec<String>,
    free: i64,
    limit: String,
    endpoints: Vec<bool>,
    /// The reserved slots the job's role may take besides (a superuser's), where `free` is
    /// `max_connections`'s.
    reserved: i64,
}

/// The tightest destination's prepared transactions: its name, free, `max_prepared_transactions`.
struct PreparedRoom {
    name: String,
    free: usize,
    max: i64,
}

/// What the job's servers accept now, asked before planning.
pub(crate) struct Rooms {
    connections: Vec<Room>,
    prepared: Option<PreparedRoom>,
}

impl Rooms {
    /// Asks every server how many connections it accepts now (`max_connections`, less its
    /// reserved slots, left free for a DBA even when the role is a superuser unless not one
    /// worker fits without them ([`Rooms::fit`]), less the
    /// connections it holds; a role's limit), and under `atomic` every destination how many
    /// prepared transactions it has free. A server that cannot be asked is not counted (the
    /// job says so when it connects).
    pub(crate) fn ask(
        source: &Server,
        dests: &[Server],
        atomic: bool,
        passed_over: &[usize],
    ) -> Self {
        let mut connections: Vec<Room> = Vec::new();
        let endpoints = std::iter::once(("source".to_owned(), source, true)).chain(
            (dests.iter().enumerate())
                .filter(|(i, _)| !passed_over.contains(i))
                .map(|(i, d)| (format!("destination {}", i + 1), d, false)),
        );
        for (role, server, is_source) in endpoints {
            let answer = (server.connect)()
                .map_err(|e| report::describe(&e).to_string())
                .and_then(|mut conn| {
                    conn.query(copyman_job::sql::CAPACITY)
                        .map_err(|e| report::describe(&e).to_string())
                });
            let row = match answer {
                Ok(rows) => rows.into_iter().next().unwrap_or_default(),
                Err(e) => {
                    report::log(format_args!(
                        "cannot ask {role} how many connections it accepts: {e}"
                    ));
                    continue;
                }
            };
            let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            let (key, free, mut limit) = (
                field(0),
                field(1).parse::<i64>().unwrap_or(i64::MAX),
                field(2),
            );
            let reserved = field(3);
            let by_server = limit.starts_with("max_connections");
            // A superuser may take them where nothing else limits it (a last resort).
            let takes = match (by_server, field(4).as_str()) {
                (true, "t") => reserved.parse().unwrap_or(0),
                _ => 0,
            };
            if by_server && !matches!(reserved.as_str(), "" | "0") {
                // A job leaves them free: a DBA can still connect to it.
                limit = format!(
                    "{limit}, less the {reserved} that superuser_reserved_connections keeps \
                     for a DBA, left free"
                );
            }
            match connections.iter_mut().find(|s| s.key == key) {
                Some(s) => {
                    s.names.push(role);
                    // Another role or database of the server may have a lower limit of its own.
                    if free < s.free {
                        (s.free, s.limit, s.reserved) = (free, limit, takes);
                    }
                    s.endpoints.push(is_source);
                }
                None => connections.push(Room {
                    key,
                    names: vec![format!("{role} ({})", server.name)],
                    free,
                    limit,
                    endpoints: vec![is_source],
                    reserved: takes,
                }),
            }
        }
        let prepared = if atomic {
            tightest_prepared(dests, passed_over)
        } else {
            None
        };
        Self {
            connections,
            prepared,
        }
    }

    /// `--jobs wanted` capped to what every server accepts (connections, then prepared
    /// transactions) for `demand` (by workers), with a warning for each cap: a job of more
    /// workers than that fails table after table with "too many clients", or at its PREPARE
    /// (53200), every row copied and thrown away. `plan_ranges`: the most ranges the plan cut
    /// a table into (said where the cap takes fewer). Where not one worker fits but in the
    /// slots a superuser may take, one worker takes them, said.
    ///
    /// # Errors
    /// [`Fatal`] when not even one worker fits: exit 3 for connections, 2 for prepared
    /// transactions, as a one-table run.
    pub(crate) fn fit(
        &self,
        wanted: usize,
        demand: &dyn Fn(usize) -> Demand,
        plan_ranges: usize,
    ) -> Result<(usize, Vec<String>), Fatal> {
        let mut warnings = Vec::new();
        let jobs = self.fit_connections(wanted, demand, plan_ranges, &mut warnings)?;
        let jobs = match &self.prepared {
            Some(room) => fit_prepared(room, jobs, demand, plan_ranges, &mut warnings)?,
            None => jobs,
        };
        Ok((jobs, warnings))
    }

    fn fit_connections(
        &self,
        wanted: usize,
        demand: &dyn Fn(usize) -> Demand,
        plan_ranges: usize,
        warnings: &mut Vec<String>,
    ) -> Result<usize, Fatal> {
        let need = |jobs: usize, endpoints: &[bool]| -> i64 {
            let d = demand(jobs);
            endpoints
                .iter()
                .map(|&source| d.connections(source))
                .sum::<usize>()
                .try_into()
                .unwrap_or(i64::MAX)
        };
        let fits = |jobs: usize| {
            self.connections
                .iter()
                .all(|s| need(jobs, &s.endpoints) <= s.free)
        };
        if fits(wanted) {
            return Ok(wanted);
        }
        // The server that takes the fewest workers is the one to name.
        let most_on = |s: &Room| {
            (1..=wanted)
                .rev()
                .find(|&j| need(j, &s.endpoints) <= s.free)
                .unwrap_or(0)
        };
        let tightest = self
            .connections
            .iter()
            .min_by_key(|s| most_on(s))
            .expect("one server does not fit");
        // One server, however many of the job's endpoints are its databases: named once.
        let server = match tightest.names.as_slice() {
            [one] => one.clone(),
            [first, rest @ ..] => format!("the server of {first}, {}", rest.join(", ")),
            [] => "a server".to_owned(),
        };
        let what = format!(
            "{server} accepts {} now ({})",
            plural(
                usize::try_from(tightest.free.max(0)).unwrap_or(0),
                "more connection"
            ),
            tightest.limit
        );
        let Some(jobs) = (1..wanted).rev().find(|&j| fits(j)) else {
            // A superuser's last resort, as a one-table copy's sessions and psql take them: one
            // worker in the slots kept for a DBA, said (conn68 F1: refused, exit 3, while the
            // server would let the DBA in).
            let with_reserved = |s: &Room| need(1, &s.endpoints) <= s.free + s.reserved;
            if self.connections.iter().all(with_reserved) {
                let taken = need(1, &tightest.endpoints) - tightest.free.max(0);
                warnings.push(format!(
                    "{what}: a job needs {} there even with --jobs 1, so it takes {} of the {} \
                     kept for a DBA, as its superuser may (copying {}, --jobs 1): another \
                     superuser's connection there may be refused meanwhile",
                    need(1, &tightest.endpoints),
                    taken,
                    plural(
                        usize::try_from(tightest.reserved).unwrap_or(0),
                        "reserved slot"
                    ),
                    demand(1).said(plan_ranges)
                ));
                return Ok(1);
            }
            // The limit's name, without its value.
            let limit = tightest
                .limit
                .split_once(|c: char| c.is_ascii_digit())
                .map_or("max_connections", |(name, _)| name.trim_end());
            return Err(Fatal {
                exit: Exit::Connect,
                server: None,
                message: format!(
                    "{what}: a job needs {} there even with --jobs 1; free connections there, \
                     or raise {limit}",
                    need(1, &tightest.endpoints)
                ),
            });
        };
        let ranges = if demand(wanted).splitting > 0 {
            " (--split-larger-than: a worker copies a table over its size as up to --jobs ranges \
             side by side, each on sessions of its own)"
        } else {
            ""
        };
        warnings.push(format!(
            "{what}, and --jobs {wanted} needs up to {} there{ranges}: copying {} (--jobs {jobs})",
            plural(
                need(wanted, &tightest.endpoints)
                    .try_into()
                    .unwrap_or(usize::MAX),
                "connection"
            ),
            demand(jobs).said(plan_ranges)
        ));
        Ok(jobs)
    }
}

/// The destination with the fewest prepared transactions free now (`max_prepared_transactions`
/// less those in use on its server); `None` if none can be asked or allows any (max 0 is
/// refused by the planning, in its own words).
fn tightest_prepared(dests: &[Server], passed_over: &[usize]) -> Option<PreparedRoom> {
    let mut tightest: Option<PreparedRoom> = None;
    // (Not one found unreachable: another wait, another failed login; recheck42 F4.)
    for (i, server) in dests.iter().enumerate() {
        if passed_over.contains(&i) {
            continue;
        }
        let rows = (server.connect)().ok().and_then(|mut conn| {
            conn.query(
                "SELECT pg_catalog.current_setting('max_prepared_transactions')::int, \
                 (SELECT count(*) FROM pg_catalog.pg_prepared_xacts)",
            )
            .ok()
        });
        let Some(row) = rows.and_then(|rows| rows.into_iter().next()) else {
            continue;
        };
        let number = |c: usize| -> i64 {
            let value = row.get(c).cloned().flatten();
            value.and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        let (max, used) = (number(0), number(1));
        let free = usize::try_from(max - used).unwrap_or(0);
        if max > 0 && tightest.as_ref().is_none_or(|t| free < t.free) {
            let name = format!("destination {} {}", i + 1, server.name);
            tightest = Some(PreparedRoom { name, free, max });
        }
    }
    tightest
}

/// `--jobs` of an `--atomic` job capped to the prepared transactions of `room`, the tightest
/// destination.
fn fit_prepared(
    room: &PreparedRoom,
    wanted: usize,
    demand: &dyn Fn(usize) -> Demand,
    plan_ranges: usize,
    warnings: &mut Vec<String>,
) -> Result<usize, Fatal> {
    let PreparedRoom { name, free, max } = room;
    let need = |jobs: usize| demand(jobs).prepared();
    if need(wanted) <= *free {
        return Ok(wanted);
    }
    let in_use = usize::try_from(*max).unwrap_or(0).saturating_sub(*free);
    let Some(jobs) = (1..wanted).rev().find(|&j| need(j) <= *free) else {
        let way = if demand(1).splitting > 0 && *free > 0 {
            " (a split table prepares 2 ranges at the least: without --split-larger-than one \
             is enough)"
        } else {
            ""
        };
        return Err(Fatal {
            exit: Exit::Usage,
            server: None,
            message: format!(
                "--atomic: {name} has {} free of its {max} (max_prepared_transactions, {in_use} \
                 in use), and a job needs {} even with --jobs 1{way}: finish those in use first \
                 (copyman recover, or COMMIT/ROLLBACK PREPARED), or raise \
                 max_prepared_transactions",
                plural(*free, "prepared transaction"),
                need(1),
            ),
        });
    };
    warnings.push(format!(
        "--atomic --jobs {wanted} may hold up to {} prepared transactions on each destination, \
         and {name} has {free} free of its {max} (max_prepared_transactions): copying {} \
         (--jobs {jobs})",
        need(wanted),
        demand(jobs).said(plan_ranges)
    ));
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_demand_counts_the_sessions_and_prepared_transactions_of_split_tables_only() {
        let unsplit = Demand::unsplit(4);
        assert_eq!(
            (unsplit.connections(false), unsplit.connections(true)),
            (5, 6)
        );
        assert_eq!(unsplit.prepared(), 4);
        // One split table in 4 ranges, copied by one of 4 workers, 3 others unsplit.
        let one = Demand {
            workers: 4,
            splitting: 1,
            ranges: 4,
        };
        assert_eq!(one.connections(false), 4 + 4 + 1);
        assert_eq!(one.prepared(), 3 + 4);
        assert_eq!(one.said(4), "4 tables at a time");
        assert_eq!(
            Demand { ranges: 2, ..one }.said(4),
            "4 tables at a time, a table over --split-larger-than in 2 ranges"
        );
    }
}
