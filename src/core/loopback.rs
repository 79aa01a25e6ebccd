//! The one-shot loopback listener that brings the player back from the browser (RFC 8252 §7.3), used by the
//! browser login and by the subscription sign-up: bound to 127.0.0.1 on a free port, it waits for exactly one
//! `GET` of its path carrying the flow's `state`, lets the waiting flow judge the query, answers the browser
//! with a page telling the player to return to the game, and closes. Anything else (another path or method, a
//! wrong `state`, a connection that sends nothing) is answered or dropped without ending the wait, and
//! connections are read side by side, so an idle one delays nothing. It gives up after a timeout if the player
//! walks away.

use std::fmt::Display;
use std::time::Duration;

use amazon_rewards_protocol::http::{MAX_REQUEST_HEAD_BYTES, parse_request_head};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Why no redirect arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoopbackError {
    /// The player did not come back in time.
    Timeout,
    /// The listener failed.
    Network(String),
}

/// What the browser is told once the redirect was judged.
pub(crate) struct ReturnPages<'a> {
    /// Title and message when the flow got what it needed.
    pub(crate) done: (&'a str, &'a str),
    /// Title when it did not (the message is the error).
    pub(crate) failed: &'a str,
}

/// The query parameters of a redirect, in order.
pub(crate) type Query = Vec<(String, String)>;

/// How long one connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections read at once; more are closed at once.
const MAX_CONNECTIONS: usize = 32;

/// A listener waiting for the authorization redirect.
pub(crate) struct LoopbackListener {
    listener: TcpListener,
    path: String,
    redirect_uri: String,
}

impl LoopbackListener {
    /// Binds 127.0.0.1 on a free port; the redirect URI is `http://127.0.0.1:{port}{path}`.
    pub(crate) async fn bind(path: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        Ok(Self { listener, path: path.to_owned(), redirect_uri: format!("http://127.0.0.1:{port}{path}") })
    }

    pub(crate) fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits for the redirect with this `state`, has `judge` decide what its query means, tells the browser,
    /// and returns the judgement. Requests for other paths or methods (404/405) or with another `state` (400)
    /// do not end the wait; the listener closes when this returns.
    pub(crate) async fn wait_for<T, E: Display>(
        self,
        timeout: Duration,
        state: &str,
        pages: ReturnPages<'_>,
        judge: impl Fn(&Query) -> Result<T, E>,
    ) -> Result<Result<T, E>, LoopbackError> {
        let (heads, mut read) = tokio::sync::mpsc::channel::<(TcpStream, Option<String>)>(MAX_CONNECTIONS);
        let readers = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let wait = async {
            loop {
                tokio::select! {
                    accepted = self.listener.accept() => {
                        let (mut stream, _) = accepted.map_err(|e| LoopbackError::Network(e.to_string()))?;
                        // Each connection is read on its own, so a slow or idle one holds up no other.
                        let Ok(permit) = readers.clone().try_acquire_owned() else { continue };
                        let heads = heads.clone();
                        tokio::spawn(async move {
                            let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await.ok().flatten();
                            let _ = heads.send((stream, head)).await;
                            drop(permit);
                        });
                    }
                    Some((stream, head)) = read.recv() => {
                        if let Some(outcome) = self.handle(stream, head, state, &pages, &judge).await {
                            return Ok(outcome);
                        }
                    }
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.map_err(|_| LoopbackError::Timeout)?
    }

    /// `None` when the request was not the redirect (keep waiting).
    async fn handle<T, E: Display>(
        &self,
        mut stream: TcpStream,
        head: Option<String>,
        state: &str,
        pages: &ReturnPages<'_>,
        judge: &impl Fn(&Query) -> Result<T, E>,
    ) -> Option<Result<T, E>> {
        let Some(head) = head.as_deref().and_then(|head| parse_request_head(head.as_bytes())) else {
            let _ = respond(&mut stream, "400 Bad Request", "Bad request", "This was not the expected redirect.").await;
            return None;
        };
        if head.path != self.path {
            let _ = respond(&mut stream, "404 Not Found", "Not found", "Nothing here.").await;
            return None;
        }
        if head.method != "GET" {
            let _ = respond(&mut stream, "405 Method Not Allowed", "Not allowed", "Only the redirect.").await;
            return None;
        }
        let query: Query = head.query;
        if parameter(&query, "state") != Some(state) {
            // Forged or stale: refused, but the real redirect may still come.
            let _ =
                respond(&mut stream, "400 Bad Request", pages.failed, "This answer did not belong to this sign-in.")
                    .await;
            return None;
        }
        let outcome = judge(&query);
        let _ = match &outcome {
            Ok(_) => respond(&mut stream, "200 OK", pages.done.0, pages.done.1).await,
            Err(error) => {
                respond(
                    &mut stream,
                    "400 Bad Request",
                    pages.failed,
                    &format!("{error}. Return to the game to try again."),
                )
                .await
            }
        };
        Some(outcome)
    }
}

pub(crate) use amazon_rewards_protocol::http::parameter;

async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 || buffer.len() + read > MAX_REQUEST_HEAD_BYTES {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8(buffer).ok()
}

async fn respond(stream: &mut TcpStream, status: &str, title: &str, message: &str) -> std::io::Result<()> {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;text-align:center;margin-top:15vh;color:#0f1111}}</style></head>\
         <body><h1>{title}</h1><p>{message}</p></body></html>",
        title = escape(title),
        message = escape(message),
    );
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
