//! The HTTP server loop of the hub and of the simulator.
//!
//! Written here rather than `axum::serve` because that one gives hyper no timer, so hyper's
//! header-read timeout never runs: a connection left idle between requests (a platform's
//! keep-alive pool after a burst) or one sending its headers a byte at a time stays open for
//! good, each holding its buffers. Here a connection waiting too long for a request's headers
//! is closed; past a number of open connections new ones are answered once and closed, with
//! five seconds to send their request, so a burst's connections do not outlive it; and past a
//! larger number none is accepted until one closes, so that connections never take the
//! descriptors the database and the platforms need ([`Limits`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// What a server allows its connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a connection may wait for a request's headers, between requests or within one.
    pub idle: Duration,
    /// Open connections beyond which a new connection serves one request and is closed, and
    /// has only [`Limits::crowded_idle`] to send it.
    pub keep_alive_limit: usize,
    /// How long a connection accepted past the keep-alive limit may wait for its request's
    /// headers: a crowd of idle connections turns over in seconds rather than holding every
    /// place for [`Limits::idle`].
    pub crowded_idle: Duration,
    /// Open connections past which none is accepted until one closes: new ones wait in the
    /// listen queue instead of taking the descriptors the database and the platforms need.
    pub max_open: usize,
}

/// Descriptors kept for all but incoming connections: the database pools (up to 22
/// connections), the platform clients' connections (the relay delivers up to 256 lanes at
/// once), files and the runtime's own.
const RESERVED_DESCRIPTORS: u64 = 512;
/// The keep-alive limit where descriptors are plenty: each kept connection holds buffers.
const KEEP_ALIVE_MOST: usize = 1024;

impl Limits {
    /// The limits of a server that may use `descriptors` open files: at most all but those
    /// reserved, and never more than half of them, for its connections.
    pub fn for_descriptors(descriptors: u64) -> Self {
        let max_open = descriptors
            .saturating_sub(RESERVED_DESCRIPTORS)
            .max(descriptors / 2)
            .max(1);
        let max_open = usize::try_from(max_open).unwrap_or(usize::MAX);
        Self {
            idle: Duration::from_secs(30),
            keep_alive_limit: (max_open / 2).min(KEEP_ALIVE_MOST),
            // Long enough for a request sent while the hub is busy: at one second, the relay
            // bench's request for /metrics to a hub setting up 1,000 new chats went unanswered.
            crowded_idle: Duration::from_secs(5),
            max_open,
        }
    }
}

/// Raises the process's soft limit on open files to its hard limit, and returns the limit
/// then in force. Services are often started with a soft limit of 1,024, which a few hundred
/// idle connections next to the database's and the platforms' exhaust; the hard limit is what
/// the operator allowed.
pub fn raise_open_file_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    // What Linux allows an unlimited hard limit to be raised to by default (`fs.nr_open`).
    const UNLIMITED: u64 = 1 << 20;
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(UNLIMITED);
    let hard = limit.maximum.unwrap_or(UNLIMITED);
    if soft >= hard {
        return soft;
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(hard),
            maximum: limit.maximum,
        },
    ) {
        Ok(()) => {
            tracing::info!(from = soft, to = hard, "raised the open-file limit");
            hard
        }
        Err(error) => {
            tracing::warn!(%error, limit = soft, "cannot raise the open-file limit");
            soft
        }
    }
}

