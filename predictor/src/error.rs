//! The crate's error type: every failure a caller can cause (bad spec, malformed file, bad model
//! directory, too little data) is a variant here, never a panic.
use std::path::PathBuf;

/// Errors returned by the predictor crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed input text (CSV or JSON) at a 1-based line and column.
    #[error("{source_name}: line {line}, column {column}: {message}")]
    Parse {
        source_name: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A workload spec string that does not parse.
    #[error("bad workload spec {spec:?}: {message}")]
    Spec { spec: String, message: String },
    /// Reading a file handed to us failed.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not enough history to train or evaluate.
    #[error("not enough data: {0}")]
    TooLittleData(String),
    /// An argument out of its valid range.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A saved model that does not match what this version expects.
    #[error("bad model at {path}: {message}")]
    Model { path: PathBuf, message: String },
    /// An error inside candle (tensor shapes, safetensors).
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// An online update is already running.
    #[error("an online update is already running")]
    Busy,
}

/// Shorthand for results in this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
