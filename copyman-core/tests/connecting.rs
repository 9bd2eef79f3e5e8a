//! [`Connecting`]: libpq's connection loop's bookkeeping, fed as an adapter feeds it.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use copyman_core::connect::{
    AllFailed, AttemptError, Connecting, Deadline, Failure, Host, Next, Plan, PlanError,
    ResolveError, Started, Target,
};

/// An adapter's error: what it is, and how the attempt failed.
#[derive(Debug, PartialEq)]
enum Error {
    Plan(PlanError),
    Resolve(String),
    Attempt(&'static str, Failure),
    All(Vec<(String, Self)>),
}

impl From<AllFailed<Self>> for Error {
    fn from(all: AllFailed<Self>) -> Self {
        Self::All(all.0.into_iter().map(|a| (a.target, a.error)).collect())
    }
}

impl From<PlanError> for Error {
    fn from(e: PlanError) -> Self {
        Self::Plan(e)
    }
}

impl From<ResolveError> for Error {
    fn from(e: ResolveError) -> Self {
        Self::Resolve(format!("{}: {}", e.host, e.source))
    }
}

impl AttemptError for Error {
    fn failure(&self) -> Failure {
        match self {
            Self::Attempt(_, failure) => *failure,
            _ => Failure::Refused,
        }
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn attempt(connecting: &mut Connecting<Error>, now: Instant) -> (SocketAddr, bool, Started) {
    match connecting.next(now).unwrap() {
        Next::Attempt {
            target: Target::Tcp { addr, .. },
            tls,
            deadline,
        } => (addr, tls, deadline),
        other => panic!("{other:?}"),
    }
}

#[test]
fn one_deadline_per_address_started_with_its_first_attempt() {
    let plan = Plan::new(&[Host::Tcp("db".into())], &[], &[], &[true, false]).unwrap();
    let mut connecting = Connecting::<Error>::new(plan, Some(Duration::from_secs(2)));
    let t0 = Instant::now();
    let later = t0 + Duration::from_secs(1);
    assert!(matches!(connecting.next(t0), Ok(Next::Resolve { .. })));
    connecting.resolved(Ok([addr("10.0.0.1:5432"), addr("10.0.0.2:5432")]));
    let (at, tls, first) = attempt(&mut connecting, t0);
    assert_eq!((at, tls), (addr("10.0.0.1:5432"), true));
    assert_eq!(
        first.remaining(later).unwrap(),
        Some(Duration::from_secs(1))
    );
    // The plain attempt on the same address goes on with the same deadline.
    let refused = Err::<(), _>(Error::Attempt("no TLS", Failure::Refused));
    assert_eq!(connecting.attempted(refused), None);
    assert_eq!(attempt(&mut connecting, later), (at, false, first));
    // The next address has its own, started when its turn comes.
    let unreachable = Err::<(), _>(Error::Attempt("timeout", Failure::Unreachable));
    assert_eq!(connecting.attempted(unreachable), None);
    let (at, _, second) = attempt(&mut connecting, later);
    assert_eq!(at, addr("10.0.0.2:5432"));
    let two_seconds = Deadline::new(Some(Duration::from_secs(2)));
    assert_eq!(second, Started::new(two_seconds, later));
    assert!(first.expired(later + Duration::from_secs(1)));
    assert!(!second.expired(later + Duration::from_secs(1)));
    // A connection made is the end of the loop.
    assert_eq!(connecting.attempted(Ok("conn")), Some("conn"));
}

#[test]
fn every_error_is_reported_each_with_where() {
    let hosts = [Host::Tcp("a".into()), Host::Tcp("b".into())];
    let plan = Plan::new(&hosts, &[], &[], &[]).unwrap();
    let mut connecting = Connecting::<Error>::new(plan, None);
    let t0 = Instant::now();
    // `a` does not resolve: its error is kept, and `b` is next.
    assert!(matches!(connecting.next(t0), Ok(Next::Resolve { ref name, .. }) if name == "a"));
    connecting.resolved::<[SocketAddr; 0]>(Err(io::Error::other("no such host")));
    assert!(matches!(connecting.next(t0), Ok(Next::Resolve { ref name, .. }) if name == "b"));
    connecting.resolved(Ok([addr("10.0.0.1:5432")]));
    let _ = attempt(&mut connecting, t0);
    let refused = Err::<(), _>(Error::Attempt("password", Failure::Refused));
    assert_eq!(connecting.attempted(refused), None);
    assert_eq!(
        connecting.next(t0).unwrap_err(),
        Error::All(vec![
            ("a".into(), Error::Resolve("a: no such host".into())),
            (
                "b (10.0.0.1:5432)".into(),
                Error::Attempt("password", Failure::Refused)
            ),
        ])
    );
    // Only `a`, which does not resolve: its error.
    let plan = Plan::new(&hosts[..1], &[], &[], &[]).unwrap();
    let mut connecting = Connecting::<Error>::new(plan, None);
    let _ = connecting.next(t0);
    connecting.resolved::<[SocketAddr; 0]>(Err(io::Error::other("no such host")));
    assert_eq!(
        connecting.next(t0).unwrap_err(),
        Error::Resolve("a: no such host".into())
    );
    // A name with no address and nothing else: no error was seen, so no host.
    let plan = Plan::new(&hosts[..1], &[], &[], &[]).unwrap();
    let mut connecting = Connecting::<Error>::new(plan, None);
    let _ = connecting.next(t0);
    connecting.resolved(Ok([]));
    assert_eq!(
        connecting.next(t0).unwrap_err(),
        Error::Plan(PlanError::NoHost)
    );
}

/// An adapter's error, as far as [`Connecting`] cares.
#[derive(Debug, PartialEq)]
enum TestError {
    Unreachable(String),
    Refused(String),
    Resolve(String),
    Planning(PlanError),
    All(Vec<(String, Self)>),
}

impl From<PlanError> for TestError {
    fn from(e: PlanError) -> Self {
        Self::Planning(e)
    }
}

impl From<ResolveError> for TestError {
    fn from(e: ResolveError) -> Self {
        Self::Resolve(e.host)
    }
}

impl From<AllFailed<Self>> for TestError {
    fn from(all: AllFailed<Self>) -> Self {
        Self::All(all.0.into_iter().map(|a| (a.target, a.error)).collect())
    }
}

impl AttemptError for TestError {
    fn failure(&self) -> Failure {
        match self {
            Self::Unreachable(_) => Failure::Unreachable,
            _ => Failure::Refused,
        }
    }
}

/// Runs `connecting` to its end, every name resolving as `resolve` says and every attempt
/// failing as `attempt` says.
fn give_up(
    mut connecting: Connecting<TestError>,
    resolve: impl Fn(&str, u16) -> io::Result<Vec<SocketAddr>>,
    attempt: impl Fn(&Target, bool) -> TestError,
) -> TestError {
    let now = Instant::now();
    loop {
        match connecting.next(now) {
            Err(e) => return e,
            Ok(Next::Resolve { name, port }) => connecting.resolved(resolve(&name, port)),
            Ok(Next::Attempt { target, tls, .. }) => {
                assert!(
                    connecting
                        .attempted::<()>(Err(attempt(&target, tls)))
                        .is_none()
                );
            }
        }
    }
}

#[test]
fn every_failed_attempt_is_in_the_error_when_nothing_connects() {
    use TestError::*;
    let refused = |t: &Target, _| Unreachable(format!("refused {t}"));
    // host=a,b port=1,2: both down, both named, in order.
    let hosts = [Host::Tcp("a".into()), Host::Tcp("b".into())];
    let plan = Plan::new(&hosts, &[1, 2], &[], &[]).unwrap();
    let resolve = |name: &str, port| -> io::Result<Vec<SocketAddr>> {
        match name {
            "a" => Ok(vec![addr(&format!("10.0.0.1:{port}"))]),
            "b" => Ok(vec![addr(&format!("10.0.0.2:{port}"))]),
            _ => Err(io::ErrorKind::NotFound.into()),
        }
    };
    assert_eq!(
        give_up(Connecting::new(plan, None), resolve, refused),
        All(vec![
            (
                "a (10.0.0.1:1)".into(),
                Unreachable("refused a (10.0.0.1:1)".into())
            ),
            (
                "b (10.0.0.2:2)".into(),
                Unreachable("refused b (10.0.0.2:2)".into())
            ),
        ])
    );
    // A name that does not resolve is one of them; a refusal ends the list. The same address
    // with TLS and without: each named so.
    let hosts = [
        Host::Tcp("nowhere".into()),
        Host::Tcp("a".into()),
        Host::Tcp("b".into()),
    ];
    let plan = Plan::new(&hosts, &[7], &[], &[true, false]).unwrap();
    let said = give_up(Connecting::new(plan, None), resolve, |t, tls| {
        Refused(format!("{t} tls={tls}"))
    });
    assert_eq!(
        said,
        All(vec![
            ("nowhere".into(), Resolve("nowhere".into())),
            (
                "a (10.0.0.1:7) (TLS)".into(),
                Refused("a (10.0.0.1:7) tls=true".into())
            ),
            (
                "a (10.0.0.1:7) (without TLS)".into(),
                Refused("a (10.0.0.1:7) tls=false".into())
            ),
        ])
    );
    // One attempt: its own error, as before.
    let plan = Plan::new(&hosts[1..2], &[7], &[], &[]).unwrap();
    assert_eq!(
        give_up(Connecting::new(plan, None), resolve, refused),
        Unreachable("refused a (10.0.0.1:7)".into())
    );
}
