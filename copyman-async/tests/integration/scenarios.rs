//! The shared integration scenarios (`copyman_testkit::scenarios`) against real clusters, run
//! with the tokio adapter: one test per scenario, the same list as copyman-sync's.

use crate::common;

copyman_testkit::scenario_tests!(common::AsyncDriver);
