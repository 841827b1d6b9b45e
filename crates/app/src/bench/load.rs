//! A small HTTP/1.1 load generator: N keep-alive connections, each sending one request,
//! reading the whole answer, and again, for a fixed time. Enough for our own endpoints
//! (Content-Length bodies), with no dependency and no tool to install.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One measurement's outcome.
#[derive(Debug, Clone)]
pub struct Load {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Sorted, shortest first.
    pub latencies: Vec<Duration>,
}

impl Load {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        super::percentile_ms(&self.latencies, p)
    }
}

/// Builds the request bytes for the `n`-th request of a connection.
pub type RequestFn = Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync>;

/// Runs `connections` connections against `addr` for `duration`; a status other than
/// `expect` counts as an error.
pub async fn run(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    expect: u16,
    request: RequestFn,
) -> Load {
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let Ok(mut stream) = TcpStream::connect(addr).await else {
                return (latencies, 1);
            };
            let _ = stream.set_nodelay(true);
            let mut buf = Vec::with_capacity(16 * 1024);
            let mut n = (c as u64) << 32;
            while Instant::now() < end {
                n += 1;
                let t = Instant::now();
                if stream.write_all(&request(n)).await.is_err() {
                    errors += 1;
                    break;
                }
                match read_response(&mut stream, &mut buf).await {
                    Some(status) if status == expect => latencies.push(t.elapsed()),
                    Some(_) => errors += 1,
                    None => {
                        errors += 1;
                        break;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            all.extend(l);
            errors += e;
        }
    }
    all.sort();
    Load {
        requests: all.len() as u64,
        errors,
        elapsed: start.elapsed(),
        latencies: all,
    }
}

/// Reads one response (headers, then a Content-Length body); returns its status.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<u16> {
    buf.clear();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..header_end]).ok()?;
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut have = buf.len() - header_end;
    while have < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        have += n;
    }
    Some(status)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
