//! The connection limits of `serve` (issue 16): a client that starts a request and never
//! finishes its headers loses the connection after the header-read timeout, and at the
//! connection cap no further connection is served until one closes. Bounds are wide: they
//! prove the limits act, not how fast.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use incidencias::listen::{Limits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A server of "ok" with `limits`; dropping the sender stops it.
async fn start(limits: Limits) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let app = Router::new().route("/", get(|| async { "ok" }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, app, limits, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// A connection that sent half a request's headers.
async fn slow_client(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: prueba\r\nX-Lento: ")
        .await
        .expect("partial headers");
    s
}

/// Reads until the server closes the connection or `limit` passes; what arrived, and
/// whether it closed.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into(), false),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_loses_the_connection() {
    let (addr, _stop) = start(Limits {
        header_read_timeout: Duration::from_secs(1),
        max_connections: 16,
    })
    .await;
    let started = Instant::now();
    let mut slow = slow_client(addr).await;
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    let took = started.elapsed();
    assert!(closed, "the server closed the connection");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(6),
        "closed after the 1 s timeout, not before and not much later: {took:?}"
    );
    // A client that sends its request in time is served as always.
    let mut ok = TcpStream::connect(addr).await.expect("connect");
    ok.write_all(b"GET / HTTP/1.1\r\nHost: prueba\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let (answer, _) = read_until_closed(&mut ok, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_a_new_connection_waits_until_one_closes() {
    let (addr, _stop) = start(Limits {
        header_read_timeout: Duration::from_secs(2),
        max_connections: 2,
    })
    .await;
    let mut held = vec![slow_client(addr).await, slow_client(addr).await];
    // Both held connections are taken before the third arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(addr)
        .await
        .expect("queued by the kernel");
    third
        .write_all(b"GET / HTTP/1.1\r\nHost: prueba\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let (early, closed) = read_until_closed(&mut third, Duration::from_millis(800)).await;
    assert!(
        early.is_empty() && !closed,
        "not served while two connections are open: {early:?}"
    );
    // The held connections time out; the waiting one is then served.
    let (answer, _) = read_until_closed(&mut third, Duration::from_secs(10)).await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "served after: {answer:?}"
    );
    for s in &mut held {
        let (_, closed) = read_until_closed(s, Duration::from_secs(5)).await;
        assert!(closed);
    }
}
