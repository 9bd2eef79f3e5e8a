//! Getting a COPY started: the statement checked and sent, then the session followed to its
//! CopyOutResponse or CopyInResponse — or to the reason there is none.
//!
//! Both adapters start both directions through [`CopyStart`], so what the session's events mean
//! at the start of a COPY is decided once; the adapters only write, read and send cancels.

use bytes::BytesMut;

use crate::session::config::{SHAPE_READING, SHAPE_WRITING};
use crate::session::{CopyFormat, Event, Session, SessionError, Unreported};
use crate::statement::{self, Direction, Representation};
use crate::{BoxError, ReceiverId};

/// What the caller must do for a [`CopyStart`] to go on.
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
// `Started` comes once per COPY, moved straight out: boxing it would allocate for nothing.
#[allow(clippy::large_enum_variant)]
pub enum StartStep {
    /// Write what the session has to send, read the socket into the session, then poll again.
    ReadMore,
    /// Send the session's cancel request on a new connection, then poll again.
    SendCancel,
    /// The COPY started.
    Started(Started),
}

/// A COPY that started.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Started {
    /// COPY OUT stream bytes the session read past the CopyOutResponse.
    pub early: Option<BytesMut>,
    /// A COPY OUT that ended in the same read as its start (no rows): its `COPY n`.
    pub ended: Option<Option<u64>>,
    /// The overall format the server announced in its CopyOutResponse or CopyInResponse.
    pub format: Option<CopyFormat>,
    /// The statement's representation ([`statement::representation`]) in its session
    /// ([`Representation::in_session`]: an ENCODING left out is the session's
    /// `client_encoding`); `None` when it cannot be told.
    pub representation: Option<Representation>,
    /// The session's `DateStyle` and `IntervalStyle` as its server reported them.
    pub styles: Option<Styles>,
    /// The settings copyman pinned at connect that shape this end's text data and that a `SET`
    /// since has changed, each as "array_nulls is off, not on" (asked only of a session a query
    /// of which named one: [`Session::settings_named`]).
    pub changed_settings: Vec<String>,
    /// A text COPY OUT's pinned settings that shape what it writes, asked again after it in
    /// its own Query ([`CopyStart::begin`]): the stream's source compares their answer
    /// ([`CopyOutSource`](crate::source::CopyOutSource)).
    pub asked_after: Option<Unreported>,
}

/// How a session writes and reads dates and intervals in text: its `DateStyle` and
/// `IntervalStyle`, as its server reported them. copyman's sessions start in `ISO` and
/// `postgres`, which every session reads alike; a `SET` on the session since changes what its
/// COPY writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Styles {
    /// `DateStyle`, e.g. `ISO, MDY`.
    pub date: String,
    /// `IntervalStyle`, e.g. `postgres`.
    pub interval: String,
}

impl Styles {
    /// The query that asks a client's session for its styles (a client-bound endpoint's: its
    /// client keeps what its server reported), and its `client_encoding` (the encoding of its
    /// data where its statement names none): three text columns, the first two read by
    /// [`Styles::from_row`].
    pub const QUERY: &'static str = "SELECT pg_catalog.current_setting('DateStyle'), \
                                      pg_catalog.current_setting('IntervalStyle'), \
                                      pg_catalog.current_setting('client_encoding')";

    /// The styles [`Styles::QUERY`] answered.
    pub fn from_row(date: String, interval: String) -> Self {
        Self { date, interval }
    }

    /// `session`'s, where its server reported both.
    pub fn of(session: &Session) -> Option<Self> {
        Some(Self {
            date: session.parameter("DateStyle")?.to_owned(),
            interval: session.parameter("IntervalStyle")?.to_owned(),
        })
    }

