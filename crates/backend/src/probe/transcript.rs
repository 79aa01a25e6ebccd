//! The probe's transcript: every request it sent and every answer it read, with tokens, codes, secrets and the
//! customer's name and email redacted, so a studio can attach it to a support ticket or a bug report.
//!
//! Redaction works twice over: by name (form fields, JSON keys, query parameters and headers known to carry
//! secrets have their values replaced, keeping the value's kind so the shape still shows), and by value (every
//! secret the probe has seen so far is replaced wherever else it turns up, such as inside an error message).

use serde::Serialize;
use serde_json::Value;

/// Form fields, JSON keys and query parameters whose values are never written down.
const SECRET_NAMES: [&str; 11] = [
    "access_token",
    "refresh_token",
    "device_code",
    "user_code",
    "code",
    "code_verifier",
    "client_secret",
    "id_token",
    "email",
    "name",
    "state",
];
/// Headers whose values are never written down.
const SECRET_HEADERS: [&str; 5] =
    ["authorization", "x-amz-access-token", "cookie", "set-cookie", "proxy-authorization"];
/// Most bytes of a body kept in the transcript (an HTML error page is cut there).
const MAX_BODY_CHARS: usize = 16 * 1024;
/// Shortest text treated as a secret value (shorter ones would redact ordinary words).
const MIN_SECRET_CHARS: usize = 6;

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// One request and its answer, redacted.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// `GET` or `POST`.
    pub method: String,
    /// The URL, its secret query values redacted.
    pub url: String,
    /// Request headers, secret ones redacted.
    pub request_headers: Vec<(String, String)>,
    /// The request body, secret fields redacted.
    pub request_body: String,
    /// The answer's status, or 0 when no answer came.
    pub status: u16,
    /// Answer headers, secret ones redacted.
    pub response_headers: Vec<(String, String)>,
    /// The answer's body (at most 16 KiB of it), secret fields redacted; or why there was none.
    pub response_body: String,
    /// Milliseconds from sending to the whole answer.
    pub elapsed_ms: u64,
}

/// Every exchange of one probe, and the secrets to keep out of it.
#[derive(Debug, Default)]
pub struct Transcript {
    exchanges: Vec<Exchange>,
    secrets: Vec<String>,
}

impl Transcript {
    /// Adds an exchange, redacted by name and by every secret seen so far.
    pub fn record(&mut self, mut exchange: Exchange) {
        exchange.url = redact_url(&exchange.url);
        exchange.request_headers = redact_headers(exchange.request_headers);
        exchange.response_headers = redact_headers(exchange.response_headers);
        exchange.request_body = redact_body(&exchange.request_body);
        exchange.response_body = redact_body(&truncate(&exchange.response_body));
        self.exchanges.push(exchange);
        self.scrub();
    }

    /// Remembers a secret value (a token, a code) so that it is redacted wherever it appears, before and
    /// after this call.
    pub fn keep_secret(&mut self, value: &str) {
        if value.chars().count() >= MIN_SECRET_CHARS && !self.secrets.iter().any(|known| known == value) {
            self.secrets.push(value.to_owned());
            self.scrub();
        }
    }

    /// Drops the exchanges from `index` on (repeated polls not worth keeping).
    pub fn forget_from(&mut self, index: usize) {
        self.exchanges.truncate(index);
    }

    /// The exchanges so far.
    pub fn exchanges(&self) -> &[Exchange] {
        &self.exchanges
    }

    /// The transcript as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.exchanges).unwrap_or_else(|_| "[]".to_owned())
    }

    fn scrub(&mut self) {
        let secrets = &self.secrets;
        let scrub = |text: &mut String| {
            for secret in secrets {
                if text.contains(secret.as_str()) {
                    *text = text.replace(secret.as_str(), REDACTED);
                }
            }
        };
        for exchange in &mut self.exchanges {
            scrub(&mut exchange.url);
            scrub(&mut exchange.request_body);
            scrub(&mut exchange.response_body);
            for (_, value) in exchange.request_headers.iter_mut().chain(exchange.response_headers.iter_mut()) {
                scrub(value);
            }
        }
    }
}

