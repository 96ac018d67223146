//! Connection admission: a bounded number of open connections per listener, and a deadline
//! for the first bytes of each.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Bytes a client must send within the handshake deadline: the length of the HTTP/2 client
/// preface (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`); any HTTP/1 request line and `Host` are longer.
pub const FIRST_BYTES: usize = 24;

/// Pause after a failed `accept` (such as EMFILE, out of file descriptors), so the loop does
/// not spin while nothing can be accepted.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The open connections of one listener.
pub struct Admission {
    name: &'static str,
    max: usize,
    permits: Arc<Semaphore>,
    handshake_timeout: Duration,
    refused: AtomicU64,
    unlogged: AtomicU64,
    /// Milliseconds after `epoch` of the last log line about refusals (0: none yet).
    logged_at: AtomicU64,
    epoch: Instant,
}

impl Admission {
    /// At most `max` connections at once, each with `handshake_timeout` for its first bytes.
    pub fn new(name: &'static str, max: usize, handshake_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            name,
            max,
            permits: Arc::new(Semaphore::new(max)),
            handshake_timeout,
            refused: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
            logged_at: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// `io`, counted against the limit until it is dropped; `None` when the limit is reached
    /// (`io` is dropped, which closes it).
    pub fn admit<IO>(&self, io: IO) -> Option<Guarded<IO>> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Some(Guarded {
                io,
                _permit: permit,
                deadline: Some(Box::pin(tokio::time::sleep(self.handshake_timeout))),
                awaited: FIRST_BYTES,
            }),
            Err(_) => {
                self.refuse();
                None
            }
        }
    }

    fn refuse(&self) {
        let total = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        self.unlogged.fetch_add(1, Ordering::Relaxed);
        // +1: the first refusal is logged at once.
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        let last = self.logged_at.load(Ordering::Relaxed);
        if (last == 0 || now >= last + 1000)
            && self
                .logged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let closed = self.unlogged.swap(0, Ordering::Relaxed);
            tracing::warn!(
                service = self.name,
                closed,
                total,
                max_connections = self.max,
                "connection limit reached: new connections closed"
            );
        }
    }

    /// Connections refused since the start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    /// The next admitted connection of `listener` (with Nagle's algorithm off: a small
    /// response must not wait for the client's delayed ACK, about 40 ms per call otherwise).
    /// Connections over the limit are closed here and never returned.
    pub async fn accept(
        &self,
        listener: &TcpListener,
    ) -> (Guarded<TcpStream>, std::net::SocketAddr) {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                    }
                    if let Some(admitted) = self.admit(stream) {
                        return (admitted, peer);
                    }
                }
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    tracing::error!(service = self.name, error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }

    /// Admitted connections of `listener`, as a stream (for tonic's server).
    pub fn incoming(
        self: Arc<Self>,
        listener: TcpListener,
    ) -> impl futures::Stream<Item = io::Result<Guarded<TcpStream>>> {
        futures::stream::unfold((self, listener), |(admission, listener)| async move {
            let (io, _) = admission.accept(&listener).await;
            Some((Ok(io), (admission, listener)))
        })
    }
}

/// A failed connection, not a failed listener: try the next one at once.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// An admitted connection: holds its place under the limit until dropped, and fails its reads
/// with `TimedOut` if the first [`FIRST_BYTES`] have not arrived by the handshake deadline.
pub struct Guarded<IO> {
    io: IO,
    _permit: OwnedSemaphorePermit,
    deadline: Option<Pin<Box<Sleep>>>,
    /// Bytes still awaited before the deadline is lifted.
    awaited: usize,
}

impl<IO> Guarded<IO> {
    pub fn get_ref(&self) -> &IO {
        &self.io
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no complete handshake before the deadline",
            )));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        let read = buf.filled().len() - before;
        if this.deadline.is_some() {
            this.awaited = this.awaited.saturating_sub(read);
            if this.awaited == 0 {
                this.deadline = None;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<IO: tonic::transport::server::Connected> tonic::transport::server::Connected for Guarded<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}
