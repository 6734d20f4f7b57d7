//! The codec's error: postcard's error of the same kind (what postcard
//! would return for the same value or bytes), and, built only when
//! something fails, the message behind it and where in the value it arose.
//! Postcard's own error drops the text of a type's `Serialize` or
//! `Deserialize` (`custom("…")`, and the `invalid_type`, `invalid_value`,
//! `unknown_variant`… of derived implementations, which serde builds on
//! `custom`); this one keeps it, for `Error::Encode` and `Error::Decode`.

use std::fmt;

use serde::{de, ser};

use super::MAX_DEPTH;

/// An encoding or decoding failure: one pointer, so that a `Result` of it
/// is no larger than one of postcard's error was where it matters (see the
/// size assertions below). [`FULL`](Self::FULL), which the stack encoder
/// returns as a matter of course for a long key, allocates nothing; every
/// other error is a box, made only when something fails.
#[derive(Debug)]
pub(crate) enum CodecError {
    /// The stack buffer is full (postcard's `SerializeBufferFull`).
    Full,
    /// Anything else.
    Failed(Box<Failure>),
}

// A `Result` of the codec costs what a `Result` of postcard's error did:
// two registers at most, also for the `Option` a sequence's element is.
const _: () = assert!(size_of::<std::result::Result<(), CodecError>>() <= 16);
const _: () = assert!(size_of::<std::result::Result<u64, CodecError>>() <= 16);
const _: () = assert!(size_of::<std::result::Result<Option<u64>, CodecError>>() <= 16);

/// What failed, the text of it, and where it happened.
#[derive(Debug)]
pub(crate) struct Failure {
    /// Postcard's error of the same kind.
    kind: postcard::Error,
    /// The message of the type or of the codec; empty: the kind's own text.
    message: String,
    /// The fields and elements the failure is inside, innermost first.
    path: Vec<Step>,
}

/// One level of where a failure happened.
#[derive(Debug)]
enum Step {
    /// A field of a struct or struct variant.
    Field(&'static str),
    /// An element of a sequence, tuple or tuple struct.
    Index(usize),
    /// An element of a sequence, tuple or struct, `n` elements before its
    /// end: the decoder's element loop does not count up, so the caller
    /// that knows the length (or the field names) turns this into one of
    /// the above ([`CodecError::resolve`]).
    Before(usize),
}

/// The result type of the codec.
pub(crate) type Result<T> = std::result::Result<T, CodecError>;

/// How many levels of a long path are shown at each end.
const PATH_ENDS: usize = 6;

impl CodecError {
    /// The stack buffer is full (the encoding goes to the heap instead).
    pub(crate) const FULL: CodecError = CodecError::Full;

    /// Postcard's error of the same kind.
    #[cfg(test)]
    pub(crate) fn kind(&self) -> &postcard::Error {
        match self {
            CodecError::Full => &postcard::Error::SerializeBufferFull,
            CodecError::Failed(f) => &f.kind,
        }
    }

    /// Whether this is [`FULL`](Self::FULL).
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        matches!(self, CodecError::Full)
    }

    /// An error of `kind` with `message` in place of the kind's text.
    #[cold]
    #[inline(never)]
    pub(crate) fn with_message(kind: postcard::Error, message: String) -> CodecError {
        CodecError::Failed(Box::new(Failure { kind, message, path: Vec::new() }))
    }

    /// The error of a value nested deeper than [`MAX_DEPTH`]: `kind` is
    /// `SerdeSerCustom` on the way in, `SerdeDeCustom` on the way out.
    #[cold]
    #[inline(never)]
    pub(crate) fn too_deep(kind: postcard::Error) -> CodecError {
        let message = format!(
            "values nested more than {MAX_DEPTH} levels deep \
             (each option, newtype, tuple, struct, sequence, map and enum is a level)"
        );
        CodecError::with_message(kind, message)
    }

    /// This error, inside field `name` of a struct.
    #[cold]
    #[inline(never)]
    pub(crate) fn in_field(self, name: &'static str) -> CodecError {
        self.inside(Step::Field(name))
    }