fn is_secret_name(name: &str) -> bool {
    SECRET_NAMES.iter().any(|secret| secret.eq_ignore_ascii_case(name))
}

fn redact_headers(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .map(|(name, value)| {
            let secret = SECRET_HEADERS.iter().any(|header| header.eq_ignore_ascii_case(&name));
            (name, if secret { REDACTED.to_owned() } else { value })
        })
        .collect()
}

fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else { return REDACTED.to_owned() };
    if parsed.query().is_none() {
        return parsed.to_string();
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(key, value)| {
            let value = if is_secret_name(&key) { REDACTED.to_owned() } else { value.into_owned() };
            (key.into_owned(), value)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

/// A JSON body with its secret keys' values replaced (strings stay strings, so the shape still shows); a form
/// body with its secret fields' values replaced; anything else as it is.
fn redact_body(body: &str) -> String {
    if let Ok(mut json) = serde_json::from_str::<Value>(body) {
        redact_json(&mut json);
        return serde_json::to_string(&json).unwrap_or_default();
    }
    let looks_like_form = !body.is_empty() && body.split('&').all(|pair| pair.contains('=') && !pair.contains(' '));
    if looks_like_form {
        let pairs = url::form_urlencoded::parse(body.as_bytes()).map(|(key, value)| {
            let value = if is_secret_name(&key) { REDACTED.to_owned() } else { value.into_owned() };
            (key.into_owned(), value)
        });
        return url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    }
    body.to_owned()
}

fn redact_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if is_secret_name(key) && field.is_string() {
                    *field = Value::String(REDACTED.to_owned());
                } else {
                    redact_json(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

fn truncate(body: &str) -> String {
    match body.char_indices().nth(MAX_BODY_CHARS) {
        Some((cut, _)) => format!("{}… (cut at {MAX_BODY_CHARS} characters)", &body[..cut]),
        None => body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(url: &str, request_body: &str, response_body: &str) -> Exchange {
        Exchange {
            method: "POST".into(),
            url: url.into(),
            request_headers: vec![
                ("x-amz-access-token".into(), "Atza|abcdef".into()),
                ("accept".into(), "json".into()),
            ],
            request_body: request_body.into(),
            status: 200,
            response_headers: vec![],
            response_body: response_body.into(),
            elapsed_ms: 1,
        }
    }

    #[test]
    fn secrets_are_redacted_by_name_and_by_value() {
        let mut transcript = Transcript::default();
        transcript.record(exchange(
            "https://api.amazon.com/user/profile?access_token=Atza%7Cxyz&x=1",
            "grant_type=device_code&device_code=dc-123456&user_code=ABC123",
            r#"{"access_token":"Atza|token1","refresh_token":"Atzr|token2","expires_in":3600,"user_id":"amzn1.account.A","email":"a@b.c"}"#,
        ));
        transcript.keep_secret("Atzr|token2");
        transcript.record(exchange("https://api.amazon.com/auth/o2/token", "", "refresh Atzr|token2 is not valid"));
        let text = transcript.to_json();
        for secret in
            ["Atza|abcdef", "Atza|xyz", "Atza%7Cxyz", "dc-123456", "ABC123", "Atza|token1", "Atzr|token2", "a@b.c"]
        {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("grant_type=device_code"), "{text}");
        assert!(text.contains("amzn1.account.A") && text.contains("3600") && text.contains("x=1"), "{text}");
        assert!(text.contains("refresh <redacted> is not valid"), "{text}");
    }

    #[test]
    fn huge_bodies_are_cut() {
        let mut transcript = Transcript::default();
        transcript.record(exchange("https://x.example/", "", &"<p>".repeat(100_000)));
        assert!(transcript.exchanges()[0].response_body.chars().count() < MAX_BODY_CHARS + 64);
    }
}
