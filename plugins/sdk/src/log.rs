//! Lines in the host's log, tagged by the host with the provider id.
//!
//! Use the macros ([`info!`](crate::info), [`warn!`](crate::warn), ...) or [`write()`].
//! Never log a secret: the host's log is read by people and shipped to log stores.
//! The host caps the length of a line and the number of lines per call.

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Details for debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something a person may want to look at.
    Warn,
    /// A failure.
    Error,
}

/// Writes `message` to the host's log at `level`. Natively (in unit tests) there is no
/// host: the line goes to stderr.
pub fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::bindings::tokenhost::plugin::host::{self, LogLevel};
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        host::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Logs a line at trace level: `trace!("{} keys", n)`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Trace, &::std::format!($($arg)+)) };
}

/// Logs a line at debug level: `debug!("{} keys", n)`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Debug, &::std::format!($($arg)+)) };
}

/// Logs a line at info level: `info!("refreshed ({reason})")`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Info, &::std::format!($($arg)+)) };
}

/// Logs a line at warn level: `warn!("ignoring key `{key}`")`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Warn, &::std::format!($($arg)+)) };
}

/// Logs a line at error level: `error!("{e}")`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Error, &::std::format!($($arg)+)) };
}
