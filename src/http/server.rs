//! Serving connections within bounds: a cap on open connections, a deadline for a request's
//! headers, an idle keep-alive timeout, a deadline for a request's body, and an accept loop that
//! outlives running out of file descriptors.
//!
//! - **Headers**: a connection's first request must have sent its whole head within the header
//!   timeout of the connection being accepted; a later one within the header timeout of its
//!   first byte. A client that stalls is disconnected, so stalled connections cannot pile up.
//! - **Keep-alive**: a connection with no request under way (response fully sent) and no byte of
//!   a next one is closed after the keep-alive timeout.
//! - **Body**: a request's body must have arrived within the body timeout of its head; if not,
//!   the answer is 408 `request_timeout` and the connection closes.
//! - **Early answers** (413 on a body over its cap, 401, 408, any answer ready before the whole
//!   body was read): the rest of the body is read and discarded, up to the linger bounds in
//!   bytes, time and idle time, before the connection closes, as nginx's lingering close does.
//!   Without it, a client that writes its whole body before reading (Python's `urllib` and
//!   `requests`, Node's `fetch`) meets a reset connection instead of the answer.
//! - **Connections**: at most `max_connections` at once; beyond that, new ones wait in the
//!   listen backlog until one closes.
//! - **Accept errors** (out of file descriptors, say) never stop the server: it waits briefly
//!   and accepts again.
//!
//! On shutdown, accepting stops, idle connections close, and requests under way finish (each is
//! bounded by the timeouts above).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Version};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::error::{ApiError, ErrorCode};

/// How long the accept loop waits after an error such as running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The bounds every connection is served within.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// `HUME_ACTION_HEADER_TIMEOUT_SECS`.
    pub header_timeout: Duration,
    /// `HUME_ACTION_BODY_TIMEOUT_SECS`.
    pub body_timeout: Duration,
    /// `HUME_ACTION_KEEPALIVE_SECS`.
    pub keepalive: Duration,
    /// `HUME_ACTION_MAX_CONNECTIONS`, after fitting it to the file limit.
    pub max_connections: usize,
    /// How much of a body answered early is read before the connection closes.
    pub linger: Linger,
}

/// The bounds of reading and discarding the rest of a body answered early.
#[derive(Debug, Clone, Copy)]
pub struct Linger {
    /// `HUME_ACTION_LINGER_BYTES`.
    pub bytes: u64,
    /// `HUME_ACTION_LINGER_SECS`: in all.
    pub time: Duration,
    /// `HUME_ACTION_LINGER_IDLE_SECS`: with nothing arriving.
    pub idle: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests under way finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = open.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection (out of file descriptors?); retrying shortly");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let service = hyper::service::service_fn({
            let (router, activity) = (router.clone(), activity.clone());
            move |request: Request<Incoming>| handle(router.clone(), activity.clone(), limits, request)
        });
        let io = TokioIo::new(Watched { stream, activity: activity.clone() });
        let connection = auto::Builder::new(TokioExecutor::new()).serve_connection(io, service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, "connection ended with an error");
                    }
                }
                reason = activity.expired(&limits) => tracing::debug!(reason, "connection closed"),
            }
            drop(permit);
        });
    }
    drop(listener);
    // Every request under way is bounded by the body timeout and the linger time, and its answer
    // is sent promptly.
    let grace = limits.header_timeout + limits.body_timeout + limits.linger.time;
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections were still open {grace:?} after shutdown began; closing them");
    }
    Ok(())
}

/// Accept errors that concern one connection only, not the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

/// One request: its body under the body deadline, the connection busy until the answer is sent
/// and what an early answer left of the body has been read.
async fn handle(
    router: Router,
    activity: Arc<Activity>,
    limits: ConnectionLimits,
    request: Request<Incoming>,
) -> Result<Response, Infallible> {
    let busy = Busy::new(activity.clone());
    let expects_continue =
        request.headers().get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let http1 = request.version() < Version::HTTP_2;
    let timed_out = Arc::new(AtomicBool::new(false));
    let sleep = Box::pin(tokio::time::sleep(limits.body_timeout));
    let flag = timed_out.clone();
    let (parts, body) = request.into_parts();
    let body = SharedBody::new(body);
    let deadline_body = DeadlineBody { body: Body::new(body.clone()), sleep, timed_out: flag };
    let mut response = router.oneshot(Request::from_parts(parts, Body::new(deadline_body))).await?;
    if timed_out.load(Ordering::SeqCst) {
        response = body_timeout_answer(limits.body_timeout);
    }
    if let Some(rest) = body.left_unread(expects_continue) {
        if http1 {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        tokio::spawn(linger(rest, limits.linger, Busy::new(activity)));
    }
    Ok(response.map(|body| Body::new(Tracked { body, _busy: busy })))
}

/// Reads and discards what is left of a body answered early, within `bounds`, keeping the
/// connection busy meanwhile; dropping the body then lets hyper close the connection (at once if
/// the client is still sending).
async fn linger(mut body: Incoming, bounds: Linger, _busy: Busy) {
    let until = Instant::now() + bounds.time;
    let mut read = 0u64;
    let stopped = loop {
        let next = std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx));
        match tokio::time::timeout_at((Instant::now() + bounds.idle).min(until), next).await {
            Err(_) if Instant::now() >= until => break "HUME_ACTION_LINGER_SECS",
            Err(_) => break "HUME_ACTION_LINGER_IDLE_SECS",
            Ok(None) => break "the end of the body",
            Ok(Some(Err(_))) => break "a broken body",
            Ok(Some(Ok(frame))) => {
                read += frame.data_ref().map_or(0, |data| data.len() as u64);
                if read > bounds.bytes {
                    break "HUME_ACTION_LINGER_BYTES";
                }
            }
        }
    };
    tracing::debug!(read, stopped, "read the rest of a body answered early");
}

