//! A loopback file host the test controls, for what wiremock cannot do: answers held until the
//! test releases them, and bodies that drip one byte a second.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

/// How the host answers every request.
#[derive(Clone, Copy)]
pub enum Answer {
    /// `body` as `text/plain`, once [`SlowHost::release`] was called.
    Held { body: &'static str },
    /// A `text/plain` body announced as 1 MB that comes one byte a second (120 bytes at most).
    Drip,
}

/// A running host; it stops with the test's runtime.
pub struct SlowHost {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    open: Arc<Open>,
    arrived: Arc<Notify>,
    release: watch::Sender<bool>,
}

/// Requests open now (head arrived; answer not yet sent, client still there), and the most ever.
#[derive(Default)]
struct Open {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl SlowHost {
    pub async fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (requests, open, arrived) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(Open::default()), Arc::new(Notify::new()));
        let (release, released) = watch::channel(false);
        let (count, notify, opened) = (requests.clone(), arrived.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (count, notify, opened, released) =
                    (count.clone(), notify.clone(), opened.clone(), released.clone());
                tokio::spawn(async move {
                    let _ = serve(socket, answer, count, opened, notify, released).await;
                });
            }
        });
        Self { addr, requests, open, arrived, release }
    }

    /// The URL of `path` on this host.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests whose head arrived so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The most requests that were open at once: a request is open from its head's arrival until
    /// its answer is sent or its client goes away.
    pub fn most_open(&self) -> usize {
        self.open.most.load(Ordering::SeqCst)
    }

    /// Waits (bounded) until at least `n` request heads have arrived.
    pub async fn wait_for_requests(&self, n: usize) {
        let wait = async {
            loop {
                let arrived = self.arrived.notified();
                if self.requests() >= n {
                    return;
                }
                arrived.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(120), wait)
            .await
            .unwrap_or_else(|_| panic!("the host never got {n} requests (got {})", self.requests()));
    }

    /// Lets held answers (and every later one) go.
    pub fn release(&self) {
        self.release.send_replace(true);
    }
}

async fn serve(
    mut socket: TcpStream,
    answer: Answer,
    count: Arc<AtomicUsize>,
    open: Arc<Open>,
    notify: Arc<Notify>,
    released: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let now_open = open.now.fetch_add(1, Ordering::SeqCst) + 1;
    open.most.fetch_max(now_open, Ordering::SeqCst);
    count.fetch_add(1, Ordering::SeqCst);
    notify.notify_waiters();
    let answered = answer_request(&mut socket, answer, released, &mut buf).await;
    open.now.fetch_sub(1, Ordering::SeqCst);
    answered
}

async fn answer_request(
    socket: &mut TcpStream,
    answer: Answer,
    mut released: watch::Receiver<bool>,
    buf: &mut [u8],
) -> std::io::Result<()> {
    match answer {
        Answer::Held { body } => {
            tokio::select! {
                go = released.wait_for(|go| *go) => {
                    if go.is_err() {
                        return Ok(());
                    }
                }
                // The client went away (killed): its request is over. (A body, such as a
                // callback's, is read and dropped on the way.)
                _ = async { while matches!(socket.read(buf).await, Ok(n) if n > 0) {} } => return Ok(()),
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(reply.as_bytes()).await
        }
        Answer::Drip => {
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1000000\r\nconnection: close\r\n\r\n";
            socket.write_all(head.as_bytes()).await?;
            for _ in 0..120 {
                socket.write_all(b"a").await?;
                tokio::time::sleep(Duration::from_secs(1)).await; // the drip itself, not a wait on state
            }
            Ok(())
        }
    }
}