    /// What a session reading in these styles would read otherwise of what one writing in
    /// `written` writes: `Some` naming the setting and both values. ISO dates and any
    /// interval style but `sql_standard` (whose leading sign applies to every field) read
    /// alike everywhere; other dates are read alike by a reader of the same field order (`DMY`,
    /// `MDY`, `YMD`: `02/12/2026` is the 2nd of December to every `DMY` reader); an
    /// `sql_standard` interval by an `sql_standard` reader.
    ///
    /// ```
    /// use copyman_core::start::Styles;
    ///
    /// let styles = |date: &str, interval: &str| Styles { date: date.into(), interval: interval.into() };
    /// let iso = styles("ISO, MDY", "postgres");
    /// assert!(iso.reads_otherwise(&styles("ISO, DMY", "postgres")).is_none());
    /// assert!(iso.reads_otherwise(&styles("SQL, DMY", "postgres")).is_some());
    /// assert!(styles("SQL, DMY", "postgres").reads_otherwise(&styles("SQL, DMY", "postgres")).is_none());
    /// assert!(styles("ISO, DMY", "postgres").reads_otherwise(&styles("SQL, DMY", "postgres")).is_none());
    /// assert!(styles("ISO, MDY", "postgres").reads_otherwise(&styles("German", "postgres")).is_some());
    /// assert!(iso.reads_otherwise(&styles("ISO, MDY", "sql_standard")).is_some());
    /// ```
    pub fn reads_otherwise(&self, written: &Self) -> Option<(&'static str, String, String)> {
        let same = |a: &str, b: &str| {
            let clean = |s: &str| s.replace(' ', "").to_ascii_lowercase();
            clean(a) == clean(b)
        };
        // The order a DateStyle reads a date's fields in: `DMY` (`European`, and `German`
        // alone), `YMD`, else `MDY`.
        let order = |style: &str| {
            let style = style.to_ascii_uppercase();
            if style.contains("DMY") || style.contains("EURO") {
                "DMY"
            } else if style.contains("YMD") {
                "YMD"
            } else if style.contains("MDY") || !style.contains("GERMAN") {
                "MDY"
            } else {
                "DMY"
            }
        };
        let iso = written.date.trim().to_ascii_uppercase().starts_with("ISO");
        if !iso && order(&self.date) != order(&written.date) {
            return Some(("DateStyle", written.date.clone(), self.date.clone()));
        }
        let signed = written.interval.eq_ignore_ascii_case("sql_standard");
        if signed && !same(&self.interval, &written.interval) {
            return Some((
                "IntervalStyle",
                written.interval.clone(),
                self.interval.clone(),
            ));
        }
        None
    }
}

/// A receiver's session would read the producer's dates or intervals otherwise than it writes
/// them (a `SET DateStyle` on one since it connected): `02/12/2026` written under `SQL, DMY`
/// stored as the 12th of February by an `ISO, MDY` reader, without an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the COPY TO STDOUT's session writes in {setting} '{written}' and the COPY FROM STDIN's \
     reads in '{reads}': its values would be read as others without an error; give both \
     sessions one {setting} (copyman's sessions start in ISO and postgres), or copy in binary"
)]
pub struct StylesDiffer {
    /// `DateStyle` or `IntervalStyle`.
    pub setting: &'static str,
    /// The producer's session's.
    pub written: String,
    /// The receiver's session's.
    pub reads: String,
}

/// A session's setting that copyman pins at connect and its server does not report, changed
/// since by a `SET` on the connection, would have its end's text data written or read otherwise:
/// `SET array_nulls = off` on a receiver stores the array element `NULL` as the string `"NULL"`,
/// `SET extra_float_digits = 0` on the producer writes floats with fewer digits (lib67 F1) — and
/// the copy said OK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{end}'s session has {} since it connected (a SET on the connection): its text data would \
     be {} otherwise and stored as other values without an error; RESET it (copyman's sessions \
     start with it pinned) or copy in binary",
    .changed.join(", "),
    if *.writes { "written" } else { "read" }
)]
pub struct SettingsChanged {
    /// "the COPY TO STDOUT" or "the COPY FROM STDIN".
    pub end: &'static str,
    /// Each setting, as "array_nulls is off, not on".
    pub changed: Vec<String>,
    /// The end is the producer (its data written otherwise), not a receiver.
    pub writes: bool,
}

/// The producer's NULL string is a value's spelling too, and a receiver reads its data back
/// with it: in text, every value written as that string (the string `NULL` under `NULL 'NULL'`,
/// every empty string under `NULL ''`) arrives as a NULL; a NULL string that is the end-of-data
/// marker `\.` (in text, one that begins with it) stops the reader at the first row ending in a
/// NULL (lib67 F12: the command refused such a pair, the library copied it, `Ok`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the COPY TO STDOUT writes FORMAT {format} with NULL '{null}': {}",
    if *.marker {
        "that is the end-of-data marker, which a row ending in a NULL would be written as; the \
         COPY FROM STDIN would stop there, the rows after it lost; give another NULL string"
    } else {
        "in text a value is written as that string (its characters and the escapes COPY \
         writes), and the COPY FROM STDIN reads it back as NULL, so such values would arrive \
         as NULLs; leave NULL at its default (\\N), give one with a backslash before a \
         character COPY never escapes (E'\\\\Z'), or use FORMAT csv, which quotes such a value"
    }
)]
pub struct NullMisread {
    /// `text` or `csv`.
    pub format: String,
    /// The NULL string, quotes doubled.
    pub null: String,
    /// It is (or in text begins with) the end-of-data marker.
    pub marker: bool,
}

