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
    arrived: Arc<Notify>,
    release: watch::Sender<bool>,
}

impl SlowHost {
    pub async fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (requests, arrived) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let (release, released) = watch::channel(false);
        let (count, notify) = (requests.clone(), arrived.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (count, notify, released) = (count.clone(), notify.clone(), released.clone());
                tokio::spawn(async move {
                    let _ = serve(socket, answer, count, notify, released).await;
                });
            }
        });
        Self { addr, requests, arrived, release }
    }

    /// The URL of `path` on this host.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests whose head arrived so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
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
    notify: Arc<Notify>,
    mut released: watch::Receiver<bool>,
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
    count.fetch_add(1, Ordering::SeqCst);
    notify.notify_waiters();
    match answer {
        Answer::Held { body } => {
            if released.wait_for(|go| *go).await.is_err() {
                return Ok(());
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
