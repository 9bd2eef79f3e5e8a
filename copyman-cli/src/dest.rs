//! One destination through a run: its transaction (server) or temporary file (file, stdout),
//! committed or discarded at the end.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use copyman_core::commit::Action;
use copyman_core::{BoxError, EndpointError};
use copyman_sync::{CallReceiver, Connection, Receiver, StatementReceiver};

use crate::args::Endpoint;
use crate::conn;
use crate::file_source::FILE_CHUNK;
use crate::report::{self, ErrorInfo, Exit, Fatal};
use crate::run::describe_sync;
use crate::signals;

/// One destination through the run.
pub(crate) struct Dest<'e> {
    pub(crate) endpoint: &'e Endpoint,
    pub(crate) conn: Option<Connection>,
    pub(crate) sink: Option<FileSink>,
    pub(crate) receive: Option<String>,
    pub(crate) rows: Option<u64>,
    pub(crate) error: Option<ErrorInfo>,
    /// It failed because stdout's reader went away.
    pub(crate) broken_pipe: bool,
    /// When its transaction (or file) was committed or discarded.
    pub(crate) ended: Option<std::time::Instant>,
    /// Bytes that went out on stdout though the run failed: they cannot be taken back.
    pub(crate) sent_anyway: u64,
}

impl<'e> Dest<'e> {
    pub(crate) fn new(endpoint: &'e Endpoint) -> Self {
        Self {
            endpoint,
            conn: None,
            sink: None,
            receive: None,
            rows: None,
            error: None,
            broken_pipe: false,
            ended: None,
            sent_anyway: 0,
        }
    }

    pub(crate) fn begin(&mut self, truncate: Option<&str>) -> Result<(), copyman_sync::Error> {
        if let Some(conn) = self.conn.as_mut() {
            conn.execute("BEGIN")?;
            if let Some(sql) = truncate {
                conn.execute(sql)?;
            }
        }
        Ok(())
    }

    /// Marks it failed with `error`, unless it already failed (the first error stands).
    pub(crate) fn fail(&mut self, error: &EndpointError) {
        if self.error.is_none() {
            self.broken_pipe =
                matches!(self.endpoint, Endpoint::Stdio) && report::is_broken_pipe(&**error);
            self.error = Some(report::describe(&**error));
        }
    }

    pub(crate) fn fail_with(&mut self, error: ErrorInfo) {
        if self.error.is_none() {
            self.error = Some(error);
        }
    }

    /// Its receiver for one attempt at the copy.
    pub(crate) fn receiver(&mut self) -> Box<dyn Receiver + '_> {
        match (&mut self.conn, &mut self.sink) {
            (Some(conn), _) => Box::new(StatementReceiver::new(
                conn,
                self.receive.clone().unwrap_or_default(),
            )),
            (None, Some(sink)) => Box::new(CallReceiver::new(move |lines: &[Bytes]| {
                for line in lines {
                    sink.write_all(line)?;
                }
                Ok::<(), BoxError>(())
            })),
            (None, None) => unreachable!("a destination is a server or a file"),
        }
    }

    pub(crate) fn rollback(&mut self) {
        // A connection the server closed, or one whose transaction ended, has nothing to roll
        // back (core says which from its transaction status).
        if let Some(conn) = self.conn.as_mut()
            && conn.is_ready()
            && Action::Rollback.is_due(conn.session().transaction_status())
        {
            let _ = conn.execute("ROLLBACK");
        }
    }

    pub(crate) fn discard(&mut self) {
        self.rollback();
        if let Some(sink) = self.sink.take() {
            self.sent_anyway = sink.discard();
        }
    }

    pub(crate) fn commit(&mut self) -> Result<(), ErrorInfo> {
        if let Some(conn) = self.conn.as_mut() {
            conn.execute("COMMIT").map_err(|e| describe_sync(&e))?;
        }
        if let Some(sink) = self.sink.take() {
            sink.commit().map_err(|e| ErrorInfo {
                sqlstate: None,
                message: format!("cannot write {}: {e}", self.endpoint.display()),
            })?;
        }
        Ok(())
    }
}

/// A file destination: written to a temporary file beside it and renamed into place on commit,
/// so a failed copy leaves an existing file as it was. Stdout and special files (`/dev/null`, a
/// pipe) are written directly. A symbolic link is written through, as `cp` and shells do: the
/// temporary file and the rename are beside the link's target ([`resolve`]), the link stays.
pub(crate) struct FileSink {
    pub(crate) out: BufWriter<Out>,
    /// The temporary file and its final name.
    pub(crate) rename: Option<(PathBuf, PathBuf)>,
    /// Bytes written (to the buffer) so far.
    written: u64,
}

