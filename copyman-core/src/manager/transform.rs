//! Protocols and the transformations between them (`copy_protocol_mappings` in py-postgresql's
//! copyman).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use copyman_wire::{LineDecoder, encode_lines_joined};

use super::DataError;

/// The form COPY data takes between an endpoint and the manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// A PQv3 CopyData stream: bytes as they go over a PostgreSQL connection.
    PQv3,
    /// Chunks of COPY lines (`CHUNKS` in py-postgresql's copyman): each cycle's data is a list of
    /// lines.
    Chunks,
    /// No data (the null producer and receiver of py-postgresql's copyman).
    Null,
}

/// One cycle's data in one protocol. Cloning shares it (reference counts, no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Data {
    /// PQv3 stream bytes.
    PQv3(Bytes),
    /// COPY lines.
    Lines(Arc<[Bytes]>),
    /// Nothing.
    Null,
}

impl Data {
    /// The protocol of this data.
    pub fn protocol(&self) -> Protocol {
        match self {
            Self::PQv3(_) => Protocol::PQv3,
            Self::Lines(_) => Protocol::Chunks,
            Self::Null => Protocol::Null,
        }
    }

    /// Bytes carried (for lines, the sum of their lengths).
    pub fn len(&self) -> usize {
        match self {
            Self::PQv3(bytes) => bytes.len(),
            Self::Lines(lines) => lines.iter().map(Bytes::len).sum(),
            Self::Null => 0,
        }
    }

    /// Whether no byte is carried.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What is left of it after its first `n` bytes (lines: those wholly within them left out,
    /// the one they end in cut): what a receiver that took `n` bytes of it before it faulted is
    /// owed when it is reconciled.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use copyman_core::manager::Data;
    ///
    /// let lines = Data::Lines(vec![Bytes::from("1\n"), Bytes::from("22\n")].into());
    /// assert_eq!(lines.after(3), Data::Lines(vec![Bytes::from("2\n")].into()));
    /// assert_eq!(Data::PQv3(Bytes::from("abc")).after(1), Data::PQv3(Bytes::from("bc")));
    /// ```
    #[must_use]
    pub fn after(&self, n: usize) -> Self {
        match self {
            Self::PQv3(bytes) => Self::PQv3(bytes.slice(n.min(bytes.len())..)),
            Self::Lines(lines) => {
                let mut skip = n;
                let mut rest = Vec::with_capacity(lines.len());
                for line in lines.iter() {
                    if skip >= line.len() {
                        skip -= line.len();
                    } else {
                        rest.push(line.slice(skip..));
                        skip = 0;
                    }
                }
                Self::Lines(rest.into())
            }
            Self::Null => Self::Null,
        }
    }
}

/// A producer's chunk: its data and what it counts as progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The data, in the producer's protocol.
    pub data: Data,
    /// Messages (rows) the chunk completes.
    pub messages: u64,
    /// Payload bytes the chunk carries.
    pub bytes: u64,
}

impl Chunk {
    /// A chunk of PQv3 stream bytes; the producer counts the messages and payload it carries.
    pub fn pqv3(data: Bytes, messages: u64, bytes: u64) -> Self {
        Self {
            data: Data::PQv3(data),
            messages,
            bytes,
        }
    }

    /// A chunk of lines: one message per line, bytes the sum of their lengths.
    pub fn lines(lines: impl Into<Arc<[Bytes]>>) -> Self {
        let lines = lines.into();
        let bytes = lines.iter().map(|l| l.len() as u64).sum();
        Self {
            messages: lines.len() as u64,
            bytes,
            data: Data::Lines(lines),
        }
    }

    /// An empty chunk (the null producer's).
    pub fn null() -> Self {
        Self {
            data: Data::Null,
            messages: 0,
            bytes: 0,
        }
    }
}

/// Turns the producer's chunks into each receiver protocol, keeping state across chunks.
#[derive(Debug)]
pub(crate) struct Transformer {
    /// Decodes PQv3 into lines when a PQv3 producer feeds Chunks receivers.
    decoder: LineDecoder,
}

impl Transformer {
    pub(crate) fn new() -> Self {
        Self {
            decoder: LineDecoder::new(),
        }
    }

    /// `data` in protocol `to`.
    ///
    /// PQv3 → lines decodes CopyData bodies (a PQv3 producer feeding Chunks receivers must hand in
    /// source frames as the server sent them, not re-blocked ones); lines → PQv3 joins a chunk's
    /// lines into one CopyData message; null gives empty data; anything → null gives nothing.
    pub(crate) fn transform(&mut self, data: &Data, to: Protocol) -> Result<Data, DataError> {
        Ok(match (data, to) {
            (_, Protocol::Null) => Data::Null,
            (Data::PQv3(bytes), Protocol::PQv3) => Data::PQv3(bytes.clone()),
            (Data::Lines(lines), Protocol::Chunks) => Data::Lines(lines.clone()),
            (Data::PQv3(bytes), Protocol::Chunks) => {
                let decoded = self.decoder.decode(bytes.clone())?;
                if let Some(offset) = decoded.stop {
                    // A producer must cut its stream before anything that is not CopyData.
                    let tag = super::stopped_tag(self.decoder.framer().position(), bytes, offset);
                    return Err(DataError::NotCopyData { tag, offset });
                }
                Data::Lines(decoded.lines.into())
            }
            (Data::Lines(lines), Protocol::PQv3) => {
                let mut out = BytesMut::new();
                encode_lines_joined(lines, &mut out)?;
                Data::PQv3(out.freeze())
            }
            (Data::Null, Protocol::PQv3) => Data::PQv3(Bytes::new()),
            (Data::Null, Protocol::Chunks) => Data::Lines(Arc::from(Vec::new())),
        })
    }
}
