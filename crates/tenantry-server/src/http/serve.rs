//! Where connections enter: the accept loop, with the limits that keep slow,
//! idle or too many clients from holding the server's connections.
//!
//! - at most `max_connections` connections are served at once: the loop
//!   accepts the next one only when a slot is free, so further clients wait
//!   in the kernel's listen backlog (or are refused when it is full);
//! - a request's headers must arrive within `header_read_timeout` (hyper's
//!   timer, which also bounds the wait for the next request on a kept-alive
//!   connection), else the connection is closed;
//! - a kept-alive connection with no request in flight is closed after
//!   `idle_timeout`;
//! - a connection whose socket takes none of a pending response for
//!   `write_timeout` (a client that stopped reading, say one pipelining
//!   requests without reading the answers) is closed: hyper waits on such a
//!   write for ever, and neither the header-read timer nor the idle timer nor
//!   graceful shutdown would end it ([`WriteTimeout`]);
//! - request body and whole-request timeouts are middleware (see
//!   [`super::router`]), so they answer problem+json.
//!
//! Shutdown is graceful: no new connections, idle ones are closed, in-flight
//! requests finish (a response the client does not take still fails at
//! `write_timeout`); [`serve`] returns once every connection has closed.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::Service;

/// The connection limits, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `stop` turns true, then closes every
/// connection gracefully and returns when the last one is gone.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        // A free slot first, then a connection: over the cap, clients queue
        // in the backlog instead of holding a socket the server ignores.
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off
                    // instead of spinning.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            serve_connection(stream, remote, app, limits, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    // Every connection holds one slot: all of them free means all closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::default());
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            let busy = Busy::start(Arc::clone(&activity));
            let mut app = app.clone();
            async move {
                let response = app.call(req).await;
                drop(busy);
                response
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        .serve_connection(
            TokioIo::new(WriteTimeout::new(stream, limits.write_timeout)),
            service,
        );
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    // Timeouts, resets, malformed requests: the client's
                    // doing, not the server's.
                    tracing::debug!(error = %err, %remote, "connection closed with an error");
                }
                return;
            }
            _ = stop.wait_for(|stop| *stop), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = activity.idle_for(limits.idle_timeout), if !closing => {
                // Closes the connection now if it is between requests, or
                // after the response being written.
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// Whether a connection has a request in flight, and since when it has not.
struct Activity {
    in_flight: AtomicUsize,
    last_done: Mutex<Instant>,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            last_done: Mutex::new(Instant::now()),
        }
    }
}

impl Activity {
    /// Resolves once no request has been in flight for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let last = self
                .last_done
                .lock()
                .map(|t| *t)
                .unwrap_or_else(|e| *e.into_inner());
            let wake = if self.in_flight.load(Ordering::Acquire) > 0 {
                Instant::now() + timeout
            } else {
                let deadline = last + timeout;
                if Instant::now() >= deadline {
                    return;
                }
                deadline
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

/// Marks a request in flight on its connection until dropped.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Ok(mut last) = self.0.last_done.lock() {
            *last = Instant::now();
        }
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A stream whose writes fail with [`io::ErrorKind::TimedOut`] once they have
/// been pending (the socket's send buffer full, the client not reading) for
/// `timeout` without a byte accepted. Hyper then drops the connection, which
/// frees its slot. Reads pass through: their limits are hyper's timer and the
/// middleware.
struct WriteTimeout<S> {
    inner: S,
    timeout: Duration,
    /// When the pending write fails; armed on the first `Pending` of a write,
    /// disarmed by any progress.
    deadline: Pin<Box<Sleep>>,
    armed: bool,
}

impl<S> WriteTimeout<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
        }
    }
}

impl<S: AsyncWrite + Unpin> WriteTimeout<S> {
    /// Runs one write-side poll of the inner stream under the deadline.
    fn timed<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut S>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll(Pin::new(&mut self.inner), cx) {
            Poll::Ready(result) => {
                self.armed = false;
                Poll::Ready(result)
            }
            Poll::Pending => {
                if !self.armed {
                    self.deadline.as_mut().reset(Instant::now() + self.timeout);
                    self.armed = true;
                }
                match self.deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client took none of the response within the write timeout",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().timed(cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .timed(cx, |s, cx| s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().timed(cx, |s, cx| s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().timed(cx, |s, cx| s.poll_shutdown(cx))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TIMEOUT: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn a_write_the_peer_never_takes_times_out() {
        let (near, mut far) = tokio::io::duplex(16);
        let mut stream = WriteTimeout::new(near, TIMEOUT);
        // Fills the pipe; the rest stays pending until the deadline.
        let started = Instant::now();
        let err = stream.write_all(&[0u8; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= TIMEOUT);
        // Reads are not limited by it.
        far.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hi");
    }

    #[tokio::test]
    async fn a_slow_but_steady_reader_is_not_cut_off() {
        let (near, mut far) = tokio::io::duplex(16);
        let mut stream = WriteTimeout::new(near, TIMEOUT);
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            let mut total = 0;
            while total < 64 {
                tokio::time::sleep(TIMEOUT / 3).await;
                total += far.read(&mut buf).await.unwrap();
            }
        });
        // 64 bytes through a 16-byte pipe drained every 100 ms: longer than
        // the timeout in all, never that long without progress.
        stream.write_all(&[0u8; 64]).await.unwrap();
        stream.flush().await.unwrap();
        reader.await.unwrap();
    }
}
