//! The broker on a named pipe (`\\.\pipe\tokenhost-<user SID>-broker-<digest>`, see
//! [`socket_path`](crate::broker::socket_path)).
//!
//! Pipe names are global to the machine, so the name alone proves nothing; what keeps
//! the broker one user's:
//! - every instance is created with the owner-only DACL (this user's SID alone, see
//!   `sys::PipeSecurity`), so other users can neither connect nor add instances;
//! - a name that already exists (a broker of ours, or a pipe someone made to catch our
//!   clients) is refused, never joined: a probe first, then the first instance is created
//!   with `FILE_FLAG_FIRST_PIPE_INSTANCE`, which closes the race on Windows (Wine ignores
//!   the flag); and one instance always waits for the next client, so the name is never
//!   released while the broker serves;
//! - `PIPE_REJECT_REMOTE_CLIENTS`: no connections over the network (SMB);
//! - the client checks that the server process runs as this user before it sends
//!   anything, and opens the pipe at `SECURITY_IDENTIFICATION` so a server cannot act
//!   as the client; the server checks its clients the same way (what the Unix broker
//!   does with the peer's uid).

use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::net::windows::named_pipe::{
    ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions,
};
use windows_sys::Win32::Foundation::{ERROR_ACCESS_DENIED, ERROR_PIPE_BUSY};
use windows_sys::Win32::Storage::FileSystem::SECURITY_IDENTIFICATION;

use super::super::{BrokerError, CONNECT_TIMEOUT};
use crate::sys::{
    PipeSecurity, PipeUser, StopSignals, current_user, pipe_client_user, pipe_server_user,
};

/// A connection accepted by a broker.
pub(in crate::broker) type Accepted = NamedPipeServer;
/// A connection to a broker.
pub(in crate::broker) type Connected = NamedPipeClient;

/// How long a client waits between tries while every instance is busy.
const BUSY_RETRY: Duration = Duration::from_millis(5);

/// A broker's pipe.
pub(in crate::broker) struct Listener {
    name: PathBuf,
    security: PipeSecurity,
    /// The instance waiting for the next client.
    next: NamedPipeServer,
}

/// Creates an instance of the pipe `name`, the first one if `first`.
fn create(name: &Path, security: &PipeSecurity, first: bool) -> std::io::Result<NamedPipeServer> {
    let mut options = ServerOptions::new();
    options
        .first_pipe_instance(first)
        .reject_remote_clients(true)
        .access_inbound(true)
        .access_outbound(true);
    // SAFETY: `as_raw` points at a SECURITY_ATTRIBUTES (and its descriptor) that
    // `security` keeps alive for the whole call.
    unsafe { options.create_with_security_attributes_raw(name, security.as_raw()) }
}