/// The answer to a request whose body did not arrive in time; the connection closes after it.
fn body_timeout_answer(limit: Duration) -> Response {
    let message = format!(
        "The request body did not arrive within {} s (HUME_ACTION_BODY_TIMEOUT_SECS); send it again over a faster connection, or send less.",
        limit.as_secs_f64()
    );
    let mut response = ApiError::BadRequest { code: ErrorCode::RequestTimeout, message }.into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// What a connection is doing, for its idle and header deadlines.
struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

struct State {
    /// Requests whose answer is not fully sent.
    busy: usize,
    /// Requests answered so far.
    served: u64,
    /// Since when nothing has been under way (accepted, or the last answer sent).
    idle_since: Instant,
    /// When the first byte arrived since then.
    read_while_idle: Option<Instant>,
}

impl Activity {
    fn new() -> Self {
        let state = State { busy: 0, served: 0, idle_since: Instant::now(), read_while_idle: None };
        Self { state: Mutex::new(state), changed: Notify::new() }
    }

    fn read(&self) {
        let mut state = self.state.lock().expect("not poisoned");
        if state.busy == 0 && state.read_while_idle.is_none() {
            state.read_while_idle = Some(Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    /// When the connection must close unless something happens first, and why.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, &'static str)> {
        let state = self.state.lock().expect("not poisoned");
        match (state.busy, state.served, state.read_while_idle) {
            (1.., _, _) => None,
            (0, 0, _) => Some((state.idle_since + limits.header_timeout, "the request head did not arrive in time")),
            (0, _, Some(first_byte)) => {
                Some((first_byte + limits.header_timeout, "the request head did not arrive in time"))
            }
            (0, _, None) => Some((state.idle_since + limits.keepalive, "idle keep-alive timeout")),
        }
    }

    /// Resolves when the connection has been idle or stalled past its deadline.
    async fn expired(&self, limits: &ConnectionLimits) -> &'static str {
        loop {
            let changed = self.changed.notified();
            match self.deadline(limits) {
                None => changed.await,
                Some((at, reason)) if at <= Instant::now() => return reason,
                Some((at, _)) => {
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
            }
        }
    }
}

/// A request under way on a connection, until its answer has been sent (or dropped).
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: Arc<Activity>) -> Self {
        activity.state.lock().expect("not poisoned").busy += 1;
        activity.changed.notify_one();
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().expect("not poisoned");
        state.busy -= 1;
        if state.busy == 0 {
            state.served += 1;
            state.idle_since = Instant::now();
            state.read_while_idle = None;
        }
        drop(state);
        self.0.changed.notify_one();
    }
}

/// A response body that keeps its connection busy until it has been sent.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body shared by the router, which reads what it needs, and the connection, which
/// reads the rest after an early answer ([`linger`]).
#[derive(Clone)]
struct SharedBody(Arc<Mutex<Unread>>);

struct Unread {
    body: Option<Incoming>,
    /// Whether the router asked for the body (hyper then sent `100 Continue` if it was expected).
    polled: bool,
    /// Whether the body's end was read.
    ended: bool,
}

impl SharedBody {
    fn new(body: Incoming) -> Self {
        Self(Arc::new(Mutex::new(Unread { body: Some(body), polled: false, ended: false })))
    }

    /// The rest of the body, unless it was all read, or the client waits for a `100 Continue`
    /// that was never sent (it sends no body then, and hyper closes the connection).
    fn left_unread(&self, expects_continue: bool) -> Option<Incoming> {
        let mut unread = self.0.lock().expect("not poisoned");
        let all_read = unread.ended || unread.body.as_ref().is_none_or(http_body::Body::is_end_stream);
        if all_read || (expects_continue && !unread.polled) {
            return None;
        }
        unread.body.take()
    }
}

impl http_body::Body for SharedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut unread = self.0.lock().expect("not poisoned");
        unread.polled = true;
        let Some(body) = unread.body.as_mut() else { return Poll::Ready(None) };
        let poll = Pin::new(body).poll_frame(cx);
        if matches!(poll, Poll::Ready(None)) {
            unread.ended = true;
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        let unread = self.0.lock().expect("not poisoned");
        unread.ended || unread.body.as_ref().is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let unread = self.0.lock().expect("not poisoned");
        unread.body.as_ref().map_or_else(|| SizeHint::with_exact(0), http_body::Body::size_hint)
    }
}

/// A request body that fails once its deadline has passed.
struct DeadlineBody {
    body: Body,
    sleep: Pin<Box<Sleep>>,
    timed_out: Arc<AtomicBool>,
}

/// The error a [`DeadlineBody`] ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimeout;

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.timed_out.store(true, Ordering::SeqCst);
                Poll::Ready(Some(Err(axum::Error::new(BodyTimeout))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A connection's socket, telling its [`Activity`] when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
