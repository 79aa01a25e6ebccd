//! DTA1-HMAC-SHA256, the request signature of Amazon Instant Access (from Amazon's official SDKs).
//!
//! Canonical request (`signature/Signer.java` of the Java SDK): `METHOD\n`, the URL-encoded path (`/` if empty;
//! see [`canonical_path`]) `\n`, an empty query line `\n`, each signed header as `lowercase-name:value\n` sorted
//! by name with every run of whitespace in the value collapsed to one space, `\n`, the `;`-joined signed header
//! names, `\n`, hex SHA-256 of the body. String to sign:
//! `DTA1-HMAC-SHA256\n{x-amz-date}\n\n{hex sha256(canonical request)}`. Key: HMAC-SHA256(secret, `yyyyMMdd`).
//! Signature: hex HMAC-SHA256(key, string to sign). Header:
//! `Authorization: DTA1-HMAC-SHA256 SignedHeaders=content-type;x-amz-date, Credential=KEYID/yyyyMMdd, Signature=…`.
//!
//! ```
//! use amazon_rewards_protocol::dta1::{Credential, sign, verify, KeyStore, AmzDate};
//! let credential = Credential::new("KEYID", "SECRETKEY");
//! let now = AmzDate::parse("20110909T233600Z").unwrap();
//! let signed = sign("POST", "/instant-access/fulfillment", "application/json", b"{}", &credential, now);
//! let keys = KeyStore::parse("SECRETKEY KEYID\n").unwrap();
//! let headers = [("Content-Type", "application/json"), ("x-amz-date", signed.x_amz_date.as_str()),
//!                ("Authorization", signed.authorization.as_str())];
//! assert_eq!(verify("POST", "/instant-access/fulfillment", &headers, b"{}", &keys, now).unwrap(), "KEYID");
//! ```

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The algorithm name.
pub const ALGORITHM: &str = "DTA1-HMAC-SHA256";
/// Largest clock difference accepted, in seconds (15 minutes, inclusive).
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;
/// Headers signed by [`sign`].
pub const SIGNED_HEADERS: [&str; 2] = ["content-type", "x-amz-date"];

/// A signing key: public id and secret. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// Public key id, sent in the `Credential=` part.
    pub key_id: String,
    secret: String,
}

impl Credential {
    /// A credential from its public id and secret.
    pub fn new(key_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self { key_id: key_id.into(), secret: secret.into() }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// The verifier's keys: public key id → secret, read from lines of `SECRETKEY PUBLICKEYID`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeyStore {
    secrets: HashMap<String, String>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore").field("key_ids", &self.secrets.keys().collect::<Vec<_>>()).finish()
    }
}

impl KeyStore {
    /// Parses a key-store file: one `SECRETKEY PUBLICKEYID` per line; blank lines and `#` comments ignored.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut secrets = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(secret), Some(key_id), None) => {
                    secrets.insert(key_id.to_owned(), secret.to_owned());
                }
                _ => return Err(format!("key store line {} is not `SECRETKEY PUBLICKEYID`", number + 1)),
            }
        }
        Ok(Self { secrets })
    }

    /// The credential of `key_id`, if known.
    pub fn credential(&self, key_id: &str) -> Option<Credential> {
        self.secrets.get(key_id).map(|secret| Credential::new(key_id, secret.clone()))
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

/// A UTC instant as `x-amz-date` writes it: `yyyyMMddTHHmmssZ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AmzDate {
    /// Seconds since the Unix epoch.
    pub unix: i64,
}

impl AmzDate {
    /// The current time.
    pub fn now() -> Self {
        let unix =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        Self { unix }
    }

    /// Parses `yyyyMMddTHHmmssZ`.
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
            return None;
        }
        let number = |range: std::ops::Range<usize>| -> Option<i64> {
            let digits = text.get(range)?;
            digits.bytes().all(|c| c.is_ascii_digit()).then(|| digits.parse().ok())?
        };
        let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
        let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let days = days_from_civil(year, month, day);
        if civil_from_days(days) != (year, month, day) {
            return None;
        }
        Some(Self { unix: days * 86_400 + hour * 3600 + minute * 60 + second })
    }

    /// `yyyyMMddTHHmmssZ`.
    pub fn format(&self) -> String {
        let days = self.unix.div_euclid(86_400);
        let seconds = self.unix.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", seconds / 3600, (seconds % 3600) / 60, seconds % 60)
    }

    /// `yyyy-MM-dd HH:mm:ss` (UTC), for people.
    pub fn readable(&self) -> String {
        let f = self.format();
        format!("{}-{}-{} {}:{}:{}", &f[0..4], &f[4..6], &f[6..8], &f[9..11], &f[11..13], &f[13..15])
    }

    /// `yyyyMMdd`.
    pub fn day(&self) -> String {
        self.format()[..8].to_owned()
    }
}

