//! HTTPS for the emulator: loads a PEM certificate chain and private key into a rustls server
//! configuration (ring provider only), and a [`TlsListener`] that lets `axum::serve` speak TLS.
//!
//! Handshakes run in their own tasks, bounded by a timeout, so a slow or broken client can
//! neither stall other connections nor take the server down: a failed handshake is logged at
//! debug level and the connection is dropped. Only finished handshakes reach axum, which keeps
//! graceful shutdown exactly as it is for plain HTTP.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::EmulatorError;
use super::config::TlsFiles;

/// How long a client may take to finish the TLS handshake before its connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for axum to pick them up.
const READY_QUEUE: usize = 64;
/// Pause after an accept error that is not about one connection (e.g. too many open files).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Reads the PEM files and builds the server configuration (HTTP/1.1 over TLS 1.2 or 1.3).
pub(crate) fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, EmulatorError> {
    let cert_pem = read(&files.cert)?;
    let key_pem = read(&files.key)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(&files.cert, "certificate", e))?;
    if chain.is_empty() {
        return Err(EmulatorError::Tls(format!(
            "{} holds no PEM certificate",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| pem_error(&files.key, "private key", e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| {
            EmulatorError::Tls(format!(
                "certificate {} and key {} cannot be used: {e}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
    // The router is served over HTTP/1.1 only (axum is built without HTTP/2).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(path: &Path) -> Result<Vec<u8>, EmulatorError> {
    std::fs::read(path).map_err(|source| EmulatorError::TlsFile {
        path: path.to_owned(),
        source,
    })
}

fn pem_error(path: &Path, what: &str, error: pem::Error) -> EmulatorError {
    match error {
        pem::Error::NoItemsFound => {
            EmulatorError::Tls(format!("{} holds no PEM {what}", path.display()))
        }
        other => EmulatorError::Tls(format!(
            "{} is not a valid PEM {what}: {other}",
            path.display()
        )),
    }
}

/// A TCP listener whose connections come out already TLS-wrapped. A background task accepts
/// TCP connections and hands each to its own handshake task; finished handshakes queue here.
/// Dropping the listener (as `axum::serve` does on shutdown) closes the queue, which stops the
/// accept task and so frees the port.
pub(crate) struct TlsListener {
    local_addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accept_task: JoinHandle<()>,
}

impl TlsListener {
    pub(crate) fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let accept_task = tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx));
        Ok(Self {
            local_addr,
            ready,
            accept_task,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept task only ends once this receiver is gone (or if it panicked): there
            // will be no more connections, and axum expects accept to wait rather than fail.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

type Ready = mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>;

async fn accept_loop(tcp: TcpListener, acceptor: TlsAcceptor, ready: Ready) {
    loop {
        let accepted = tokio::select! {
            () = ready.closed() => return,
            accepted = tcp.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(handshake(acceptor.clone(), stream, peer, ready.clone()));
            }
            Err(e) if is_connection_error(&e) => {
                tracing::debug!(error = %e, "TLS listener: connection failed during accept");
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS listener: accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

async fn handshake(acceptor: TlsAcceptor, stream: TcpStream, peer: SocketAddr, ready: Ready) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "could not disable Nagle's algorithm");
    }
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            // Fails only when the server is shutting down; the connection is then dropped.
            ready.send((tls, peer)).await.ok();
        }
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path, cert: &str, key: &str) -> TlsFiles {
        let cert_path = dir.join("cert.pem");
        let key_path = dir.join("key.pem");
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        TlsFiles {
            cert: cert_path,
            key: key_path,
        }
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "losant-emulator-tls-unit-{tag}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn missing_files_name_the_path() {
        let err = server_config(&TlsFiles {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        })
        .unwrap_err();
        assert!(matches!(err, EmulatorError::TlsFile { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    }

    #[test]
    fn files_without_pem_are_refused() {
        let dir = temp_dir("nopem");
        let err = server_config(&files(&dir, "not pem", "not pem either")).unwrap_err();
        assert!(matches!(err, EmulatorError::Tls(_)), "{err}");
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