impl NullMisread {
    /// What a producer writing data of `representation` would have a receiver misread, if
    /// anything.
    pub fn of(representation: &Representation) -> Option<Self> {
        let marker = match representation.format.as_str() {
            "text" => representation.null.starts_with("\\."),
            "csv" => representation.null == "\\.",
            _ => false,
        };
        (marker || representation.null_collides()).then(|| Self {
            format: representation.format.clone(),
            null: representation.null.replace('\'', "''"),
            marker,
        })
    }
}

/// What an endpoint's COPY data is, as the endpoint knows it once its COPY started: the overall
/// format its server announced, and its statement's representation when it can be told. The
/// start of a copy compares every endpoint's ([`check_formats`], [`check_representations`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DataFormat {
    /// Text (text or CSV) or binary, as the server announced it.
    pub format: CopyFormat,
    /// FORMAT, DELIMITER, NULL, QUOTE, ESCAPE and ENCODING, as its session reads them.
    pub representation: Option<Representation>,
    /// Its statement's options could not be read ([`UnreadableOptions`]: a dollar-quoted or
    /// `U&` value, a session whose `standard_conforming_strings` is off), so its
    /// representation is unknown; an endpoint that does not know its representation at all
    /// (no statement) leaves this false.
    pub unreadable_options: bool,
    /// Its session's date and interval styles, where it has a session ([`Styles`]).
    pub styles: Option<Styles>,
    /// Its session's pinned settings changed since it connected ([`Started::changed_settings`]).
    pub changed_settings: Vec<String>,
}

impl DataFormat {
    /// The data format of a COPY whose server announced `format`, of a statement whose
    /// representation is `representation`.
    pub fn new(format: CopyFormat, representation: Option<Representation>) -> Self {
        Self {
            format,
            representation,
            unreadable_options: false,
            styles: None,
            changed_settings: Vec::new(),
        }
    }

    /// The data format a COPY that started says.
    pub fn of(started: &Started) -> Option<Self> {
        let format = started.format?;
        let mut data = Self::new(format, started.representation.clone());
        data.unreadable_options = data.representation.is_none();
        data.styles = started.styles.clone();
        data.changed_settings = started.changed_settings.clone();
        Some(data)
    }

    /// What a client-bound endpoint's `statement` says of its data, whose server's answer only
    /// its client reads: the overall format its FORMAT gives, and its representation; where
    /// copyman cannot read its options, [`unreadable_options`](Self::unreadable_options) (and
    /// the format a `binary` in it says).
    ///
    /// ```
    /// use copyman_core::session::CopyFormat;
    /// use copyman_core::start::DataFormat;
    ///
    /// let csv = DataFormat::of_statement("COPY t FROM STDIN (FORMAT csv)");
    /// assert_eq!(csv.format, CopyFormat::Text);
    /// assert!(!csv.unreadable_options);
    /// assert!(DataFormat::of_statement("COPY t TO STDOUT (NULL $$x$$)").unreadable_options);
    /// ```
    pub fn of_statement(statement: &str) -> Self {
        let Some(representation) = statement::representation(statement) else {
            let binary = statement.to_ascii_lowercase().contains("binary");
            let format = if binary {
                CopyFormat::Binary
            } else {
                CopyFormat::Text
            };
            let mut data = Self::new(format, None);
            data.unreadable_options = true;
            return data;
        };
        let format = match representation.format.as_str() {
            "binary" => CopyFormat::Binary,
            _ => CopyFormat::Text,
        };
        Self::new(format, Some(representation))
    }

    /// What a client-bound endpoint's `statement` says of its data ([`of_statement`](Self::of_statement)),
    /// with its client's date and interval styles and `client_encoding`: the row of
    /// [`Styles::QUERY`] asked of it (the client keeps what its server reported), compared with
    /// the other ends' at the copy's start.
    pub fn of_client_statement(
        statement: &str,
        date_style: String,
        interval_style: String,
        encoding: &str,
    ) -> Self {
        let mut format = Self::of_statement(statement);
        format.styles = Some(Styles::from_row(date_style, interval_style));
        format.representation = format.representation.map(|r| r.in_session(Some(encoding)));
        format
    }
}

/// An end of a copy whose statement's options copyman cannot read (a dollar-quoted or `U&`
/// value or name, an escape it does not know): whether it reads the data as the other ends
/// write it cannot be told, and a NULL string of its own went through unseen (the string `x`
/// stored for every NULL). Refused where another end's data format is known, as the `copyman`
/// command refuses it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "copyman cannot read the options of {end} (a dollar-quoted or U& value or name, an escape \
     it does not read, a session whose standard_conforming_strings is off), so it cannot tell \
     that it reads the data as the other end writes it: write each option's name unquoted and \
     its value as a plain 'string' or E'string' of the common escapes"
)]
pub struct UnreadableOptions {
    /// The end: "the COPY TO STDOUT" or "the COPY FROM STDIN".
    pub end: &'static str,
}

