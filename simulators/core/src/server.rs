//! Serving a simulator's router on a listener, with clean shutdown and bounded
//! connections.
//!
//! A small accept loop over hyper rather than `axum::serve`, for two reasons: a
//! fault rule may ask to drop the connection without an answer, and only a
//! connection-level service can do that (it fails the connection instead of
//! writing a response); and each listener keeps its connections within
//! [`Limits`]:
//!
//! - **headers in time**: a client has `header_timeout` to send a request's
//!   headers, and a kept-alive connection may sit idle that long between requests;
//!   then it is closed (a socket that sends half a request and waits is not held);
//! - **a cap per listener**: at `max_connections` open, a new connection closes the
//!   oldest one that is *idle* (no request being served: waiting for headers or for
//!   the next request), so health checks and real callers still get in while
//!   thousands of sockets sit idle; when every connection is serving a request the
//!   newcomer is refused at once with `503` problem+json and `Retry-After: 1`.
//!
//! The body's own deadline (`body_timeout`) is kept by the boundary layer, which
//! reads the body ([`crate::boundary`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tower::ServiceExt;

use crate::boundary::DropConnection;

/// Error that makes hyper close a connection without answering.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by a fault rule")]
struct Dropped;

/// How a listener bounds its connections (`[connections]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Time to send a request's headers; also the longest idle wait between requests.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_connections: 1024, header_timeout: Duration::from_secs(10) }
    }
}

/// One open connection: how many requests it is serving now, and how to close it.
#[derive(Default)]
struct Slot {
    in_flight: AtomicUsize,
    close: Notify,
}

/// Counts a request in flight on its connection for as long as it lives.
struct Serving(Arc<Slot>);

impl Serving {
    fn new(slot: &Arc<Slot>) -> Self {
        slot.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(slot.clone())
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The open connections of one listener, oldest first.
#[derive(Default)]
struct Open {
    slots: Mutex<BTreeMap<u64, Arc<Slot>>>,
    next: AtomicU64,
}

impl Open {
    /// Makes room for one more connection under `max`: `Some(id, slot)` to serve it,
    /// `None` when every open connection is serving a request (refuse it).
    fn admit(&self, max: usize) -> Option<(u64, Arc<Slot>)> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if slots.len() >= max.max(1) {
            let idle = slots.iter().find(|(_, s)| s.in_flight.load(Ordering::SeqCst) == 0).map(|(id, _)| *id)?;
            if let Some(evicted) = slots.remove(&idle) {
                // `notify_one` keeps the wake-up if the task is not waiting yet.
                evicted.close.notify_one();
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot::default());
        slots.insert(id, slot.clone());
        Some((id, slot))
    }

    fn close(&self, id: u64) {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
}

/// The answer to a connection over the cap, written before reading anything.
fn refusal() -> Vec<u8> {
    let body = br#"{"type":"urn:ecosim:problem:too-many-connections","title":"Service Unavailable","status":503,"detail":"every connection this system accepts is serving a request; try again in a moment"}"#;
    let mut out = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

async fn refuse(mut stream: TcpStream) {
    let write = async {
        stream.write_all(&refusal()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// Serves `app` on `listener` within the default [`Limits`] until `shutdown`
/// completes, then lets open requests finish (for up to 5 seconds).
pub async fn serve(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    serve_within(listener, app, Limits::default(), shutdown).await
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then lets
/// open requests finish (for up to 5 seconds).
pub async fn serve_within(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let open = Arc::new(Open::default());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors and the like: wait a moment rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let Some((id, slot)) = open.admit(limits.max_connections) else {
                    tokio::spawn(refuse(stream));
                    continue;
                };
                let app = app.clone();
                let serving_slot = slot.clone();
                let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                    let app = app.clone();
                    let serving = Serving::new(&serving_slot);
                    // Who is on the other end (per-client limits read it).
                    req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                    async move {
                        let response = app.oneshot(req.map(Body::new)).await.unwrap_or_else(|never| match never {});
                        drop(serving);
                        if response.extensions().get::<DropConnection>().is_some() {
                            Err(Dropped)
                        } else {
                            Ok(response)
                        }
                    }
                });
                let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                let open = open.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = connection => {}
                        () = slot.close.notified() => {}
                    }
                    open.close(id);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_the_cap_the_oldest_idle_connection_makes_room_and_busy_ones_are_kept() {
        let open = Open::default();
        let (a, slot_a) = open.admit(2).expect("room");
        let (_b, slot_b) = open.admit(2).expect("room");
        let busy_a = Serving::new(&slot_a);
        // a is serving a request: b (idle) is the one closed.
        let (_c, slot_c) = open.admit(2).expect("room made");
        assert_eq!(open.slots.lock().expect("lock").len(), 2);
        assert!(open.slots.lock().expect("lock").contains_key(&a));
        let told = tokio::time::timeout(Duration::from_millis(10), slot_b.close.notified()).await;
        assert!(told.is_ok(), "b was told to close");
        let _busy_c = Serving::new(&slot_c);
        // Both open connections are serving: refused.
        assert!(open.admit(2).is_none());
        drop(busy_a);
        assert!(open.admit(2).is_some(), "a is idle again");
    }

    #[test]
    fn the_refusal_is_a_complete_problem_answer() {
        let text = String::from_utf8(refusal()).expect("text");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let problem: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(problem["status"], 503);
    }
}
