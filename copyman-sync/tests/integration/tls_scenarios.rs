//! The shared integration scenarios again, with the blocking adapter, against servers that take
//! TCP connections over TLS only and authenticate with SCRAM-SHA-256-PLUS: every byte of every
//! scenario goes through rustls.

use crate::common;

copyman_testkit::scenario_tests!(tls: common::SyncDriver);
