use thiserror::Error;

/// Errors from starting or running the network layer.
#[non_exhaustive]
#[derive(Debug, Error)]
pub enum Error {
    /// Binding, listening or configuring the listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address we tried.
        addr: std::net::SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Creating the poller, waker or a thread failed.
    #[error("cannot start event loop: {0}")]
    Setup(#[source] std::io::Error),
}
