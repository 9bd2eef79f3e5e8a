//! SQL text copyman builds: names parsed as PostgreSQL reads them and always written quoted.
//! The implementation is the job layer's ([`copyman_job::sql`]), shared by `copyman table` and
//! the many-tables job.

pub(crate) use copyman_job::sql::*;
