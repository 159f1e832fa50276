//! The broker's transport: the one part of the broker that differs per OS.
//!
//! The protocol ([`server`](super::server), [`client`](super::client)) is HTTP/1.1 over
//! any byte stream; this module gives it the stream and decides who may be at the other
//! end. Both sides provide the same small interface:
//!
//! - [`Accepted`] and [`Connected`]: the two ends of a connection (a Unix socket, or a
//!   named pipe instance);
//! - [`Listener::bind`] takes a config's endpoint for one broker alone, refusing when a
//!   broker already serves it, and [`Listener::accept`] waits for the next connection;
//!   [`Listener::close`] releases the endpoint;
//! - [`admit`]: whether the client of an accepted connection runs as this user;
//! - [`connect`]: a connection to the broker at an endpoint within
//!   [`CONNECT_TIMEOUT`](super::CONNECT_TIMEOUT), refused unless the server runs as this
//!   user;
//! - [`control`]: what tells a broker to stop and to reload.
//!
//! Unix: a socket file in a private directory, `flock` against a second broker,
//! `SO_PEERCRED`/`getpeereid`, signals. Windows: a named pipe created with an owner-only
//! DACL, `FILE_FLAG_FIRST_PIPE_INSTANCE` and `PIPE_REJECT_REMOTE_CLIENTS`, the user of
//! the process at the other end, Ctrl+C/close/shutdown events.

#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

#[cfg(unix)]
pub(super) use unix::*;
#[cfg(windows)]
pub(super) use windows::*;