impl From<CopyFormat> for DataFormat {
    fn from(format: CopyFormat) -> Self {
        Self::new(format, None)
    }
}

/// A receiver's COPY does not take the format its producer's COPY sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the COPY FROM STDIN takes {receiver} data but the COPY TO STDOUT sends {producer} data: \
     give both the same FORMAT (text and csv go together, binary only with binary)"
)]
pub struct FormatMismatch {
    /// What the producer's COPY sends: `text` (text or CSV) or `binary`.
    pub producer: &'static str,
    /// What the receiver's COPY takes.
    pub receiver: &'static str,
}

fn format_name(format: CopyFormat) -> &'static str {
    match format {
        CopyFormat::Binary => "binary",
        _ => "text",
    }
}

/// The receivers whose COPY's format differs from the producer's, as their servers announced
/// them once every COPY started and before any data is sent: text (or CSV) data in a binary
/// COPY, or binary data in a text one, is refused, or worse, stored as something else. An
/// endpoint that does not know its format (`None`: files, callbacks, client-bound endpoints)
/// is not compared.
///
/// ```
/// use copyman_core::ReceiverId;
/// use copyman_core::session::CopyFormat;
/// use copyman_core::start::check_formats;
///
/// let receivers = [(ReceiverId(0), Some(CopyFormat::Text)), (ReceiverId(1), Some(CopyFormat::Binary))];
/// let refused = check_formats(Some(CopyFormat::Text), receivers);
/// assert_eq!(refused.len(), 1);
/// assert_eq!(refused[0].0, ReceiverId(1));
/// ```
pub fn check_formats(
    producer: Option<CopyFormat>,
    receivers: impl IntoIterator<Item = (ReceiverId, Option<CopyFormat>)>,
) -> Vec<(ReceiverId, FormatMismatch)> {
    let Some(producer) = producer else {
        return Vec::new();
    };
    receivers
        .into_iter()
        .filter_map(|(id, format)| {
            let format = format?;
            (format != producer).then(|| {
                (
                    id,
                    FormatMismatch {
                        producer: format_name(producer),
                        receiver: format_name(format),
                    },
                )
            })
        })
        .collect()
}

/// A receiver's COPY reads the data otherwise than it is written: a text `\N` read as CSV is a
/// string, CSV's empty string read as text is NULL, a delimiter or an encoding of its own
/// changes the values — and nothing fails. The words are the same wherever copyman refuses it
/// (the `copyman` command before it connects, a copy's start): only the names of the ends
/// differ.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{receiver} reads {reads}, but {against} {verb} {expected}: {why}",
    verb = if *.against_producer { "writes" } else { "reads" },
    why = what_changes(.reads, .expected)
)]
#[non_exhaustive]
pub struct RepresentationMismatch {
    /// The receiver's end, as its caller names it.
    pub receiver: String,
    /// How it reads the data (its encoding only when the two ends' differ).
    pub reads: Representation,
    /// The end it was compared with: the producer's, or (when the producer's representation is
    /// unknown) the first receiver's that is known.
    pub against: String,
    /// Whether `against` is the producer's end.
    pub against_producer: bool,
    /// How `against` writes (or reads) the data (its encoding only when the two ends' differ).
    pub expected: Representation,
}

/// What reading data in `reads` that was written in `written` does to it, in words.
fn what_changes(reads: &Representation, written: &Representation) -> &'static str {
    let (mut a, mut b) = (reads.clone(), written.clone());
    (a.header, b.header) = (false, false);
    (a.forced_nulls, b.forced_nulls) = (Vec::new(), Vec::new());
    let mut same_encoding = a.clone();
    same_encoding.encoding.clone_from(&b.encoding);
    if a.encoding != b.encoding && same_encoding.agrees_with(&b) {
        "its characters would be decoded as another encoding ('é' stored as 'Ã©') without an \
         error; give both ends the same encoding (the same ENCODING option on both statements, \
         or neither, the sessions' client_encoding then)"
    } else if !a.agrees_with(&b) {
        "its rows would be read as another format (NULLs, empty strings and escapes changed \
         without an error); give both ends the same FORMAT and options"
    } else if reads.header != written.header {
        "a HEADER on one end only: the first row would be skipped as a header, or a header \
         stored as a row; give both ends the same FORMAT and options"
    } else {
        "FORCE_NULL or FORCE_NOT_NULL, options of COPY FROM only (no COPY TO writes to \
         match them): empty strings and NULLs of those columns would be read as each other; \
         to turn one into the other, do it in the producing query (NULLIF(col, '') makes an \
         empty string NULL, coalesce(col, '') the reverse)"
    }
}