    /// This error, inside the element `left` elements before the end of a
    /// sequence, tuple or struct; [`resolve`](Self::resolve) names it.
    #[cold]
    #[inline(never)]
    pub(crate) fn before_end(self, left: usize) -> CodecError {
        self.inside(Step::Before(left))
    }

    /// Names the element that [`before_end`](Self::before_end) marked, if
    /// this error came out of one: of a struct with `fields`, or (with no
    /// fields) of a sequence or tuple of `len` elements.
    #[cold]
    #[inline(never)]
    pub(crate) fn resolve(mut self, len: usize, fields: &'static [&'static str]) -> CodecError {
        if let CodecError::Failed(f) = &mut self
            && let Some(step) = f.path.last_mut()
            && let Step::Before(left) = *step
        {
            let i = len.saturating_sub(left + 1);
            *step = match fields.get(i) {
                Some(&name) => Step::Field(name),
                None => Step::Index(i),
            };
        }
        self
    }

    fn inside(mut self, step: Step) -> CodecError {
        // A full stack buffer is not a failure: it must stay cheap.
        if let CodecError::Failed(f) = &mut self {
            f.path.push(step);
        }
        self
    }

    /// Postcard's error and the text for `Error::Encode`'s and
    /// `Error::Decode`'s `detail` (this error's `Display`).
    pub(crate) fn into_parts(self) -> (postcard::Error, String) {
        let detail = self.to_string();
        match self {
            CodecError::Full => (postcard::Error::SerializeBufferFull, detail),
            CodecError::Failed(f) => (f.kind, detail),
        }
    }
}

/// The error for a value read whole with `n > 0` of its stored bytes after
/// it: they are not one value of the type read (postcard's
/// `DeserializeBadEncoding`).
#[cold]
#[inline(never)]
pub(crate) fn left_over(n: usize) -> CodecError {
    let s = if n == 1 { "" } else { "s" };
    let message = format!("{n} byte{s} left over after the value: the stored bytes are not one value of this type");
    CodecError::with_message(postcard::Error::DeserializeBadEncoding, message)
}

impl From<postcard::Error> for CodecError {
    #[cold]
    #[inline(never)]
    fn from(kind: postcard::Error) -> CodecError {
        match kind {
            postcard::Error::SerializeBufferFull => CodecError::Full,
            kind => CodecError::Failed(Box::new(Failure { kind, message: String::new(), path: Vec::new() })),
        }
    }
}

/// The message (or the kind's text), then where, the outermost level
/// first: "… (at `items[3].name`)".
impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failure = match self {
            CodecError::Full => return fmt::Display::fmt(&postcard::Error::SerializeBufferFull, f),
            CodecError::Failed(failure) => failure,
        };
        if failure.message.is_empty() {
            fmt::Display::fmt(&failure.kind, f)?;
        } else {
            f.write_str(&failure.message)?;
        }
        let path = &failure.path;
        if path.is_empty() {
            return Ok(());
        }
        f.write_str(" (at `")?;
        let n = path.len();
        for (i, step) in path.iter().rev().enumerate() {
            if n > 2 * PATH_ENDS && i == PATH_ENDS {
                f.write_str("…")?;
            }
            if n > 2 * PATH_ENDS && (PATH_ENDS..n - PATH_ENDS).contains(&i) {
                continue;
            }
            match step {
                Step::Field(name) if i == 0 => f.write_str(name)?,
                Step::Field(name) => write!(f, ".{name}")?,
                Step::Index(index) => write!(f, "[{index}]")?,
                // Not left by the decoder, which resolves every one.
                Step::Before(left) => write!(f, "[{left} before the end]")?,
            }
        }
        f.write_str("`)")
    }
}

impl std::error::Error for CodecError {}

impl ser::Error for CodecError {
    #[cold]
    fn custom<T: fmt::Display>(msg: T) -> CodecError {
        CodecError::with_message(postcard::Error::SerdeSerCustom, msg.to_string())
    }
}

impl de::Error for CodecError {
    #[cold]
    fn custom<T: fmt::Display>(msg: T) -> CodecError {
        CodecError::with_message(postcard::Error::SerdeDeCustom, msg.to_string())
    }
}
