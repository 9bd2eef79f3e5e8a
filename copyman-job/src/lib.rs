//! copyman's job layer: many tables copied from one source to many destinations.
#![forbid(unsafe_code)]

pub mod plan;
pub mod sql;