/// The receivers that read the data otherwise than the producer writes it, or, when the
/// producer's representation is unknown, otherwise than the first receiver whose
/// representation is known reads it ([`Representation::agrees_with`]); endpoints whose
/// representation is unknown are not compared. `receiver_name` names a refused receiver,
/// `against_name` the end it was compared with (`None`: the producer).
///
/// ```
/// use copyman_core::start::check_representations;
/// use copyman_core::statement::representation;
///
/// let text = representation("COPY t TO STDOUT");
/// let csv = representation("COPY t FROM STDIN (FORMAT csv)");
/// let names = |i: usize| format!("destination {i}");
/// let against = |i: Option<usize>| i.map_or("the source".to_owned(), names);
/// let refused = check_representations(text.as_ref(), [(1, csv.as_ref())], names, against);
/// assert_eq!(refused.len(), 1);
/// assert!(refused[0].1.to_string().starts_with(
///     "destination 1 reads FORMAT csv, but the source writes FORMAT text: "
/// ));
/// // Without the producer's, the receivers are compared with each other.
/// let refused = check_representations(None, [(1, text.as_ref()), (2, csv.as_ref())], names, against);
/// assert_eq!(refused[0].0, 2);
/// ```
pub fn check_representations<'a, K: Copy>(
    producer: Option<&'a Representation>,
    receivers: impl IntoIterator<Item = (K, Option<&'a Representation>)>,
    receiver_name: impl Fn(K) -> String,
    against_name: impl Fn(Option<K>) -> String,
) -> Vec<(K, RepresentationMismatch)> {
    let mut reference = producer.map(|rep| (None, rep));
    let mut refused = Vec::new();
    for (id, rep) in receivers {
        let Some(rep) = rep else { continue };
        match reference {
            None => reference = Some((Some(id), rep)),
            Some((against, expected)) if !expected.agrees_with(rep) => {
                let (mut reads, mut expected) = (rep.clone(), expected.clone());
                if reads.encoding.is_none()
                    || expected.encoding.is_none()
                    || reads.encoding == expected.encoding
                {
                    // Not what differs: it would only hide what does.
                    (reads.encoding, expected.encoding) = (None, None);
                }
                refused.push((
                    id,
                    RepresentationMismatch {
                        receiver: receiver_name(id),
                        reads,
                        against: against_name(against),
                        against_producer: against.is_none(),
                        expected,
                    },
                ));
            }
            Some(_) => {}
        }
    }
    refused
}

