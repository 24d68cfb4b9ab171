//! Ingestion errors, each with a stable machine-readable code.

use flywheel_core::ErrorCode;

/// Why a payload was refused (or could not be stored).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not valid JSON.
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The body is not valid UTF-8.
    #[error("body is not valid UTF-8 at byte {0}")]
    InvalidUtf8(usize),
    /// The gzip body could not be decompressed.
    #[error("body could not be gunzipped: {0}")]
    InvalidGzip(String),
    /// A message is larger than the per-message limit.
    #[error("message {index} is {size} bytes; the limit is {limit} bytes per message")]
    MessageTooLarge {
        /// Position in the batch.
        index: usize,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The request is larger than the batch limit.
    #[error("request body is larger than the limit of {limit} bytes")]
    BatchTooLarge {
        /// The limit.
        limit: usize,
    },
    /// A batch with no messages.
    #[error("batch is empty: send at least one message in \"batch\"")]
    EmptyBatch,
    /// A message field is wrong.
    #[error("message {index}: {reason}")]
    InvalidMessage {
        /// Position in the batch (0 for single-message endpoints).
        index: usize,
        /// Stable code of the problem.
        code: ErrorCode,
        /// What is wrong, for a human.
        reason: String,
    },
    /// The write queue is full: the server is overloaded.
    #[error("ingestion queue is full; retry later")]
    Overloaded,
    /// The server is shutting down.
    #[error("server is shutting down")]
    ShuttingDown,
    /// Storing failed.
    #[error(transparent)]
    Store(#[from] flywheel_store::Error),
    /// An import's `--map` is malformed or names a column the file does not have.
    #[error("{0}")]
    InvalidMapping(String),
    /// Reading an import file failed.
    #[error("cannot read {path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// The stable code of this error, as the API returns it.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidJson(_) => ErrorCode::InvalidJson,
            Error::InvalidUtf8(_) => ErrorCode::InvalidUtf8,
            Error::InvalidGzip(_) => ErrorCode::InvalidGzip,
            Error::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
            Error::BatchTooLarge { .. } => ErrorCode::BatchTooLarge,
            Error::EmptyBatch => ErrorCode::EmptyBatch,
            Error::InvalidMessage { code, .. } => *code,
            Error::Overloaded => ErrorCode::Overloaded,
            Error::ShuttingDown => ErrorCode::ShuttingDown,
            Error::Store(e) => e.code(),
            Error::Io { .. } => ErrorCode::IoError,
            // Only `flywheel import` reads a mapping: an option's value is malformed.
            Error::InvalidMapping(_) => ErrorCode::InvalidQuery,
        }
    }

    /// Whether the client is at fault (4xx) rather than the server (5xx).
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            Error::Overloaded | Error::ShuttingDown | Error::Store(_) | Error::Io { .. }
        )
    }

    pub(crate) fn invalid(index: usize, code: ErrorCode, reason: impl Into<String>) -> Error {
        Error::InvalidMessage {
            index,
            code,
            reason: reason.into(),
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
