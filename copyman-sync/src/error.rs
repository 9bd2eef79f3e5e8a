//! The one error type of copyman-sync, and what it reads from `postgres`'s types: written once for
//! both adapters, in copyman-core's [`client_glue!`](copyman_core::client_glue).

copyman_core::client_glue!(postgres, "copyman-sync");
