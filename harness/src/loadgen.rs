//! A small HTTP/1.1 load client for the benchmarks: keep-alive connections over
//! plain TCP, requests prepared as bytes, answers read by `Content-Length`, latency
//! recorded in an HdrHistogram. It costs the process far less than a general client
//! (no pool, no header map per request), so a throughput measured through it is the
//! server's, as `wrk` would measure it, and the same client drives both sides of a
//! comparison.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request ready to send: method, target and headers, and its body.
#[derive(Debug, Clone)]
pub struct Prepared(Vec<u8>);

impl Prepared {
    /// `method target` with `headers` (Host, Content-Length and keep-alive added).
    pub fn new(method: &str, target: &str, headers: &[(&str, String)], body: &[u8]) -> Self {
        let mut head = format!("{method} {target} HTTP/1.1\r\nhost: bench\r\ncontent-length: {}\r\n", body.len());
        for (name, value) in headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        Self(bytes)
    }

    /// The same request with one more header (a request that varies, such as an
    /// `Idempotency-Key` per request, from one prepared template).
    pub fn with_header(&self, name: &str, value: &str) -> Self {
        let end = find(&self.0, b"\r\n\r\n").map_or(self.0.len(), |e| e + 2);
        let mut bytes = Vec::with_capacity(self.0.len() + name.len() + value.len() + 4);
        bytes.extend_from_slice(&self.0[..end]);
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(&self.0[end..]);
        Self(bytes)
    }
}

/// One keep-alive connection.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    /// Read space (zeroed once, reused) and how much of it the current answer fills.
    buf: Vec<u8>,
    filled: usize,
}

/// What an answer was: status and body length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// The HTTP status.
    pub status: u16,
    /// Bytes of body read.
    pub body_len: usize,
}

impl Connection {
    /// Connects to `addr` (no delay on writes).
    pub async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buf: vec![0; 16 * 1024], filled: 0 })
    }

    /// Sends `req` and reads its answer whole.
    pub async fn exchange(&mut self, req: &Prepared) -> std::io::Result<Answered> {
        self.stream.write_all(&req.0).await?;
        self.filled = 0;
        let (head_end, status, length) = loop {
            if let Some(end) = find(&self.buf[..self.filled], b"\r\n\r\n") {
                let (status, length) = parse_head(&self.buf[..end])?;
                break (end + 4, status, length);
            }
            if self.read_more().await? == 0 {
                return Err(closed());
            }
        };
        while self.filled < head_end + length {
            if self.read_more().await? == 0 {
                return Err(closed());
            }
        }
        Ok(Answered { status, body_len: length })
    }

    async fn read_more(&mut self) -> std::io::Result<usize> {
        if self.filled == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.stream.read(&mut self.buf[self.filled..]).await?;
        self.filled += n;
        Ok(n)
    }
}

fn closed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the server closed the connection")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The status and `Content-Length` of a response head (no chunked answers: every
/// system here sends whole bodies).
fn parse_head(head: &[u8]) -> std::io::Result<(u16, usize)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let text = std::str::from_utf8(head).map_err(|_| bad("a response head that is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut length = 0;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().map_err(|_| bad("a Content-Length that is not a number"))?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(bad("a chunked answer (the bench client reads Content-Length only)"));
            }
        }
    }
    Ok((status, length))
}

/// Latency in microseconds, 1 µs to an hour, three significant digits (a peak
/// day's report-to-SMS delays run to minutes: a 60 s bound clamped them all).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| Histogram::new(3).expect("a histogram"))
}

/// What a closed-loop run measured.
#[derive(Debug, Clone)]
pub struct Saturation {
    /// Answers with the expected status.
    pub ok: u64,
    /// Answers with another status, or failed exchanges.
    pub errors: u64,
    /// How long it ran.
    pub elapsed: Duration,
    /// Latency of every exchange, microseconds.
    pub latency: Histogram<u64>,
    /// The first unexpected status or error, if any.
    pub first_error: Option<String>,
}

