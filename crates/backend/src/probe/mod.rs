//! `rewards-backend probe`: one real round with Amazon, run by a studio from its own machine with its own
//! security profile (nothing in this project's tests can reach Amazon). It links with code pairing (the
//! operator enters the shown code at Amazon), reads the profile, makes one Prime Gaming entitlements call and,
//! only when the studio names a test entitlement, reports that one entitlement fulfilled. Every request and
//! answer goes into a redacted [`Transcript`]; each answer is compared with its golden shape
//! ([`amazon_rewards_protocol::golden`], the shapes the tests hold the sandbox to) and read with the code's own
//! parser, and the [`ProbeReport`] says in words what differs.
//!
//! ```no_run
//! # async fn probe() -> Result<(), amazon_rewards_backend::probe::ProbeError> {
//! use amazon_rewards_backend::probe::{ProbeSettings, run};
//! let settings = ProbeSettings::production("amzn1.application-oa2-client.0123");
//! let report = run(&settings, |code| println!("Enter {} at {}", code.user_code, code.verification_uri)).await?;
//! println!("{}", report.in_words());
//! # Ok(()) }
//! ```

mod transcript;

use std::time::{Duration, Instant};

use amazon_rewards_protocol::golden::{self, Difference, Golden};
use amazon_rewards_protocol::{http, lwa, prime_gaming};
use serde_json::Value;

pub use transcript::{Exchange, REDACTED, Transcript};

/// Most bytes of one answer read.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Bounds on what Amazon's code-pair answer may ask for: poll interval and code lifetime.
const POLL_SECONDS: std::ops::RangeInclusive<u64> = 1..=60;
const MAX_CODE_LIFETIME: Duration = Duration::from_secs(1800);
/// Most pending polls written into the transcript (the rest are counted).
const MAX_RECORDED_POLLS: usize = 3;

/// What the probe talks to, and what it may do.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// The security profile's client id (LWA for Devices: code pairing with no secret).
    pub client_id: String,
    /// Base of LWA's code-pair, token and profile endpoints ([`lwa::PRODUCTION_API_URL`]).
    pub lwa_api_url: String,
    /// Base of Prime Gaming's API ([`prime_gaming::PRODUCTION_BASE_URL`]).
    pub prime_gaming_url: String,
    /// A test entitlement the studio allows the probe to report fulfilled; `None` fulfils nothing.
    pub fulfil: Option<String>,
    /// Allow sandbox URLs (not https, or loopback).
    pub sandbox: bool,
    /// Longest wait for the operator to enter the code (also bounded by the code's own lifetime).
    pub code_wait: Duration,
    /// Timeout of each request.
    pub request_timeout: Duration,
}

impl ProbeSettings {
    /// Against production Amazon with `client_id`, fulfilling nothing.
    pub fn production(client_id: &str) -> Self {
        ProbeSettings {
            client_id: client_id.to_owned(),
            lwa_api_url: lwa::PRODUCTION_API_URL.to_owned(),
            prime_gaming_url: prime_gaming::PRODUCTION_BASE_URL.to_owned(),
            fulfil: None,
            sandbox: false,
            code_wait: Duration::from_secs(600),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The code the operator enters at Amazon.
#[derive(Debug, Clone)]
pub struct CodeToEnter {
    /// Where.
    pub verification_uri: String,
    /// What.
    pub user_code: String,
}

/// Why the probe could not finish (its report so far is kept in [`ProbeError::report`]).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A settings problem, found before anything was sent.
    #[error("{0}")]
    Settings(String),
    /// The probe stopped at a step; the report holds what it saw up to there.
    #[error("the probe stopped: {reason}")]
    Stopped {
        /// Why, in words.
        reason: String,
        /// What it saw up to there.
        report: Box<ProbeReport>,
    },
}

impl ProbeError {
    /// The report up to the stop, if any request was made.
    pub fn report(&self) -> Option<&ProbeReport> {
        match self {
            ProbeError::Stopped { report, .. } => Some(report),
            ProbeError::Settings(_) => None,
        }
    }
}

/// How one answer compared with its golden shape.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Which answer.
    pub golden: Golden,
    /// The status received (0: no answer).
    pub status: u16,
    /// Where its shape differs (only new fields means the code still reads it).
    pub differences: Vec<Difference>,
    /// Whether the code's own parser reads it; `Err` says why not, without the answer's values.
    pub parsed: Result<(), String>,
}

impl Finding {
    /// Whether the code handles this answer as it handles the golden one.
    pub fn matches(&self) -> bool {
        self.status == self.golden.status()
            && self.parsed.is_ok()
            && self.differences.iter().all(Difference::is_harmless)
    }
}

/// What the probe saw: each answer's comparison, the transcript, and notes in words.
#[derive(Debug, Default)]
pub struct ProbeReport {
    /// One per answer compared.
    pub findings: Vec<Finding>,
    /// Every request and answer, redacted.
    pub transcript: Transcript,
    /// Other things worth telling (pending polls not recorded, an entitlement not found).
    pub notes: Vec<String>,
}

impl ProbeReport {
    /// Whether every answer matched its golden shape.
    pub fn all_match(&self) -> bool {
        self.findings.iter().all(Finding::matches)
    }

