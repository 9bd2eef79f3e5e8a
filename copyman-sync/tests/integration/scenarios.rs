//! The shared integration scenarios (`copyman_testkit::scenarios`) against real clusters, run
//! with the blocking adapter: one test per scenario.

use crate::common;

copyman_testkit::scenario_tests!(common::SyncDriver);