impl Listener {
    /// Creates the first instance of the pipe `name` for the broker of `config`, with the
    /// owner-only descriptor. Refuses when the name exists: [`BrokerError::AlreadyServing`]
    /// if a process of ours answers there, [`BrokerError::EndpointTaken`] otherwise.
    pub(in crate::broker) async fn bind(
        name: &Path,
        config: &Path,
    ) -> Result<Listener, BrokerError> {
        let io = |what, source| BrokerError::Io {
            what,
            path: name.to_path_buf(),
            source,
        };
        let security =
            PipeSecurity::owner_only().map_err(|e| io("cannot make the descriptor of", e))?;
        // A name that answers is taken. The first-instance flag below makes that atomic on
        // Windows; Wine does not enforce the flag, so there this probe is the guard.
        match connect(name).await {
            Err(BrokerError::NotRunning { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            probe => return Err(taken(name, config, probe)),
        }
        match create(name, &security, true) {
            Ok(next) => Ok(Listener {
                name: name.to_path_buf(),
                security,
                next,
            }),
            Err(e) if is(&e, ERROR_ACCESS_DENIED) || is(&e, ERROR_PIPE_BUSY) => {
                Err(taken(name, config, connect(name).await))
            }
            Err(e) => Err(io("cannot create the pipe", e)),
        }
    }

    /// The next connection. A new instance takes the connected one's place before it is
    /// returned, so the name stays held.
    pub(in crate::broker) async fn accept(&mut self) -> std::io::Result<Accepted> {
        // Cancel-safe: `connect` is, and nothing after it waits.
        let connected = self.next.connect().await;
        // If no new instance can be made, the connected one stays in `next` (a retry's
        // `connect` returns at once) and the name stays held.
        let fresh = create(&self.name, &self.security, false)?;
        let previous = std::mem::replace(&mut self.next, fresh);
        connected.map(|()| previous)
    }

    /// The waiting instance's handle, for tests that read its descriptor.
    #[cfg(test)]
    pub(in crate::broker) fn handle(&self) -> std::os::windows::io::RawHandle {
        self.next.as_raw_handle()
    }

    /// Stops listening: the name goes once the connections still served are closed.
    pub(in crate::broker) fn close(self) {}
}

/// Why the existing pipe `name` is not ours to serve, from what connecting to it gave.
fn taken(name: &Path, config: &Path, probe: Result<Connected, BrokerError>) -> BrokerError {
    match probe {
        // Not our user's, or we cannot tell whose.
        Err(why @ (BrokerError::WrongPeer { .. } | BrokerError::Io { .. })) => {
            BrokerError::EndpointTaken {
                socket: name.to_path_buf(),
                reason: why.to_string(),
            }
        }
        Err(why @ BrokerError::NotRunning { .. }) if denied(&why) => BrokerError::EndpointTaken {
            socket: name.to_path_buf(),
            reason: why.to_string(),
        },
        // A process of ours answers, or every instance is busy serving.
        _ => BrokerError::AlreadyServing {
            config: config.to_path_buf(),
            socket: name.to_path_buf(),
        },
    }
}

/// Whether connecting failed because the pipe's DACL does not admit us.
fn denied(error: &BrokerError) -> bool {
    matches!(error, BrokerError::NotRunning { source, .. }
        if source.kind() == std::io::ErrorKind::PermissionDenied)
}

fn is(error: &std::io::Error, code: u32) -> bool {
    error.raw_os_error() == Some(code as i32)
}

/// Whether the client of `pipe` runs as this user; `Err` says why not, for the log.
pub(in crate::broker) fn admit(pipe: &Accepted) -> Result<(), String> {
    let ours = current_user().map_err(|e| format!("refused a connection: who am I? ({e})"))?;
    match pipe_client_user(pipe.as_raw_handle()) {
        Ok(peer) if peer == ours => Ok(()),
        Ok(peer) => Err(format!("refused a connection from another user ({peer:?})")),
        Err(e) => Err(format!(
            "refused a connection: cannot tell who the client runs as ({e})"
        )),
    }
}

/// Connects to the broker on the pipe `name` within [`CONNECT_TIMEOUT`], refusing a
/// server that does not run as this user. [`BrokerError::NotRunning`] when there is no
/// such pipe, or every instance stays busy.
pub(in crate::broker) async fn connect(name: &Path) -> Result<Connected, BrokerError> {
    let ours = current_user().map_err(|source| BrokerError::Io {
        what: "cannot read this process's user to connect to",
        path: name.to_path_buf(),
        source,
    })?;
    connect_as(name, &ours).await
}

/// [`connect`], for a client that runs as `ours`.
pub(in crate::broker) async fn connect_as(
    name: &Path,
    ours: &PipeUser,
) -> Result<Connected, BrokerError> {
    let not_running = |source| BrokerError::NotRunning {
        socket: name.to_path_buf(),
        source,
    };
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut options = ClientOptions::new();
    options.security_qos_flags(SECURITY_IDENTIFICATION);
    let pipe = loop {
        match options.open(name) {
            Ok(pipe) => break pipe,
            Err(e) if is(&e, ERROR_PIPE_BUSY) && Instant::now() < deadline => {
                tokio::time::sleep(BUSY_RETRY).await
            }
            Err(e) if is(&e, ERROR_PIPE_BUSY) => {
                return Err(not_running(std::io::ErrorKind::TimedOut.into()));
            }
            Err(e) => return Err(not_running(e)),
        }
    };
    let peer = pipe_server_user(pipe.as_raw_handle()).map_err(|source| BrokerError::Io {
        what: "cannot tell who serves",
        path: name.to_path_buf(),
        source,
    })?;
    if peer != *ours {
        return Err(BrokerError::WrongPeer {
            ours: format!("{ours:?}"),
            peer: format!("{peer:?}"),
        });
    }
    Ok(pipe)
}

/// Windows has no SIGHUP: a broker reloads by being restarted.
pub(in crate::broker) struct Reload;

impl Reload {
    /// Always `None`: no request to reload can come.
    pub(in crate::broker) async fn recv(&mut self) -> Option<()> {
        None
    }
}

/// Installs the handlers that stop a broker (Ctrl+C, Ctrl+Break, the console closing,
/// logoff or shutdown: see [`StopSignals`]; no reload, see [`Reload`]).
pub(in crate::broker) fn control() -> Result<(StopSignals, Reload), BrokerError> {
    let stop = StopSignals::install()
        .map_err(|e| BrokerError::Transport(format!("cannot install a console handler: {e}")))?;
    Ok((stop, Reload))
}
