//! Files and stdin as the source of a copy.

use std::io::{self, Read};

use bytes::Bytes;
use copyman_core::{BoxError, Chunk};
use copyman_sync::{Producer, Protocol};

/// Bytes read from a file source per chunk: each becomes one CopyData message for the servers.
pub(crate) const FILE_CHUNK: usize = 256 * 1024;

/// Reads a file (or stdin) in large chunks, each handed on as one blob: servers get it as one
/// CopyData message (COPY accepts any split of its data), files as it is.
pub(crate) struct FileProducer<'r> {
    pub(crate) reader: &'r mut dyn Read,
    pub(crate) done: bool,
}

impl Producer for FileProducer<'_> {
    fn protocol(&self) -> Protocol {
        Protocol::Chunks
    }

    fn start(&mut self, _source_frames: bool) -> Result<(), BoxError> {
        Ok(())
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        if self.done {
            return Ok(None);
        }
        let mut buf = vec![0; FILE_CHUNK];
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => {
                    self.done = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if filled == 0 {
            return Ok(None);
        }
        buf.truncate(filled);
        Ok(Some(Chunk::lines(vec![Bytes::from(buf)])))
    }
}