/// The receivers that cannot take the producer's data, as every endpoint's [`DataFormat`] says
/// once every COPY started and before any data is sent: a format of their own
/// ([`check_formats`]: [`FormatMismatch`]), else a representation of their own
/// ([`check_representations`]: [`RepresentationMismatch`], the receiver named "the COPY FROM
/// STDIN", the end it was compared with "the COPY TO STDOUT" or "receiver N's COPY FROM STDIN").
pub fn check_data_formats(
    producer: Option<&DataFormat>,
    receivers: &[(ReceiverId, Option<DataFormat>)],
) -> Vec<(ReceiverId, BoxError)> {
    fn representation(format: Option<&DataFormat>) -> Option<&Representation> {
        format?.representation.as_ref()
    }
    let formats = receivers
        .iter()
        .map(|(id, format)| (*id, format.as_ref().map(|f| f.format)));
    let mut refused: Vec<(ReceiverId, BoxError)> =
        check_formats(producer.map(|f| f.format), formats)
            .into_iter()
            .map(|(id, mismatch)| (id, mismatch.into()))
            .collect();
    // Ends whose options cannot be read, where another end's data format is known.
    let unreadable = |format: Option<&DataFormat>| format.is_some_and(|f| f.unreadable_options);
    let with_format =
        receivers.iter().filter(|(_, f)| f.is_some()).count() + usize::from(producer.is_some());
    if with_format > 1 {
        for (id, format) in receivers {
            if refused.iter().any(|(r, _)| r == id) || format.is_none() {
                continue;
            }
            let end = if unreadable(format.as_ref()) {
                "the COPY FROM STDIN"
            } else if unreadable(producer) {
                "the COPY TO STDOUT"
            } else {
                continue;
            };
            refused.push((*id, UnreadableOptions { end }.into()));
        }
    }
    // Text whose dates or intervals a receiver's session reads otherwise than the producer's
    // writes them.
    let written = producer
        .filter(|p| p.format == CopyFormat::Text)
        .and_then(|p| p.styles.as_ref());
    for (id, format) in receivers {
        let reads = format.as_ref().and_then(|f| f.styles.as_ref());
        if let (Some(written), Some(reads)) = (written, reads)
            && refused.iter().all(|(r, _)| r != id)
            && let Some((setting, written, reads)) = reads.reads_otherwise(written)
        {
            let differ = StylesDiffer {
                setting,
                written,
                reads,
            };
            refused.push((*id, differ.into()));
        }
    }
    // Text written or read otherwise by a session whose pinned settings a SET changed.
    let text = |format: Option<&DataFormat>| format.is_some_and(|f| f.format == CopyFormat::Text);
    let written = producer
        .filter(|p| text(Some(p)) && !p.changed_settings.is_empty())
        .map(|p| SettingsChanged {
            end: "the COPY TO STDOUT",
            changed: p.changed_settings.clone(),
            writes: true,
        });
    for (id, format) in receivers {
        if !text(format.as_ref()) || refused.iter().any(|(r, _)| r == id) {
            continue;
        }
        let read = format.as_ref().filter(|f| !f.changed_settings.is_empty());
        let changed = written.clone().or_else(|| {
            read.map(|f| SettingsChanged {
                end: "the COPY FROM STDIN",
                changed: f.changed_settings.clone(),
                writes: false,
            })
        });
        if let Some(changed) = changed {
            refused.push((*id, changed.into()));
        }
    }
    // Data a receiver reads with a NULL string that is also a value's spelling, or the end.
    if let Some(misread) = representation(producer).and_then(NullMisread::of) {
        for (id, format) in receivers {
            if representation(format.as_ref()).is_some() && refused.iter().all(|(r, _)| r != id) {
                refused.push((*id, misread.clone().into()));
            }
        }
    }
    let mut ordered: Vec<_> = receivers
        .iter()
        .filter(|(id, _)| refused.iter().all(|(r, _)| r != id))
        .map(|(id, format)| (*id, representation(format.as_ref())))
        .collect();
    ordered.sort_by_key(|(id, _)| id.0);
    let mismatches = check_representations(
        representation(producer),
        ordered,
        |_| "the COPY FROM STDIN".to_owned(),
        |against| {
            against.map_or("the COPY TO STDOUT".to_owned(), |id| {
                format!("receiver {id}'s COPY FROM STDIN")
            })
        },
    );
    refused.extend(mismatches.into_iter().map(|(id, m)| (id, m.into())));
    refused.sort_by_key(|(id, _)| id.0);
    refused
}

/// Follows a session from a COPY statement to the start of its COPY.
///
/// ```no_run
/// use copyman_core::session::Session;
/// use copyman_core::start::{CopyStart, StartStep};
/// use copyman_core::statement::Direction;
/// # fn io(_: &mut Session) {}
/// # fn f(session: &mut Session) -> Result<(), copyman_core::session::SessionError> {
/// let mut start = CopyStart::begin(session, "COPY t FROM STDIN", Direction::FromStdin)?;
/// let started = loop {
///     match start.poll(session)? {
///         StartStep::ReadMore => io(session), // flush the session's output, read into it
///         StartStep::SendCancel => { /* cancel request on a new connection */ }
///         StartStep::Started(started) => break started,
///         _ => unreachable!(),
///     }
/// };
/// # drop(started); Ok(()) }
/// ```
#[derive(Debug)]
pub struct CopyStart {
    /// Its COPY TO STDOUT runs in a read-only transaction of its own (its session was in none).
    read_only: bool,
    /// The pinned settings asked before the COPY, in the same Query, and what they were.
    pinned: Option<(Unreported, Vec<String>)>,
    /// Those asked after a text COPY OUT, in the same Query ([`Started::asked_after`]).
    asked_after: Option<Unreported>,
    started: bool,
    format: Option<CopyFormat>,
    representation: Option<Representation>,
    error: Option<SessionError>,
    early: Option<BytesMut>,
    count: Option<u64>,
}

/// The encoding a session's COPY data is in when its statement names none: its
/// `client_encoding`, or with `SQL_ASCII` (no conversion at all) its server's own: the bytes as
/// the server holds them (a UTF8 server's `café` stored as `cafÃ©` by a LATIN1 one, where both
/// sessions said SQL_ASCII and so agreed).
fn data_encoding(session: &Session) -> Option<&str> {
    match session.parameter("client_encoding") {
        Some(client) if statement::encoding_name(client) == "SQL_ASCII" => {
            session.parameter("server_encoding").or(Some(client))
        }
        client => client,
    }
}