pub(crate) enum Out {
    Stdout(io::Stdout),
    File(File),
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Stdout(s) => s.write(buf),
            Self::File(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Stdout(s) => s.flush(),
            Self::File(f) => f.flush(),
        }
    }
}

impl FileSink {
    pub(crate) fn open(endpoint: &Endpoint) -> io::Result<Self> {
        let (out, rename) = match endpoint {
            Endpoint::File(path) => {
                let special = fs::metadata(path).is_ok_and(|m| !m.is_file());
                if special {
                    (Out::File(File::create(path)?), None)
                } else {
                    let path = resolve(path)?;
                    let temp = temp_path(&path);
                    let file = File::create(&temp)?;
                    signals::register_temp(&temp);
                    (Out::File(file), Some((temp, path)))
                }
            }
            _ => (Out::Stdout(io::stdout()), None),
        };
        Ok(Self {
            out: BufWriter::with_capacity(FILE_CHUNK, out),
            rename,
            written: 0,
        })
    }

    pub(crate) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)?;
        self.written += data.len() as u64;
        Ok(())
    }

    pub(crate) fn commit(mut self) -> io::Result<()> {
        self.out.flush()?;
        if let Some((temp, path)) = self.rename.take() {
            if let Out::File(file) = self.out.get_ref() {
                file.sync_all()?;
            }
            fs::rename(&temp, &path)?;
            signals::unregister_temp(&temp);
        }
        Ok(())
    }

    /// Removes the temporary file; returns the bytes that went out anyway where there is none
    /// (stdout, a pipe: what was written is out already, and what is buffered is passed on).
    pub(crate) fn discard(mut self) -> u64 {
        if let Some((temp, _)) = self.rename.take() {
            let _ = fs::remove_file(&temp);
            signals::unregister_temp(&temp);
            0
        } else {
            let _ = self.out.flush();
            self.written
        }
    }
}

/// `dir/.name.copyman-PID.tmp` beside `path`.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "copyman".to_owned());
    path.with_file_name(format!(".{name}.copyman-{}.tmp", std::process::id()))
}

/// Where writing to `path` lands: `path`, or the end of the chain of symbolic links it starts (a
/// relative link read from the link's directory). The target need not exist (a dangling link is
/// written through, creating its target, as `cp` does).
///
/// # Errors
/// A link cannot be read, or the chain is longer than 40 links (the kernel's limit).
pub(crate) fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut path = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&path)?;
                // An absolute target replaces the directory it is joined to.
                path = match path.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            _ => return Ok(path),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: too many levels of symbolic links", path.display()),
    ))
}

/// The file a destination path writes, however it is spelled (`./x`, `/tmp/d/x`, a link to it):
/// its directory made canonical, joined with its name. `None` for what cannot be told (a
/// directory that does not exist: opening it fails later, named).
fn file_identity(path: &Path) -> Option<PathBuf> {
    let path = resolve(path).ok()?;
    let name = path.file_name()?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Some(fs::canonicalize(dir).ok()?.join(name))
}

/// Refuses a file given twice as a destination (by different paths, or through a link): the two
/// would share one temporary file and the second rename would fail after the first. A character
/// device (`/dev/null`) may be given any number of times: it is written directly and keeps
/// nothing.
///
/// # Errors
/// [`Fatal`] with exit 2, naming both.
pub(crate) fn refuse_same_file(destinations: &[Endpoint]) -> Result<(), Fatal> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    let mut seen: Vec<(PathBuf, usize)> = Vec::new();
    for (i, endpoint) in destinations.iter().enumerate() {
        let Endpoint::File(path) = endpoint else {
            continue;
        };
        let Some(identity) = file_identity(path) else {
            continue;
        };
        if fs::metadata(&identity).is_ok_and(|m| m.file_type().is_char_device()) {
            continue;
        }
        // The same path, or another name of the same existing file (a hard link).
        let same = |other: &PathBuf| {
            *other == identity
                || match (fs::metadata(other), fs::metadata(&identity)) {
                    (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                    _ => false,
                }
        };
        if let Some((_, first)) = seen.iter().find(|(p, _)| same(p)) {
            return Err(Fatal {
                exit: Exit::Usage,
                message: format!(
                    "destinations {} ({}) and {} ({}) are the same file, {}: give it once",
                    first + 1,
                    destinations[*first].display(),
                    i + 1,
                    endpoint.display(),
                    conn::redact(&identity.to_string_lossy())
                ),
            });
        }
        seen.push((identity, i));
    }
    Ok(())
}
