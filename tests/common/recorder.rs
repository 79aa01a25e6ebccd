//! A recording reverse proxy: sits between the plugin and the sandbox on loopback, forwards every request
//! unchanged and keeps the exact bytes of each request and answer, so wire tests can check what the plugin
//! puts on the wire against `shared/WIRE.md` (not against our own types).

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as it arrived, and the answer it got.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    /// Path and query, as on the request line.
    pub target: String,
    /// Header names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub status: u16,
    pub answer: Vec<u8>,
}

impl Exchange {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn answer_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.answer).unwrap_or_default()
    }
}

/// The proxy; it runs until dropped.
pub struct Recorder {
    url: String,
    log: Arc<Mutex<Vec<Exchange>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Recorder {
    /// Starts a proxy to `upstream` (e.g. the sandbox's URL) on a free loopback port.
    pub fn start(upstream: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let (upstream, shared) = (upstream.trim_end_matches('/').to_owned(), log.clone());
        runtime.spawn(async move {
            let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, http.clone(), upstream.clone(), shared.clone()));
            }
        });
        Self { url, log, _runtime: runtime }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every exchange so far, oldest first.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().unwrap().clone()
    }

    /// The exchanges with this method and path.
    pub fn calls(&self, method: &str, path: &str) -> Vec<Exchange> {
        self.exchanges().into_iter().filter(|e| e.method == method && e.path() == path).collect()
    }
}

/// Serves one keep-alive connection: request after request, each forwarded and recorded.
async fn serve(mut stream: TcpStream, http: reqwest::Client, upstream: String, log: Arc<Mutex<Vec<Exchange>>>) {
    let mut buffer = Vec::new();
    loop {
        let Some((head_len, method, target, headers)) = read_head(&mut stream, &mut buffer).await else {
            return;
        };
        let length: usize =
            headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        while buffer.len() < head_len + length {
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buffer[head_len..head_len + length].to_vec();
        buffer.drain(..head_len + length);
        let mut request = http.request(method.parse().unwrap(), format!("{upstream}{target}"));
        for (name, value) in &headers {
            if !matches!(name.as_str(), "host" | "content-length" | "connection") {
                request = request.header(name, value);
            }
        }
        let response = request.body(body.clone()).send().await.unwrap();
        let status = response.status().as_u16();
        let mut head = format!("HTTP/1.1 {status} X\r\n");
        for (name, value) in response.headers() {
            if !matches!(name.as_str(), "content-length" | "transfer-encoding" | "connection") {
                head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or_default()));
            }
        }
        let answer = response.bytes().await.unwrap().to_vec();
        head.push_str(&format!("content-length: {}\r\n\r\n", answer.len()));
        log.lock().unwrap().push(Exchange { method, target, headers, body, status, answer: answer.clone() });
        if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(&answer).await.is_err() {
            return;
        }
    }
}

type Head = (usize, String, String, Vec<(String, String)>);

async fn read_head(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Head> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let mut lines = text.split("\r\n");
            let mut request_line = lines.next()?.split(' ');
            let (method, target) = (request_line.next()?.to_owned(), request_line.next()?.to_owned());
            let headers = lines
                .filter_map(|line| line.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            return Some((end + 4, method, target, headers));
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// What a [`Scripted`] server answers: status, headers, body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// A server on loopback that answers each request as a closure of its target says, for shapes no sandbox
/// serves (a paging loop, a redirect to another origin, oversized pages); it keeps what it was asked.
pub struct Scripted {
    url: String,
    log: Arc<Mutex<Vec<Exchange>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Scripted {
    pub fn start(answer: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let (shared, answer) = (log.clone(), Arc::new(answer));
        runtime.spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (log, answer) = (shared.clone(), answer.clone());
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    while let Some((head_len, method, target, headers)) = read_head(&mut stream, &mut buffer).await {
                        buffer.drain(..head_len);
                        let (status, extra, body) = answer(&target);
                        let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                        for (name, value) in &extra {
                            head.push_str(&format!("{name}: {value}\r\n"));
                        }
                        head.push_str("\r\n");
                        let exchange =
                            Exchange { method, target, headers, body: Vec::new(), status, answer: body.clone() };
                        log.lock().unwrap().push(exchange);
                        if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(&body).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { url, log, _runtime: runtime }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().unwrap().clone()
    }
}

/// A JSON answer.
pub fn json_answer(status: u16, body: &serde_json::Value) -> Answer {
    (status, vec![("content-type".into(), "application/json".into())], body.to_string().into_bytes())
}