impl CopyStart {
    /// Checks `sql` for `direction` and, if it is that COPY, queues it on `session`.
    ///
    /// # Errors
    /// [`SessionError::Statement`] for a statement of the wrong kind, or a query that changes
    /// data on a session in no transaction (nothing is queued), or the session's error if it
    /// cannot run a statement now.
    pub fn begin(
        session: &mut Session,
        sql: &str,
        direction: Direction,
    ) -> Result<Self, SessionError> {
        // Read the statement as this server will: its strings' backslashes depend on it.
        let standard_strings = session.parameter("standard_conforming_strings") != Some("off");
        statement::check_with(sql, direction, standard_strings)?;
        // A query that changes data commits with its statement outside a transaction: before
        // any receiver, and for nothing if the copy fails (lib44 F3).
        if direction == Direction::ToStdout
            && session.transaction_status() == crate::session::TransactionStatus::Idle
            && statement::copy_writes(sql)
        {
            return Err(statement::StatementError::WritesOutsideTransaction { said: None }.into());
        }
        // And one that changes data where its words do not show it (a function that deletes, a
        // view over one) fails in a read-only transaction, before anything is lost: the
        // statements of one Query are one transaction, read only from its first (lib49 F3).
        let read_only = direction == Direction::ToStdout
            && session.transaction_status() == crate::session::TransactionStatus::Idle;
        // Its representation as this session reads it; with standard_conforming_strings off
        // its strings' backslashes are read otherwise, and it cannot be told.
        let representation = standard_strings
            .then(|| statement::representation(sql))
            .flatten()
            .map(|r| r.in_session(data_encoding(session)));
        // The pinned settings that shape this end's text, where a query since the startup named
        // one: asked in the COPY's own Query, at no round trip.
        let shaping: &[&str] = match direction {
            Direction::ToStdout => &SHAPE_WRITING,
            Direction::FromStdin => &SHAPE_READING,
        };
        let pinned = session
            .settings_named()
            .then(|| session.config().unreported().only(shaping))
            .and_then(|pinned| Some((pinned.query()?, pinned)));
        // And after a text COPY OUT: a function its query ran may have set one meanwhile
        // (`set_config('extra_float_digits', '0', false)`: floats written with fewer digits,
        // recheck70 F1), which no ParameterStatus says. (After a line end: the statement may
        // end in a `--` comment.)
        let asked_after = (direction == Direction::ToStdout
            && representation.as_ref().is_none_or(|r| r.format != "binary"))
        .then(|| session.config().unreported().only(&SHAPE_WRITING))
        .and_then(|after| Some((after.query()?, after)));
        let mut query = String::new();
        if read_only {
            query.push_str("SET TRANSACTION READ ONLY; ");
        }
        if let Some((question, _)) = &pinned {
            query.push_str(question);
            query.push_str("; ");
        }
        query.push_str(sql);
        if let Some((question, _)) = &asked_after {
            query.push_str("\n; ");
            query.push_str(question);
        }
        match direction {
            Direction::ToStdout => session.copy_out(&query)?,
            Direction::FromStdin => session.copy_in(&query)?,
        }
        Ok(Self {
            read_only,
            pinned: pinned.map(|(_, pinned)| (pinned, Vec::new())),
            asked_after: asked_after.map(|(_, after)| after),
            started: false,
            format: None,
            representation,
            error: None,
            early: None,
            count: None,
        })
    }

    /// The settings asked after its COPY, for its source to compare: none where the question
    /// before it found one changed already (the start's to refuse, in its words).
    fn asked_after(&self) -> Option<Unreported> {
        self.asked_after
            .clone()
            .filter(|_| self.changed_settings().is_empty())
    }

    /// The pinned settings its question found changed.
    fn changed_settings(&self) -> Vec<String> {
        self.pinned
            .as_ref()
            .map(|(_, changed)| changed.clone())
            .unwrap_or_default()
    }

