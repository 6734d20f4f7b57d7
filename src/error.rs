//! The one error type of emds.

use std::io;
use std::path::{Path, PathBuf};

use crate::codec::CodecError;

/// The result type of every fallible emds operation.
///
/// # Examples
///
/// ```
/// use emds::EmList;
///
/// fn total(list: &EmList<u64>) -> emds::Result<u64> {
///     list.iter().sum()
/// }
/// # let dir = std::env::temp_dir().join(format!("emds-doc-result-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let mut l: EmList<u64> = EmList::open(&dir)?;
/// l.extend([1, 2, 3])?;
/// assert_eq!(total(&l)?, 6);
/// # drop(l);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), emds::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in emds.
///
/// Every variant names what failed and, where there is one, the path of the
/// store involved. The enum is `#[non_exhaustive]`: match with a `_` arm
/// (and [`Encode`](Error::Encode) and [`Decode`](Error::Decode), which may
/// gain fields, with `..`).
///
/// # Examples
///
/// ```
/// use emds::{EmDict, Error};
///
/// let dir = tempfile_dir();
/// let first = EmDict::<u64, u64>::open(&dir).unwrap();
/// // A second writer on the same store is refused at once.
/// match EmDict::<u64, u64>::open(&dir) {
///     Err(Error::Locked { path }) => assert!(path.starts_with(&dir)),
///     other => panic!("expected Locked, got {other:?}"),
/// }
/// drop(first);
/// # fn tempfile_dir() -> std::path::PathBuf {
/// #     let d = std::env::temp_dir().join(format!("emds-doc-error-{}", std::process::id()));
/// #     let _ = std::fs::remove_dir_all(&d);
/// #     d
/// # }
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What emds was doing, such as "fsync" or "create segment".
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The error the operating system returned.
        #[source]
        source: io::Error,
    },

    /// The store is locked by another handle, in this process or another.
    ///
    /// Locks belong to open file descriptions (`flock`): a child process that a
    /// thread forks while a store is open holds a copy of the lock until it
    /// calls `exec`, so a reopen racing with a `fork` can briefly see `Locked`.
    #[error("store {path} is locked by another handle")]
    Locked {
        /// The lock file that could not be taken.
        path: PathBuf,
    },

    /// A write was attempted on a store opened read-only.
    #[error("store {path} is open read-only")]
    ReadOnly {
        /// The store's directory.
        path: PathBuf,
    },

    /// A file of the store is damaged: a checksum, length or structure check failed.
    #[error("store {path} is corrupted: {what}")]
    Corrupted {
        /// The file in which the damage was found.
        path: PathBuf,
        /// What was found to be wrong.
        what: String,
    },

    /// The directory holds something that is not an emds store of a format this
    /// build reads: a foreign file, a newer format version, another page size.
    #[error("{path} is not a store this version of emds can open: {what}")]
    Incompatible {
        /// The file that was rejected.
        path: PathBuf,
        /// Why it was rejected.
        what: String,
    },

    /// The store holds another kind of structure, or another element type,
    /// than the one it was opened as.
    #[error("store {path} holds {found}, not {expected}")]
    WrongKind {
        /// The store's directory.
        path: PathBuf,
        /// What the caller opened it as.
        expected: String,
        /// What the store holds.
        found: String,
    },

    /// A key, value or element could not be encoded: its `Serialize`
    /// implementation failed, or it nests more than 512 levels deep.
    ///
    /// The variant may gain fields: match it with `..`.
    ///
    /// # Examples
    ///
    /// The message of the `Serialize` implementation is kept, with the field
    /// it came from; nothing was stored:
    ///
    /// ```
    /// use emds::{EmDict, Error};
    /// use serde::{Deserialize, Serialize, Serializer, ser};
    ///
    /// #[derive(Serialize, Deserialize, Debug)]
    /// struct Config {
    ///     #[serde(serialize_with = "absolute")]
    ///     root: String,
    /// }
    ///
    /// fn absolute<S: Serializer>(path: &str, s: S) -> Result<S::Ok, S::Error> {
    ///     if !path.starts_with('/') {
    ///         return Err(ser::Error::custom(format!("path must be absolute: {path}")));
    ///     }
    ///     s.serialize_str(path)
    /// }
    ///
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-encode-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut d: EmDict<u64, Config> = EmDict::open(&dir)?;
    /// let e = d.insert(1, Config { root: "etc".into() }).unwrap_err();
    /// match &e {
    ///     Error::Encode { what, detail, .. } => {
    ///         assert_eq!(*what, "value");
    ///         assert_eq!(detail, "path must be absolute: etc (at `root`)");
    ///     }
    ///     other => panic!("{other}"),
    /// }
    /// assert_eq!(e.to_string(), "cannot encode value: path must be absolute: etc (at `root`)");
    /// assert_eq!(d.len(), 0);
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    #[error("cannot encode {what}: {detail}")]
    #[non_exhaustive]
    Encode {
        /// What was being encoded, such as "key", "value" or "element".
        what: &'static str,
        /// What went wrong, in words: the message of the `Serialize`
        /// implementation (such as "path must be absolute") or of the
        /// encoder (such as "values nested more than 512 levels deep …"),
        /// followed by the struct field it happened in, when there is one
        /// (such as "… (at `config.root`)").
        detail: String,
        /// Postcard's error of the same kind (`SerdeSerCustom` for a
        /// message of the `Serialize` implementation).
        #[source]
        source: postcard::Error,
    },

    /// Stored bytes could not be decoded as the requested type: the store was
    /// written with another type, or its bytes are damaged.
    ///
    /// The variant may gain fields: match it with `..`.
    ///
    /// # Examples
    ///
    /// A dict written with one value type and opened with another: the error
    /// says what is wrong and in which field.
    ///
    /// ```
    /// use emds::{EmDict, Error};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Before { name: String, level: u8 }
    ///
    /// #[derive(Serialize, Deserialize, Debug)]
    /// enum Level { Low, High }
    ///
    /// #[derive(Serialize, Deserialize, Debug)]
    /// struct After { name: String, level: Level }
    ///
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-decode-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut d: EmDict<u64, Before> = EmDict::open(&dir)?;
    /// d.insert(1, Before { name: "x".into(), level: 7 })?;
    /// d.close()?;
    ///
    /// let d: EmDict<u64, After> = EmDict::open(&dir)?;
    /// match d.get(&1) {
    ///     Err(Error::Decode { detail, .. }) => assert_eq!(
    ///         detail,
    ///         "invalid value: integer `7`, expected variant index 0 <= i < 2 (at `level`)"
    ///     ),
    ///     other => panic!("{other:?}"),
    /// }
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    #[error("cannot decode {what} in {path}: {detail}")]
    #[non_exhaustive]
    Decode {
        /// The store's directory.
        path: PathBuf,
        /// Which entry failed, such as "value of entry 12 in bucket 0x1000" or "element 7".
        what: String,
        /// What went wrong, in words: the message of the `Deserialize`
        /// implementation (such as "invalid value: integer `7`, expected
        /// variant index 0 <= i < 2") or of the decoder (such as "Hit the
        /// end of buffer, expected more data", or "values nested more than
        /// 512 levels deep …"), followed by the struct field or element it
        /// happened in, when there is one (such as "… (at `items[3].name`)").
        detail: String,
        /// Postcard's error of the same kind (`SerdeDeCustom` for a
        /// message of the `Deserialize` implementation).
        #[source]
        source: postcard::Error,
    },

    /// An index was out of range for a write.
    #[error("index {index} out of range for length {len}")]
    IndexOutOfBounds {
        /// The index given.
        index: u64,
        /// The length at the time.
        len: u64,
    },

    /// An earlier flush failed to reach the disk; the handle refuses further
    /// writes, because what is on disk is no longer known. Reopen the store.
    #[error("store {path} is poisoned by an earlier failed flush: {cause}")]
    Poisoned {
        /// The store's directory.
        path: PathBuf,
        /// The error that poisoned the handle.
        cause: String,
    },

    /// The store has grown past a limit of the format.
    #[error("store {path} is full: {what}")]
    Full {
        /// The store's directory.
        path: PathBuf,
        /// Which limit was reached.
        what: String,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    pub(crate) fn corrupted(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::Corrupted { path: path.into(), what: what.into() }
    }

    pub(crate) fn incompatible(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::Incompatible { path: path.into(), what: what.into() }
    }

    /// The error for `what` (such as "key"), which failed to encode.
    #[cold]
    #[inline(never)]
    pub(crate) fn encode(what: &'static str, e: CodecError) -> Self {
        let (source, detail) = e.into_parts();
        Error::Encode { what, detail, source }
    }

    /// The error for `what` (such as "element 7") in the store at `path`,
    /// which failed to decode.
    #[cold]
    #[inline(never)]
    pub(crate) fn decode(path: &Path, what: String, e: CodecError) -> Self {
        let (source, detail) = e.into_parts();
        Error::Decode { path: path.to_path_buf(), what, detail, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_sync_static() {
        fn assert<T: Send + Sync + 'static + std::error::Error>() {}
        assert::<Error>();
    }

    #[test]
    fn messages_name_the_path() {
        let e = Error::corrupted("/x/meta", "bad checksum");
        assert_eq!(e.to_string(), "store /x/meta is corrupted: bad checksum");
    }
}