/// Days since 1970-01-01 of an ISO 8601 date (`YYYY-MM-DD`), if it is one.
///
/// ```
/// assert_eq!(amazon_rewards_protocol::dta1::days_since_epoch("1970-01-02"), Some(1));
/// assert_eq!(amazon_rewards_protocol::dta1::days_since_epoch("2026-13-01"), None);
/// ```
pub fn days_since_epoch(date: &str) -> Option<i64> {
    let mut parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (parts.next()??, parts.next()??, parts.next()??);
    ((1..=9999).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day) && date.len() == 10)
        .then(|| days_from_civil(year, month, day))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The path as the SDK's signer writes it (`HttpUtils.urlEncode(path, true)`): every byte but
/// `A-Z a-z 0-9 - . _ ~ /` percent-encoded (upper-case hex), `/` if empty. The path is the one on the wire,
/// already percent-encoded, so a `%` in it is encoded again, as the SDK does.
///
/// ```
/// use amazon_rewards_protocol::dta1::canonical_path;
/// assert_eq!(canonical_path(""), "/");
/// assert_eq!(canonical_path("/instant-access/fulfillment"), "/instant-access/fulfillment");
/// assert_eq!(canonical_path("/a b/c*d~e%20"), "/a%20b/c%2Ad~e%2520");
/// ```
pub fn canonical_path(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len() + 1);
    if !path.starts_with('/') {
        encoded.push('/');
    }
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// A header value as the SDK's signer writes it: every run of whitespace collapsed to one space (Java's
/// `replaceAll("\\s+", " ")`; nothing trimmed).
fn collapse_whitespace(value: &str) -> String {
    let mut collapsed = String::with_capacity(value.len());
    let mut in_run = false;
    for c in value.chars() {
        // Java's \s: space, tab, newline, vertical tab, form feed, carriage return.
        if matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r') {
            if !in_run {
                collapsed.push(' ');
            }
            in_run = true;
        } else {
            collapsed.push(c);
            in_run = false;
        }
    }
    collapsed
}

/// The canonical request over `headers` (name, value), of which `signed` (lower-case names) are signed.
pub fn canonical_request(method: &str, path: &str, headers: &[(&str, &str)], signed: &[String], body: &[u8]) -> String {
    let mut canonical = format!("{method}\n{}\n\n", canonical_path(path));
    let mut names: Vec<&String> = signed.iter().collect();
    names.sort();
    for name in &names {
        let value = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v).unwrap_or_default();
        canonical.push_str(&format!("{name}:{}\n", collapse_whitespace(value)));
    }
    canonical.push('\n');
    canonical.push_str(&names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(";"));
    canonical.push('\n');
    canonical.push_str(&sha256_hex(body));
    canonical
}

/// The hex signature of a canonical request at `date` with `secret`.
pub fn signature(canonical: &str, date: &str, secret: &str) -> String {
    let string_to_sign = format!("{ALGORITHM}\n{date}\n\n{}", sha256_hex(canonical.as_bytes()));
    let key = hmac(secret.as_bytes(), date.get(..8).unwrap_or_default().as_bytes());
    hex::encode(hmac(&key, string_to_sign.as_bytes()))
}

/// Headers to add to a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `x-amz-date` value.
    pub x_amz_date: String,
    /// `Authorization` value.
    pub authorization: String,
}

/// Signs a request with `Content-Type: content_type` at `now` (what Amazon sends: `content-type;x-amz-date`).
pub fn sign(
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    credential: &Credential,
    now: AmzDate,
) -> SignedHeaders {
    sign_headers(method, path, &[("content-type", content_type)], body, credential, now)
}

/// Signs a request carrying `headers` at `now`, as the SDK's signer does: every header of the request is
/// signed, plus the `x-amz-date` it adds.
pub fn sign_headers(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    credential: &Credential,
    now: AmzDate,
) -> SignedHeaders {
    let date = now.format();
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.retain(|(name, _)| !name.eq_ignore_ascii_case("x-amz-date"));
    all.push(("x-amz-date", date.as_str()));
    let mut signed: Vec<String> = all.iter().map(|(name, _)| collapse_whitespace(&name.to_ascii_lowercase())).collect();
    signed.sort();
    let canonical = canonical_request(method, path, &all, &signed, body);
    let signature = signature(&canonical, &date, &credential.secret);
    let authorization = format!(
        "{ALGORITHM} SignedHeaders={}, Credential={}/{}, Signature={signature}",
        signed.join(";"),
        credential.key_id,
        now.day()
    );
    SignedHeaders { x_amz_date: date, authorization }
}

