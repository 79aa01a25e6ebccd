//! DTA1: any `Authorization` header and any request go through the parser and verifier without a panic; a
//! request signed as the SDK signs verifies, and still verifies after its header names are re-cased and runs
//! of whitespace in its values are folded (what proxies do), and stops verifying when its body changes.
#![no_main]

use amazon_rewards_protocol::dta1::{AmzDate, AuthorizationHeader, Credential, KeyStore, sign_headers, verify};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    authorization: String,
    method: u8,
    path: String,
    headers: Vec<(Vec<u8>, String)>,
    body: Vec<u8>,
    /// Seconds since the epoch of the signature, within years 1970..2100.
    at: u32,
    skew: i16,
}

fn name(bytes: &[u8]) -> String {
    let name: String = bytes.iter().map(|b| (b'a' + b % 26) as char).take(12).collect();
    if name.is_empty() || name == "authorization" || name == "xamzdate" { "aaa".into() } else { name }
}

fuzz_target!(|input: Input| {
    if let Some(parsed) = AuthorizationHeader::parse(&input.authorization) {
        assert_eq!(parsed.signature.len(), 64);
        assert_eq!(parsed.date.len(), 8);
        assert!(!parsed.key_id.is_empty() && parsed.signed_headers.iter().all(|h| !h.is_empty()));
    }
    let keys = KeyStore::parse("SECRETKEY KEYID\n").unwrap();
    let at = AmzDate { unix: i64::from(input.at) };
    let method = ["GET", "POST", "PUT", "DELETE"][usize::from(input.method % 4)];
    let forged = [("authorization", input.authorization.as_str()), ("x-amz-date", "20110909T233600Z")];
    let _ = verify(method, &input.path, &forged, &input.body, &keys, at);

    // Header values as HTTP carries them: visible ASCII and spaces, no surrounding whitespace.
    let mut headers: Vec<(String, String)> = Vec::new();
    for (raw_name, value) in input.headers.iter().take(6) {
        let value: String = value.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').collect();
        let (name, value) = (name(raw_name), value.trim().to_owned());
        if !headers.iter().any(|(n, _)| *n == name) {
            headers.push((name, value));
        }
    }
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let credential = Credential::new("KEYID", "SECRETKEY");
    let signed = sign_headers(method, &input.path, &pairs, &input.body, &credential, at);
    let now = AmzDate { unix: at.unix + i64::from(input.skew) % 900 };
    let mut received: Vec<(String, String)> =
        headers.iter().map(|(n, v)| (n.to_ascii_uppercase(), v.replace(' ', "  "))).collect();
    received.push(("X-AMZ-DATE".into(), signed.x_amz_date.clone()));
    received.push(("Authorization".into(), signed.authorization.clone()));
    let received: Vec<(&str, &str)> = received.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(verify(method, &input.path, &received, &input.body, &keys, now), Ok("KEYID".to_owned()));
    let mut tampered = input.body.clone();
    tampered.push(b'!');
    assert!(verify(method, &input.path, &received, &tampered, &keys, now).is_err());
});