    /// Takes the session's events and says what to do next.
    ///
    /// # Errors
    /// Why the COPY did not start: the server's error (a missing table, a permission), a
    /// statement that turned out not to be the expected COPY, a closed connection. The session
    /// is ready again afterwards unless it closed.
    pub fn poll(&mut self, session: &mut Session) -> Result<StartStep, SessionError> {
        while let Some(event) = session.poll_event() {
            match event {
                Event::CopyOutStarted { format, .. } | Event::CopyInStarted { format, .. } => {
                    self.started = true;
                    self.format = Some(format);
                }
                Event::Row(row) if !self.started => {
                    if let Some((pinned, changed)) = &mut self.pinned {
                        *changed = pinned.differences(&row);
                    }
                }
                // A COPY OUT over in the read that started it, then the question after it (a
                // setting changed before it is the start's to refuse, in its words).
                Event::Row(row) if self.changed_settings().is_empty() => {
                    if let Some((name, value)) =
                        (self.asked_after.as_ref()).and_then(|after| after.first_changed(&row))
                    {
                        self.error
                            .get_or_insert(SessionError::OutputChanged { name, value });
                    }
                }
                Event::CopyData(bytes) => match &mut self.early {
                    Some(early) => early.extend_from_slice(&bytes),
                    None => self.early = Some(bytes),
                },
                // A change in the read-only transaction: said as the refusal of a change.
                Event::Error(e) if self.read_only && e.code == "25006" => {
                    let said = Some(e.message);
                    self.error =
                        Some(statement::StatementError::WritesOutsideTransaction { said }.into());
                }
                Event::Error(e) => self.error = Some(SessionError::Db(Box::new(e))),
                Event::Failed(e) => self.error = Some(e),
                Event::Closed(e) => return Err(e),
                Event::CancelNeeded => return Ok(StartStep::SendCancel),
                // A COPY OUT of no rows can be over in the read that starts it: the session took
                // its CopyDone, CommandComplete and ReadyForQuery with the CopyOutResponse.
                Event::CommandComplete { tag, rows } if self.started && tag.starts_with("COPY") => {
                    self.count = rows;
                }
                Event::Ready(_) if self.started && self.error.is_none() => {
                    let early = self.early.take();
                    return Ok(StartStep::Started(Started {
                        early,
                        ended: Some(self.count),
                        format: self.format,
                        representation: self.representation.clone(),
                        styles: Styles::of(session),
                        changed_settings: self.changed_settings(),
                        asked_after: self.asked_after(),
                    }));
                }
                Event::Ready(_) => {
                    return Err(self.error.take().unwrap_or_else(|| {
                        SessionError::protocol("the statement ended without starting a COPY")
                    }));
                }
                // Notices and parameter changes do not matter to the start.
                _ => {}
            }
        }
        // A COPY that failed as it started (an error on its first row) is its error, once its
        // ReadyForQuery comes: started without it, the error was lost, and the copy ended
        // "without a row count" or sent the destinations an end of data with no data.
        if self.started && self.error.is_none() {
            Ok(StartStep::Started(Started {
                early: self.early.take(),
                ended: None,
                format: self.format,
                representation: self.representation.clone(),
                styles: Styles::of(session),
                changed_settings: self.changed_settings(),
                asked_after: self.asked_after(),
            }))
        } else {
            Ok(StartStep::ReadMore)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A producer's changed pinned setting refuses every text receiver, a receiver's its own;
    /// binary data is not shaped by them.
    #[test]
    fn changed_pinned_settings_refuse_text() {
        let with = |format: CopyFormat, changed: &[&str]| {
            let mut data = DataFormat::new(format, None);
            data.changed_settings = changed.iter().map(|c| (*c).to_owned()).collect();
            data
        };
        let text = CopyFormat::Text;
        let receivers = [
            (ReceiverId(0), Some(with(text, &[]))),
            (
                ReceiverId(1),
                Some(with(text, &["array_nulls is off, not on"])),
            ),
        ];
        let refused = check_data_formats(Some(&with(text, &[])), &receivers);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, ReceiverId(1));
        assert!(
            refused[0]
                .1
                .to_string()
                .contains("COPY FROM STDIN's session has array_nulls")
        );
        let producer = with(text, &["extra_float_digits is 0, not 3"]);
        let refused = check_data_formats(Some(&producer), &receivers);
        assert_eq!(refused.len(), 2);
        assert!(
            refused
                .iter()
                .all(|(_, e)| e.to_string().contains("written otherwise"))
        );
        let binary = CopyFormat::Binary;
        let receivers = [(
            ReceiverId(0),
            Some(with(binary, &["array_nulls is off, not on"])),
        )];
        let producer = with(binary, &["extra_float_digits is 0, not 3"]);
        assert!(check_data_formats(Some(&producer), &receivers).is_empty());
    }

    #[test]
    fn formats_must_agree_when_known() {
        let text = Some(CopyFormat::Text);
        let binary = Some(CopyFormat::Binary);
        let receivers = [
            (ReceiverId(0), text),
            (ReceiverId(1), binary),
            (ReceiverId(2), None),
        ];
        assert_eq!(
            check_formats(text, receivers),
            [(
                ReceiverId(1),
                FormatMismatch {
                    producer: "text",
                    receiver: "binary"
                }
            )]
        );
        let refused = check_formats(binary, receivers);
        assert_eq!(
            refused.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            [ReceiverId(0)]
        );
        assert_eq!(
            refused[0].1.to_string(),
            "the COPY FROM STDIN takes text data but the COPY TO STDOUT sends binary data: give \
             both the same FORMAT (text and csv go together, binary only with binary)"
        );
        // A producer that does not know its format is not compared.
        assert!(check_formats(None, receivers).is_empty());
    }
}
