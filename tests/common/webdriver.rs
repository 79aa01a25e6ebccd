//! A minimal W3C WebDriver client driving Debian's headless Chromium through chromedriver, so that login
//! tests go through a real browser: real forms, real redirects, real loopback connections.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process with one headless Chromium session. Dropping it quits both.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    _profile: tempfile::TempDir,
}

/// Whether the machine has a browser for these tests (`bash scripts/test.sh` installs Debian's chromium and chromium-driver).
pub fn available() -> bool {
    std::path::Path::new(&chromedriver()).exists() && std::path::Path::new(&chromium()).exists()
}

fn chromedriver() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

impl Browser {
    pub fn launch() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while runtime.block_on(http.get(format!("{base}/status")).send()).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-features=Translate,MediaRouter",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let mut browser = Self { driver, base, session: String::new(), http, runtime, _profile: profile };
        let created = browser.call("POST", "/session", Some(capabilities));
        browser.session = created["sessionId"].as_str().expect("a session id").to_owned();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let response: Value = self
            .runtime
            .block_on(async { request.send().await.expect("webdriver call").json().await.expect("webdriver JSON") });
        let value = response["value"].clone();
        assert!(value.get("error").is_none(), "webdriver {method} {path}: {value}");
        value
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", &self.session_path("/url"), Some(json!({ "url": url })));
    }

    pub fn current_url(&self) -> String {
        self.call("GET", &self.session_path("/url"), None).as_str().unwrap_or_default().to_owned()
    }

    /// Resizes the window (for screenshots of a whole page).
    pub fn set_window_size(&self, width: u32, height: u32) {
        self.call("POST", &self.session_path("/window/rect"), Some(json!({"width": width, "height": height})));
    }

    /// A PNG of the page as Chromium renders it.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let encoded = self.call("GET", &self.session_path("/screenshot"), None);
        base64::engine::general_purpose::STANDARD.decode(encoded.as_str().unwrap_or_default()).expect("a PNG")
    }

    pub fn page_source(&self) -> String {
        self.call("GET", &self.session_path("/source"), None).as_str().unwrap_or_default().to_owned()
    }

    fn find(&self, css: &str) -> String {
        let found =
            self.call("POST", &self.session_path("/element"), Some(json!({"using": "css selector", "value": css})));
        found[ELEMENT_KEY].as_str().expect("element id").to_owned()
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.call("POST", &self.session_path(&format!("/element/{element}/value")), Some(json!({ "text": text })));
    }

    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.call("POST", &self.session_path(&format!("/element/{element}/click")), None);
    }

    /// Reloads `url` until its source contains `text` (for pages whose state changes on the server).
    pub fn reload_until(&self, url: &str, text: &str, timeout: Duration) -> String {
        let started = Instant::now();
        loop {
            self.goto(url);
            let source = self.page_source();
            if source.contains(text) {
                return source;
            }
            let status =
                source.split("<main>").nth(1).unwrap_or(&source).split("</main>").next().unwrap_or_default().to_owned();
            assert!(started.elapsed() < timeout, "{url} never showed {text:?}; it shows:\n{status}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the page source contains `text`.
    pub fn wait_for_text(&self, text: &str, timeout: Duration) -> String {
        let started = Instant::now();
        loop {
            let source = self.page_source();
            if source.contains(text) {
                return source;
            }
            assert!(started.elapsed() < timeout, "page never showed {text:?}; it shows:\n{source}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let url = format!("{}/session/{}", self.base, self.session);
            let _ = self.runtime.block_on(self.http.delete(url).send());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