/// The parts of an `Authorization: DTA1-HMAC-SHA256 …` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationHeader {
    /// Lower-case signed header names, in the header's order.
    pub signed_headers: Vec<String>,
    /// Public key id.
    pub key_id: String,
    /// `yyyyMMdd` of the credential.
    pub date: String,
    /// Hex signature.
    pub signature: String,
}

impl AuthorizationHeader {
    /// Parses the header value; `None` when it is not a well-formed DTA1 header.
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.trim().strip_prefix(ALGORITHM)?.strip_prefix(' ')?;
        let (mut signed_headers, mut credential, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (name, value) = part.trim().split_once('=')?;
            match name {
                "SignedHeaders" => signed_headers = Some(value),
                "Credential" => credential = Some(value),
                "Signature" => signature = Some(value),
                _ => return None,
            }
        }
        let (key_id, date) = credential?.split_once('/')?;
        let signature = signature?;
        if key_id.is_empty()
            || date.len() != 8
            || signature.len() != 64
            || !signature.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        let signed_headers: Vec<String> = signed_headers?.split(';').map(|h| h.trim().to_ascii_lowercase()).collect();
        if signed_headers.iter().any(String::is_empty) {
            return None;
        }
        Some(Self {
            signed_headers,
            key_id: key_id.to_owned(),
            date: date.to_owned(),
            signature: signature.to_ascii_lowercase(),
        })
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Authorization` header, or not a DTA1 one.
    #[error("missing or malformed DTA1 Authorization header")]
    MalformedAuthorization,
    /// No or malformed `x-amz-date`.
    #[error("missing or malformed x-amz-date")]
    MalformedDate,
    /// `x-amz-date` is not signed.
    #[error("x-amz-date is not among the signed headers")]
    DateNotSigned,
    /// The date is more than 15 minutes away from now.
    #[error("x-amz-date is more than 15 minutes from the server's clock")]
    ClockSkew,
    /// The credential's date is not the day of `x-amz-date`.
    #[error("the credential date does not match x-amz-date")]
    CredentialDateMismatch,
    /// The key id is not in the key store.
    #[error("unknown key id")]
    UnknownKey,
    /// The signature does not match.
    #[error("signature mismatch")]
    Mismatch,
}

/// Verifies a request; returns the key id that signed it.
pub fn verify(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    keys: &KeyStore,
    now: AmzDate,
) -> Result<String, SignatureError> {
    let header = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v);
    let authorization =
        header("authorization").and_then(AuthorizationHeader::parse).ok_or(SignatureError::MalformedAuthorization)?;
    let date_text = header("x-amz-date").ok_or(SignatureError::MalformedDate)?;
    let date = AmzDate::parse(date_text).ok_or(SignatureError::MalformedDate)?;
    if !authorization.signed_headers.iter().any(|h| h == "x-amz-date") {
        return Err(SignatureError::DateNotSigned);
    }
    if (now.unix - date.unix).abs() > MAX_SKEW_SECONDS {
        return Err(SignatureError::ClockSkew);
    }
    if authorization.date != date.day() {
        return Err(SignatureError::CredentialDateMismatch);
    }
    let credential = keys.credential(&authorization.key_id).ok_or(SignatureError::UnknownKey)?;
    let canonical = canonical_request(method, path, headers, &authorization.signed_headers, body);
    let expected = signature(&canonical, date_text, &credential.secret);
    // Constant-time comparison: how much of a forged signature is right must not leak through timing.
    let difference = expected.bytes().zip(authorization.signature.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if difference == 0 && expected.len() == authorization.signature.len() {
        Ok(credential.key_id)
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR: &str = "4d2f81ea2cf8d6963f8176a22eec4c65ae95c63502326a7c148686da7d50f47e";

    fn keys() -> KeyStore {
        KeyStore::parse("# test keys\nSECRETKEY KEYID\n\nOTHERSECRET OTHERID\n").unwrap()
    }

    fn signed(body: &[u8], at: AmzDate) -> (SignedHeaders, Vec<(String, String)>) {
        let signed = sign(
            "POST",
            "/instant-access/fulfillment",
            "application/json",
            body,
            &Credential::new("KEYID", "SECRETKEY"),
            at,
        );
        let headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("X-Amz-Date".to_owned(), signed.x_amz_date.clone()),
            ("Authorization".to_owned(), signed.authorization.clone()),
        ];
        (signed, headers)
    }

    fn check(headers: &[(String, String)], body: &[u8], now: AmzDate) -> Result<String, SignatureError> {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        verify("POST", "/instant-access/fulfillment", &headers, body, &keys(), now)
    }

    #[test]
    fn the_sdk_example_vector() {
        let at = AmzDate::parse("20110909T233600Z").unwrap();
        let signed = sign("GET", "", "application/json", b"body", &Credential::new("KEYID", "SECRETKEY"), at);
        assert_eq!(signed.x_amz_date, "20110909T233600Z");
        assert_eq!(
            signed.authorization,
            format!(
                "DTA1-HMAC-SHA256 SignedHeaders=content-type;x-amz-date, Credential=KEYID/20110909, Signature={VECTOR}"
            )
        );
        let headers = [
            ("content-type", "application/json"),
            ("x-amz-date", "20110909T233600Z"),
            ("authorization", signed.authorization.as_str()),
        ];
        assert_eq!(verify("GET", "/", &headers, b"body", &keys(), at), Ok("KEYID".into()));
    }

    /// The Java SDK's `SignerTest`: `GET http://amazon.com`, `Content-Type: application/json`, 2011-09-09
    /// 23:36:00, secret `SECRETKEY`, key `KEYID`.
    #[test]
    fn the_three_sdk_vectors() {
        let at = AmzDate::parse("20110909T233600Z").unwrap();
        let credential = Credential::new("KEYID", "SECRETKEY");
        let json = [("Content-Type", "application/json")];
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [u8], &'a str, &'a str);
        let cases: [Case; 3] = [
            (&json, b"body", "content-type;x-amz-date", VECTOR),
            (&json, b"", "content-type;x-amz-date", "d3042ffc41e6456535558faa130655a1c957263467e78d4485e70884b49ea52b"),
            (
                &[("Content-Type", "application/json"), ("aaa", "aaa"), ("zzz", "zzz")],
                b"body",
                "aaa;content-type;x-amz-date;zzz",
                "16ec5ffa0e33e8ec8f87f14bb5fd8a03545dbffe99eb3a89f5de450e791ef262",
            ),
        ];
        for (headers, body, signed_names, expected) in cases {
            let signed = sign_headers("GET", "", headers, body, &credential, at);
            assert_eq!(
                signed.authorization,
                format!(
                    "DTA1-HMAC-SHA256 SignedHeaders={signed_names}, Credential=KEYID/20110909, Signature={expected}"
                )
            );
            // The verifier sees the request with the trailing slash a servlet adds, and re-cased names.
            let mut received: Vec<(String, String)> =
                headers.iter().map(|(n, v)| (n.to_ascii_uppercase(), v.to_string())).collect();
            received.push(("X-Amz-Date".into(), signed.x_amz_date.clone()));
            received.push(("Authorization".into(), signed.authorization.clone()));
            let received: Vec<(&str, &str)> = received.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            assert_eq!(verify("GET", "/", &received, body, &keys(), at), Ok("KEYID".into()), "{signed_names}");
        }
    }

    #[test]
    fn header_whitespace_is_collapsed_as_the_sdk_does() {
        assert_eq!(collapse_whitespace("a  b\t\tc \r\n d"), "a b c d");
        assert_eq!(collapse_whitespace(" lead and trail  "), " lead and trail ");
        let at = AmzDate::parse("20110909T233600Z").unwrap();
        let credential = Credential::new("KEYID", "SECRETKEY");
        let signed =
            sign_headers("POST", "/p", &[("Content-Type", "application/json;  charset=utf-8")], b"{}", &credential, at);
        // A proxy that folds the spaces does not break the signature.
        let headers = [
            ("content-type", "application/json; charset=utf-8"),
            ("x-amz-date", signed.x_amz_date.as_str()),
            ("authorization", signed.authorization.as_str()),
        ];
        assert_eq!(verify("POST", "/p", &headers, b"{}", &keys(), at), Ok("KEYID".into()));
    }

    #[test]
    fn dates_round_trip() {
        for text in ["19700101T000000Z", "20110909T233600Z", "20240229T120000Z", "20991231T235959Z"] {
            assert_eq!(AmzDate::parse(text).unwrap().format(), text);
        }
        assert_eq!(AmzDate::parse("20110909T233600Z").unwrap().unix, 1_315_611_360);
        for bad in
            ["20110909 233600Z", "20110230T000000Z", "2011090T233600Z", "20111309T000000Z", "2011-9-9T23360Z", ""]
        {
            assert_eq!(AmzDate::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn tampering_is_refused() {
        let at = AmzDate::parse("20250102T030405Z").unwrap();
        let body = br#"{"operation":"Purchase","purchaseToken":"t1"}"#;
        let (_, headers) = signed(body, at);
        assert_eq!(check(&headers, body, at), Ok("KEYID".into()));
        assert_eq!(
            check(&headers, br#"{"operation":"Purchase","purchaseToken":"t2"}"#, at),
            Err(SignatureError::Mismatch)
        );
        let mut content_type = headers.clone();
        content_type[0].1 = "text/plain".into();
        assert_eq!(check(&content_type, body, at), Err(SignatureError::Mismatch));
        let mut date = headers.clone();
        date[1].1 = "20250102T030406Z".into();
        assert_eq!(check(&date, body, at), Err(SignatureError::Mismatch));
        let mut signature = headers.clone();
        signature[2].1 =
            signature[2].1.replace("Signature=", "Signature=0").chars().take(signature[2].1.len()).collect();
        assert_eq!(check(&signature, body, at), Err(SignatureError::Mismatch));
        let mut other_key = headers.clone();
        other_key[2].1 = other_key[2].1.replace("Credential=KEYID", "Credential=OTHERID");
        assert_eq!(check(&other_key, body, at), Err(SignatureError::Mismatch));
        let mut unknown = headers.clone();
        unknown[2].1 = unknown[2].1.replace("Credential=KEYID", "Credential=NOBODY");
        assert_eq!(check(&unknown, body, at), Err(SignatureError::UnknownKey));
        let mut day = headers.clone();
        day[2].1 = day[2].1.replace("/20250102", "/20250101");
        assert_eq!(check(&day, body, at), Err(SignatureError::CredentialDateMismatch));
        let mut unsigned_date = headers.clone();
        unsigned_date[2].1 = unsigned_date[2].1.replace("content-type;x-amz-date", "content-type");
        assert_eq!(check(&unsigned_date, body, at), Err(SignatureError::DateNotSigned));
        assert_eq!(check(&headers[..2], body, at), Err(SignatureError::MalformedAuthorization));
        let mut no_date = headers.clone();
        no_date.remove(1);
        assert_eq!(check(&no_date, body, at), Err(SignatureError::MalformedDate));
    }

    #[test]
    fn skew_is_accepted_up_to_exactly_fifteen_minutes() {
        let at = AmzDate::parse("20250102T120000Z").unwrap();
        let body = b"{}";
        let (_, headers) = signed(body, at);
        let shifted = |seconds: i64| AmzDate { unix: at.unix + seconds };
        assert!(check(&headers, body, shifted(900)).is_ok());
        assert!(check(&headers, body, shifted(-900)).is_ok());
        assert_eq!(check(&headers, body, shifted(901)), Err(SignatureError::ClockSkew));
        assert_eq!(check(&headers, body, shifted(-901)), Err(SignatureError::ClockSkew));
    }

    #[test]
    fn key_store_lines() {
        assert_eq!(keys().len(), 2);
        assert!(KeyStore::parse("ONLYONEWORD\n").is_err());
        assert!(KeyStore::parse("A B C\n").is_err());
        assert!(!format!("{:?}", keys()).contains("SECRETKEY"), "secrets stay out of Debug output");
        assert!(!format!("{:?}", Credential::new("K", "SECRETKEY")).contains("SECRETKEY"));
    }

    #[test]
    fn malformed_authorization_headers() {
        for bad in [
            "",
            "AWS4-HMAC-SHA256 SignedHeaders=a, Credential=K/20110909, Signature=00",
            "DTA1-HMAC-SHA256 SignedHeaders=content-type;x-amz-date, Credential=KEYID20110909, Signature=4d2f81ea2cf8d6963f8176a22eec4c65ae95c63502326a7c148686da7d50f47e",
            "DTA1-HMAC-SHA256 SignedHeaders=content-type;x-amz-date, Credential=KEYID/20110909, Signature=xyz",
            "DTA1-HMAC-SHA256 SignedHeaders=;, Credential=KEYID/20110909, Signature=4d2f81ea2cf8d6963f8176a22eec4c65ae95c63502326a7c148686da7d50f47e",
            "DTA1-HMAC-SHA256 Bogus=1, Credential=KEYID/20110909, Signature=4d2f81ea2cf8d6963f8176a22eec4c65ae95c63502326a7c148686da7d50f47e",
        ] {
            assert_eq!(AuthorizationHeader::parse(bad), None, "{bad}");
        }
    }
}