    /// Writes the transcript as JSON to `path`, readable by its owner only (it is redacted, but it still
    /// names the customer's Amazon user id).
    pub fn write_transcript(&self, path: &std::path::Path) -> std::io::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path)?;
        file.write_all(self.transcript.to_json().as_bytes())?;
        file.sync_all()
    }

    /// The report in words, one paragraph per answer.
    pub fn in_words(&self) -> String {
        let mut text = String::new();
        for finding in &self.findings {
            text.push_str(&describe(finding));
        }
        for note in &self.notes {
            text.push_str(&format!("note: {note}\n"));
        }
        let verdict = match self.all_match() {
            true => "every answer has the shape the code expects",
            false => "some answers differ from the shapes the code expects (above)",
        };
        text.push_str(&format!("{verdict}\n"));
        text
    }
}

fn describe(finding: &Finding) -> String {
    let golden = finding.golden;
    let mut text = match finding.status == golden.status() {
        true => format!("{}: {} as expected", golden.call(), finding.status),
        false => format!("{}: status {}, expected {}", golden.call(), finding.status, golden.status()),
    };
    match (finding.differences.is_empty(), &finding.parsed) {
        (true, Ok(())) => text.push_str("; the shape matches\n"),
        (_, parsed) => {
            text.push('\n');
            for difference in &finding.differences {
                text.push_str(&format!("  - {difference}\n"));
            }
            match parsed {
                Ok(()) => text.push_str("  the code still reads it\n"),
                Err(why) => text.push_str(&format!("  the code cannot read it: {why}\n")),
            }
        }
    }
    text
}

/// Runs the probe: code pairing (calling `show_code` once with the code to enter), the profile, one
/// entitlements call and, when [`ProbeSettings::fulfil`] names an entitlement of that answer, its fulfilment.
pub async fn run(settings: &ProbeSettings, show_code: impl FnOnce(&CodeToEnter)) -> Result<ProbeReport, ProbeError> {
    check(settings)?;
    let client = reqwest::Client::builder()
        .timeout(settings.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| ProbeError::Settings(format!("cannot build an HTTP client: {error}")))?;
    let mut probe = Probe { client, report: ProbeReport::default() };
    match probe.steps(settings, show_code).await {
        Ok(()) => Ok(probe.report),
        Err(reason) => Err(ProbeError::Stopped { reason, report: Box::new(probe.report) }),
    }
}

fn check(settings: &ProbeSettings) -> Result<(), ProbeError> {
    if settings.client_id.trim().is_empty() {
        return Err(ProbeError::Settings("a client id is needed (the security profile's, for code pairing)".into()));
    }
    for url in [&settings.lwa_api_url, &settings.prime_gaming_url] {
        if url::Url::parse(url).is_err() {
            return Err(ProbeError::Settings(format!("{url} is not a URL")));
        }
        if http::is_sandbox_url(url) && !settings.sandbox {
            return Err(ProbeError::Settings(format!(
                "{url} is not Amazon (not https, or loopback): pass --sandbox to probe a sandbox"
            )));
        }
    }
    Ok(())
}

/// An answer as read: its status and body (the headers go only into the transcript).
struct Answer {
    status: u16,
    body: Vec<u8>,
}

struct Probe {
    client: reqwest::Client,
    report: ProbeReport,
}

