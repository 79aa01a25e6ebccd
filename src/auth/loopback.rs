//! The one-shot loopback listener of the browser login (RFC 8252 §7.3): bound to 127.0.0.1 on a free port,
//! it waits for exactly one `GET` of the redirect path, checks `state`, answers the browser with a page telling
//! the player to return to the game, and closes. It gives up after a timeout if the player walks away.

use std::time::Duration;

use oauth2::url::form_urlencoded;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::LoginError;

/// Largest request head accepted from the browser.
const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// How long one connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

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

    /// Waits for the redirect and returns its authorization code. Requests for other paths or methods are
    /// answered 404/405 and do not end the wait; the listener closes when this returns.
    pub(crate) async fn wait_for_code(self, expected_state: &str, timeout: Duration) -> Result<String, LoginError> {
        let wait = async {
            loop {
                let (stream, _) = self.listener.accept().await.map_err(|e| LoginError::Network(e.to_string()))?;
                if let Some(outcome) = self.handle(stream, expected_state).await {
                    return outcome;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.map_err(|_| LoginError::Timeout)?
    }

    /// `None` when the request was not the redirect (keep waiting).
    async fn handle(&self, mut stream: TcpStream, expected_state: &str) -> Option<Result<String, LoginError>> {
        let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
            Ok(Some(head)) => head,
            _ => {
                let _ =
                    respond(&mut stream, "400 Bad Request", "Bad request", "This was not a sign-in redirect.").await;
                return None;
            }
        };
        let mut parts = head.lines().next().unwrap_or_default().split(' ');
        let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if path != self.path {
            let _ = respond(&mut stream, "404 Not Found", "Not found", "Nothing here.").await;
            return None;
        }
        if method != "GET" {
            let _ = respond(&mut stream, "405 Method Not Allowed", "Not allowed", "Only the sign-in redirect.").await;
            return None;
        }
        let mut code = None;
        let mut state = None;
        let mut error = None;
        let mut description = None;
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "code" => code = Some(value.into_owned()),
                "state" => state = Some(value.into_owned()),
                "error" => error = Some(value.into_owned()),
                "error_description" => description = Some(value.into_owned()),
                _ => {}
            }
        }
        let outcome = if state.as_deref() != Some(expected_state) {
            Err(LoginError::StateMismatch)
        } else if let Some(error) = error {
            if error == "access_denied" {
                Err(LoginError::Denied)
            } else {
                Err(LoginError::Provider { error, description: description.unwrap_or_default() })
            }
        } else {
            code.filter(|c| !c.is_empty()).ok_or_else(|| LoginError::Provider {
                error: "invalid_request".into(),
                description: "the redirect carried no code".into(),
            })
        };
        let _ = match &outcome {
            Ok(_) => respond(&mut stream, "200 OK", "Signed in", "You are signed in. Return to the game.").await,
            Err(error) => {
                respond(
                    &mut stream,
                    "400 Bad Request",
                    "Sign-in did not complete",
                    &format!("{error}. Return to the game to try again."),
                )
                .await
            }
        };
        Some(outcome)
    }
}

async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 || buffer.len() + read > MAX_REQUEST_BYTES {
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
