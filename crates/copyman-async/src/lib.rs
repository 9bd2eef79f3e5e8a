//! copyman on tokio (work in progress).