impl Probe {
    async fn steps(&mut self, settings: &ProbeSettings, show_code: impl FnOnce(&CodeToEnter)) -> Result<(), String> {
        let lwa_api = settings.lwa_api_url.trim_end_matches('/');
        let pairing = self.code_pair(lwa_api, &settings.client_id).await?;
        show_code(&CodeToEnter {
            verification_uri: pairing.verification_uri.clone(),
            user_code: pairing.user_code.clone(),
        });
        let tokens = self.poll(lwa_api, &pairing, settings.code_wait).await?;
        let access_token = tokens.access_token;
        let profile = self
            .get(&format!("{lwa_api}{}", lwa::PROFILE_PATH), "authorization", &format!("Bearer {access_token}"))
            .await?;
        self.compare(Golden::LwaProfile, &profile);
        let prime = settings.prime_gaming_url.trim_end_matches('/');
        let url = format!("{prime}{}", prime_gaming::ENTITLEMENTS_PATH);
        let entitlements = self.get(&url, prime_gaming::ACCESS_TOKEN_HEADER, &access_token).await?;
        let page = self.compare(Golden::PrimeGamingEntitlements, &entitlements);
        if let Some(wanted) = &settings.fulfil {
            self.fulfil(prime, &access_token, wanted, page.as_ref()).await?;
        }
        Ok(())
    }

    async fn code_pair(&mut self, lwa_api: &str, client_id: &str) -> Result<lwa::DeviceCodeResponse, String> {
        let scope = format!("{} {}", lwa::SCOPE_PRIME_GAMING, lwa::SCOPE_PROFILE);
        let form = [("response_type", "device_code"), ("client_id", client_id), ("scope", scope.as_str())];
        let answer = self.post_form(&format!("{lwa_api}{}", lwa::CODEPAIR_PATH), &form).await?;
        let value = self.compare(Golden::LwaCodePair, &answer).ok_or("the code-pair answer cannot be read (above)")?;
        let pairing: lwa::DeviceCodeResponse =
            serde_json::from_value(value).map_err(|_| "the code-pair answer cannot be read")?;
        self.report.transcript.keep_secret(&pairing.device_code);
        self.report.transcript.keep_secret(&pairing.user_code);
        Ok(pairing)
    }

    /// Polls the token endpoint at the interval Amazon asked for (bounded), until the operator has entered the
    /// code, the code expires or `wait` runs out. Only the first few pending polls are recorded.
    async fn poll(
        &mut self,
        lwa_api: &str,
        pairing: &lwa::DeviceCodeResponse,
        wait: Duration,
    ) -> Result<lwa::TokenResponse, String> {
        let mut interval = Duration::from_secs(pairing.interval.clamp(*POLL_SECONDS.start(), *POLL_SECONDS.end()));
        let lifetime = Duration::from_secs(pairing.expires_in).min(MAX_CODE_LIFETIME).min(wait);
        let deadline = Instant::now() + lifetime;
        let form = [
            ("grant_type", lwa::DEVICE_CODE_GRANT),
            ("device_code", pairing.device_code.as_str()),
            ("user_code", pairing.user_code.as_str()),
        ];
        let url = format!("{lwa_api}{}", lwa::TOKEN_PATH);
        let mut pending = 0usize;
        loop {
            tokio::time::sleep(interval).await;
            if Instant::now() > deadline {
                return Err(format!("the code was not entered within {} s", lifetime.as_secs()));
            }
            let recorded_before = self.report.transcript.exchanges().len();
            let answer = self.post_form(&url, &form).await?;
            let error = serde_json::from_slice::<lwa::OAuthErrorBody>(&answer.body).ok().map(|body| body.error);
            match (answer.status, error.as_deref()) {
                (200, _) => return self.tokens(&answer),
                (400, Some("authorization_pending" | "slow_down")) => {
                    if error.as_deref() == Some("slow_down") {
                        interval = (interval + Duration::from_secs(5)).min(Duration::from_secs(*POLL_SECONDS.end()));
                    }
                    pending += 1;
                    if pending == 1 {
                        self.compare(Golden::LwaTokenPending, &answer);
                    }
                    if pending > MAX_RECORDED_POLLS {
                        self.report.transcript.forget_from(recorded_before);
                        self.note_polls(pending - MAX_RECORDED_POLLS);
                    }
                }
                _ => {
                    self.compare(Golden::LwaToken, &answer);
                    return Err(format!("the token endpoint refused the device code (status {})", answer.status));
                }
            }
        }
    }

    fn note_polls(&mut self, unrecorded: usize) {
        let note = format!("{unrecorded} more pending polls are not in the transcript");
        match self.report.notes.last_mut() {
            Some(last) if last.ends_with("pending polls are not in the transcript") => *last = note,
            _ => self.report.notes.push(note),
        }
    }