impl Saturation {
    /// Good answers per second.
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at `q` (0-1), in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Keeps `connections` connections busy for `duration` (closed loop, as `wrk`):
/// each sends `make(n)` for its n-th request as soon as the previous answer is
/// read, and counts answers whose status is `expect`. A broken connection is
/// reopened and counted as an error.
pub async fn saturate<F>(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    expect: u16,
    make: F,
) -> anyhow::Result<Saturation>
where
    F: Fn(u64) -> Prepared + Send + Sync + 'static,
{
    let make = std::sync::Arc::new(make);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections.max(1) {
        let make = make.clone();
        tasks.spawn(async move {
            let mut latency = latency_histogram();
            let (mut ok, mut errors, mut first_error) = (0u64, 0u64, None);
            let mut conn = Connection::open(addr).await?;
            let mut n = c as u64;
            while Instant::now() < deadline {
                let req = make(n);
                n += connections as u64;
                let t0 = Instant::now();
                match conn.exchange(&req).await {
                    Ok(a) if a.status == expect => {
                        ok += 1;
                        latency.saturating_record(t0.elapsed().as_micros() as u64);
                    }
                    Ok(a) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("status {}", a.status));
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                        conn = Connection::open(addr).await?;
                    }
                }
            }
            anyhow::Ok((ok, errors, latency, first_error))
        });
    }
    let mut total =
        Saturation { ok: 0, errors: 0, elapsed: Duration::ZERO, latency: latency_histogram(), first_error: None };
    while let Some(done) = tasks.join_next().await {
        let (ok, errors, latency, first_error) = done??;
        total.ok += ok;
        total.errors += errors;
        total.latency.add(&latency).map_err(|e| anyhow::anyhow!("merging latencies: {e}"))?;
        if total.first_error.is_none() {
            total.first_error = first_error;
        }
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_gives_its_status_and_length_whatever_the_case_of_the_names() {
        assert_eq!(parse_head(b"HTTP/1.1 201 Created\r\nCONTENT-LENGTH: 12\r\nx: y").expect("head"), (201, 12));
        assert_eq!(parse_head(b"HTTP/1.1 204 No Content\r\ndate: now").expect("head"), (204, 0));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked").is_err());
        assert!(parse_head(b"garbage").is_err());
    }

    #[test]
    fn a_header_added_to_a_prepared_request_goes_in_its_head() {
        // The body holds a blank line of its own: only the head's end counts.
        let base = Prepared::new("POST", "/x", &[("a", "1".to_owned())], b"a\r\n\r\nb");
        let keyed = base.with_header("idempotency-key", "bench-7");
        assert_eq!(
            String::from_utf8(keyed.0).expect("text"),
            "POST /x HTTP/1.1\r\nhost: bench\r\ncontent-length: 6\r\na: 1\r\nidempotency-key: bench-7\r\n\r\na\r\n\r\nb"
        );
    }

    #[test]
    fn delays_of_minutes_are_kept_not_clamped() {
        let mut h = latency_histogram();
        h.saturating_record(383_900_000);
        let p50 = h.value_at_quantile(0.5);
        assert!((383_000_000..=384_500_000).contains(&p50), "{p50}");
    }

    #[tokio::test]
    async fn a_connection_reads_each_answer_whole_and_keeps_alive() {
        let app = axum::Router::new().route("/echo", axum::routing::post(|body: String| async move { body }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut conn = Connection::open(addr).await.expect("connect");
        for size in [0usize, 10, 20_000] {
            let body = "x".repeat(size);
            let a = conn.exchange(&Prepared::new("POST", "/echo", &[], body.as_bytes())).await.expect("answer");
            assert_eq!(a, Answered { status: 200, body_len: size });
        }
        let run = saturate(addr, 4, Duration::from_millis(200), 200, |n| {
            Prepared::new("POST", "/echo", &[], n.to_string().as_bytes())
        })
        .await
        .expect("a run");
        assert!(run.ok > 10 && run.errors == 0, "{run:?}");
        assert!(run.latency.len() == run.ok);
    }
}
