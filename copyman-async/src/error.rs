//! The one error type of copyman-async, and what it reads from `tokio_postgres`'s types: written once for
//! both adapters, in copyman-core's [`client_glue!`](copyman_core::client_glue).

copyman_core::client_glue!(tokio_postgres, "copyman-async");