/// How long a stop waits for requests in progress (a console's event stream never ends).
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` within `limits` until `stop` resolves, then lets requests in
/// progress finish for a while. Every request carries the peer's address as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    limits: Limits,
    listener: TcpListener,
    router: Router,
    stop: impl Future<Output = ()>,
) {
    let places = Arc::new(Semaphore::new(limits.max_open));
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let place = tokio::select! {
            place = places.clone().acquire_owned() => match place {
                Ok(place) => place,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_per_connection(&error) => continue,
                Err(error) => {
                    // Out of file descriptors or memory: wait rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Answers go out at once: otherwise an answer written in two parts waits for the
        // other side's delayed acknowledgement, 40 ms on Linux.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
        }
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        // This one included.
        let open = limits.max_open - places.available_permits();
        let crowded = open > limits.keep_alive_limit;
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(if crowded {
                limits.crowded_idle
            } else {
                limits.idle
            })
            .keep_alive(!crowded)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::trace!(%error, %peer, "connection ended with an error");
            }
            drop(place);
        });
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!(
            "stopping with requests still open after {} s",
            DRAIN.as_secs()
        );
    }
}

/// Errors of one incoming connection (it was reset before it was accepted), not the listener's.
fn is_per_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: hub\r\n\r\n";

    async fn server(limits: Limits) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let router = Router::new().route(
            "/",
            axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                peer.ip().to_string()
            }),
        );
        tokio::spawn(serve(limits, listener, router, std::future::pending()));
        address
    }

    /// Reads one whole answer (this test's answers are short and not chunked).
    async fn answer(connection: &mut TcpStream) -> String {
        let mut buffer = vec![0; 1024];
        let read = connection.read(&mut buffer).await.unwrap();
        String::from_utf8_lossy(&buffer[..read]).into_owned()
    }

    async fn closed(connection: &mut TcpStream) -> bool {
        let mut buffer = [0; 1];
        matches!(connection.read(&mut buffer).await, Ok(0) | Err(_))
    }

    #[tokio::test]
    async fn a_connection_idle_between_requests_is_closed() {
        let limits = Limits {
            idle: Duration::from_millis(300),
            ..Limits::for_descriptors(4096)
        };
        let address = server(limits).await;
        let mut connection = TcpStream::connect(address).await.unwrap();
        connection.write_all(REQUEST).await.unwrap();
        let first = answer(&mut connection).await;
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        assert!(
            first.ends_with("127.0.0.1"),
            "the peer's address reaches the handler: {first}"
        );
        connection.write_all(REQUEST).await.unwrap();
        assert!(answer(&mut connection).await.starts_with("HTTP/1.1 200"));
        let waited = tokio::time::Instant::now();
        assert!(
            tokio::time::timeout(Duration::from_secs(5), closed(&mut connection))
                .await
                .unwrap()
        );
        assert!(waited.elapsed() >= Duration::from_millis(250));
    }

    #[tokio::test]
    async fn a_connection_sending_no_headers_is_closed() {
        let address = server(Limits {
            idle: Duration::from_millis(300),
            ..Limits::for_descriptors(4096)
        })
        .await;
        let mut connection = TcpStream::connect(address).await.unwrap();
        connection.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_secs(5), closed(&mut connection))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn past_the_limit_a_connection_is_answered_once_and_closed() {
        let address = server(Limits {
            idle: Duration::from_secs(60),
            keep_alive_limit: 2,
            ..Limits::for_descriptors(4096)
        })
        .await;
        let mut kept = Vec::new();
        for _ in 0..2 {
            let mut connection = TcpStream::connect(address).await.unwrap();
            connection.write_all(REQUEST).await.unwrap();
            let first = answer(&mut connection).await;
            assert!(
                !first.to_ascii_lowercase().contains("connection: close"),
                "{first}"
            );
            kept.push(connection);
        }
        let mut third = TcpStream::connect(address).await.unwrap();
        third.write_all(REQUEST).await.unwrap();
        let first = answer(&mut third).await;
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        assert!(
            first.to_ascii_lowercase().contains("connection: close"),
            "{first}"
        );
        assert!(
            tokio::time::timeout(Duration::from_secs(5), closed(&mut third))
                .await
                .unwrap()
        );
        // The kept connections still serve.
        kept[0].write_all(REQUEST).await.unwrap();
        assert!(answer(&mut kept[0]).await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn a_crowd_of_idle_connections_turns_over_and_a_request_gets_through() {
        let address = server(Limits {
            idle: Duration::from_secs(60),
            keep_alive_limit: 1,
            crowded_idle: Duration::from_millis(300),
            max_open: 3,
        })
        .await;
        // Idle connections fill every place; the ones past the keep-alive limit are closed
        // soon, and the queue behind them moves.
        let mut idle = Vec::new();
        for _ in 0..6 {
            idle.push(TcpStream::connect(address).await.unwrap());
        }
        let mut request = TcpStream::connect(address).await.unwrap();
        request.write_all(REQUEST).await.unwrap();
        let answered = tokio::time::timeout(Duration::from_secs(5), answer(&mut request))
            .await
            .expect("the request waited for the idle connections' full minute");
        assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
        // The first, within the keep-alive limit, is still open.
        idle[0].write_all(REQUEST).await.unwrap();
        assert!(answer(&mut idle[0]).await.starts_with("HTTP/1.1 200"));
    }
}
