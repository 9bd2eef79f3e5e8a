//! The library API of issue 13 (typed faults, outcomes, the connect plan, the one-call form)
//! against a real cluster. One cluster for the binary, a fresh database per test.

mod common;

use common::runtime;
use copyman_async::{Connection, Error};
use copyman_testkit::shared;

/// A host name that does not resolve is reported as that, not as "no host could be resolved";
/// the plan then goes on to the next host, as libpq does.
#[test]
fn connect_plan_reports_dns_errors_and_moves_on() {
    runtime().block_on(async {
        let err = Connection::connect_str("host=copyman-no-such-host.invalid user=postgres")
            .await
            .expect_err("the name does not resolve");
        assert!(
            matches!(err, Error::Resolve { ref host, .. } if host == "copyman-no-such-host.invalid")
        );
        assert_eq!(
            err.to_string(),
            "could not translate host name \"copyman-no-such-host.invalid\" to address"
        );
        let cluster = shared();
        let db = cluster.create_database();
        let conninfo = format!(
            "host=copyman-no-such-host.invalid,{} port={} user={} dbname={db}",
            cluster.host(),
            cluster.port(),
            cluster.user()
        );
        let mut conn = Connection::connect_str(&conninfo)
            .await
            .expect("the second host connects");
        assert_eq!(conn.execute("SELECT 1").await.unwrap(), 1);
    });
}