    fn tokens(&mut self, answer: &Answer) -> Result<lwa::TokenResponse, String> {
        let value = self.compare(Golden::LwaToken, answer).ok_or("the token answer cannot be read (above)")?;
        let tokens: lwa::TokenResponse =
            serde_json::from_value(value).map_err(|_| "the token answer cannot be read")?;
        self.report.transcript.keep_secret(&tokens.access_token);
        if let Some(refresh) = &tokens.refresh_token {
            self.report.transcript.keep_secret(refresh);
        }
        Ok(tokens)
    }

    async fn fulfil(
        &mut self,
        prime: &str,
        access_token: &str,
        wanted: &str,
        page: Option<&Value>,
    ) -> Result<(), String> {
        let listed = page
            .and_then(|page| serde_json::from_value::<prime_gaming::EntitlementsPage>(page.clone()).ok())
            .is_some_and(|page| page.entitlements.iter().any(|e| e.entitlement_id == wanted));
        if !listed {
            self.report
                .notes
                .push(format!("entitlement {wanted} is not in the entitlements answer: nothing was fulfilled"));
            return Ok(());
        }
        let body = serde_json::json!({"FulfillmentStatusUpdates": [{
            "EntitlementId": wanted,
            "LastInstruction": "FULFILL",
            "FulfillmentAddress": prime_gaming::DEFAULT_FULFILLMENT_ADDRESS,
        }]});
        let request = self
            .client
            .post(format!("{prime}{}", prime_gaming::FULFILL_PATH))
            .header(prime_gaming::ACCESS_TOKEN_HEADER, access_token)
            .header("content-type", "application/json")
            .body(body.to_string());
        let answer = self.send(request).await?;
        self.compare(Golden::PrimeGamingFulfill, &answer);
        Ok(())
    }

    async fn get(&mut self, url: &str, header: &str, value: &str) -> Result<Answer, String> {
        self.send(self.client.get(url).header(header, value)).await
    }

    async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Result<Answer, String> {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let request = self.client.post(url).header("content-type", "application/x-www-form-urlencoded").body(body);
        self.send(request).await
    }

    /// Sends one request and records it with its answer; an answer that never came is recorded too.
    async fn send(&mut self, request: reqwest::RequestBuilder) -> Result<Answer, String> {
        let request = request.build().map_err(|error| format!("cannot build the request: {}", error.without_url()))?;
        let mut exchange = request_record(&request);
        let started = Instant::now();
        let outcome = match self.client.execute(request).await {
            Ok(response) => {
                exchange.status = response.status().as_u16();
                exchange.response_headers = header_pairs(response.headers());
                crate::read_capped(response, MAX_ANSWER_BYTES).await
            }
            Err(error) => Err(error.without_url().to_string()),
        };
        exchange.elapsed_ms = started.elapsed().as_millis().try_into().unwrap_or(u64::MAX);
        let call = format!("{} {}", exchange.method, exchange.url);
        let result = match outcome {
            Ok(body) => {
                exchange.response_body = String::from_utf8_lossy(&body).into_owned();
                Ok(Answer { status: exchange.status, body })
            }
            Err(why) => {
                exchange.response_body = format!("(no answer: {why})");
                Err(format!("no answer from {call}: {why}"))
            }
        };
        self.report.transcript.record(exchange);
        result
    }

    /// Compares an answer with its golden shape and the code's parser; returns the parsed JSON when the code
    /// reads it with the expected status.
    fn compare(&mut self, golden: Golden, answer: &Answer) -> Option<Value> {
        let parsed = golden.parse_with_code(&answer.body);
        let value = serde_json::from_slice::<Value>(&answer.body).ok();
        let differences = match &value {
            Some(value) => golden::compare(&golden.example(), value),
            None => Vec::new(),
        };
        let readable = parsed.is_ok() && answer.status == golden.status();
        self.report.findings.push(Finding { golden, status: answer.status, differences, parsed });
        value.filter(|_| readable)
    }
}

fn request_record(request: &reqwest::Request) -> Exchange {
    let body = request.body().and_then(|body| body.as_bytes()).map(String::from_utf8_lossy).unwrap_or_default();
    Exchange {
        method: request.method().to_string(),
        url: request.url().to_string(),
        request_headers: header_pairs(request.headers()),
        request_body: body.into_owned(),
        status: 0,
        response_headers: Vec::new(),
        response_body: String::new(),
        elapsed_ms: 0,
    }
}

fn header_pairs(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect()
}
