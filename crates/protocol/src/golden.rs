//! The golden shapes of Amazon's answers: one example answer per call the code reads, as `shared/WIRE.md`
//! records it from the public record (LWA's docs, a shipped game's Prime Gaming client), and a comparison that
//! says in words where an answer's shape differs. The sandbox's tests hold its answers to these shapes, and
//! `rewards-backend probe` holds real Amazon's answers to the same ones, so a difference between the sandbox
//! and production shows up as a sentence, not as a failed pull on launch day.
//!
//! Only shapes are compared (object keys, and whether a value is a string, number, boolean, array, object or
//! null), never values: a difference is printed without the answer's content, which may be secret.
//!
//! ```
//! use amazon_rewards_protocol::golden::{self, Golden};
//! let answer: serde_json::Value = serde_json::from_str(
//!     r#"{"Entitlements":[{"EntitlementId":"e1","VendorProductId":42,"NextInstruction":"FULFILL"}]}"#,
//! ).unwrap();
//! let differences = golden::compare(&Golden::PrimeGamingEntitlements.example(), &answer);
//! assert_eq!(differences[0].to_string(), "Entitlements[0].VendorProductId: expected a string, found a number");
//! ```

use std::fmt;

use serde_json::Value;

/// One answer of Amazon's the code reads, with its golden example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Golden {
    /// `POST /auth/o2/create/codepair` → 200 (LWA for Devices).
    LwaCodePair,
    /// `POST /auth/o2/token` while the player has not entered the code → 400 `authorization_pending`.
    LwaTokenPending,
    /// `POST /auth/o2/token` → 200 with the tokens.
    LwaToken,
    /// `GET /user/profile` → 200.
    LwaProfile,
    /// `GET /api/entitlements` → 200 (the shipped client's shape).
    PrimeGamingEntitlements,
    /// `POST /api/fulfill` → 200 (the shipped client reads `FulfillmentStatusUpdates`).
    PrimeGamingFulfill,
}

impl Golden {
    /// Every golden answer.
    pub const ALL: [Golden; 6] = [
        Golden::LwaCodePair,
        Golden::LwaTokenPending,
        Golden::LwaToken,
        Golden::LwaProfile,
        Golden::PrimeGamingEntitlements,
        Golden::PrimeGamingFulfill,
    ];

    /// The call, in words (`POST /auth/o2/token (pending)`).
    pub fn call(self) -> &'static str {
        match self {
            Golden::LwaCodePair => "POST /auth/o2/create/codepair",
            Golden::LwaTokenPending => "POST /auth/o2/token (while waiting for the player)",
            Golden::LwaToken => "POST /auth/o2/token",
            Golden::LwaProfile => "GET /user/profile",
            Golden::PrimeGamingEntitlements => "GET /api/entitlements",
            Golden::PrimeGamingFulfill => "POST /api/fulfill",
        }
    }

    /// The HTTP status the public record shows for this answer.
    pub fn status(self) -> u16 {
        match self {
            Golden::LwaTokenPending => 400,
            _ => 200,
        }
    }

    /// The golden example's text.
    pub fn text(self) -> &'static str {
        match self {
            Golden::LwaCodePair => include_str!("../golden/lwa_codepair.json"),
            Golden::LwaTokenPending => include_str!("../golden/lwa_token_pending.json"),
            Golden::LwaToken => include_str!("../golden/lwa_token.json"),
            Golden::LwaProfile => include_str!("../golden/lwa_profile.json"),
            Golden::PrimeGamingEntitlements => include_str!("../golden/prime_gaming_entitlements.json"),
            Golden::PrimeGamingFulfill => include_str!("../golden/prime_gaming_fulfill.json"),
        }
    }

    /// The golden example, parsed.
    pub fn example(self) -> Value {
        serde_json::from_str(self.text()).unwrap_or(Value::Null)
    }

    /// Whether the code's own parser reads `body` as this answer. `Err` says why not without quoting the
    /// answer (serde's own message may carry a value, such as a token): a missing field by name, anything
    /// else by kind and position.
    pub fn parse_with_code(self, body: &[u8]) -> Result<(), String> {
        use crate::{lwa, prime_gaming};
        fn read<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<(), String> {
            serde_json::from_slice::<T>(body).map(drop).map_err(|error| value_free(&error))
        }
        match self {
            Golden::LwaCodePair => read::<lwa::DeviceCodeResponse>(body),
            Golden::LwaTokenPending => read::<lwa::OAuthErrorBody>(body),
            Golden::LwaToken => read::<lwa::TokenResponse>(body),
            Golden::LwaProfile => read::<lwa::Profile>(body),
            Golden::PrimeGamingEntitlements => read::<prime_gaming::EntitlementsPage>(body),
            Golden::PrimeGamingFulfill => read::<prime_gaming::FulfillResponse>(body),
        }
    }
}

fn value_free(error: &serde_json::Error) -> String {
    let message = error.to_string();
    if message.starts_with("missing field") {
        return message;
    }
    let kind = match error.classify() {
        serde_json::error::Category::Io => "an unreadable body",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "a value of the wrong type",
        serde_json::error::Category::Eof => "JSON cut short",
    };
    format!("{kind} at line {}, column {}", error.line(), error.column())
}

/// Where and how an answer's shape differs from its golden example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Where, as `Entitlements[0].VendorProductId` (empty for the whole body).
    pub path: String,
    /// What differs.
    pub kind: DifferenceKind,
}

/// What differs at one place of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DifferenceKind {
    /// A field of the golden example is not in the answer.
    Missing {
        /// The kind of value the golden example has there.
        expected: Kind,
    },
    /// The answer has a field the golden example does not: harmless to the code (unknown fields are
    /// ignored), but new on the wire.
    Extra {
        /// The kind of value found.
        found: Kind,
    },
    /// Both have a value there, of different kinds.
    Changed {
        /// The golden example's kind.
        expected: Kind,
        /// The answer's kind.
        found: Kind,
    },
}

impl Difference {
    /// Whether the code can still read the answer despite this difference (only new fields).
    pub fn is_harmless(&self) -> bool {
        matches!(self.kind, DifferenceKind::Extra { .. })
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.path.is_empty() { "the body" } else { self.path.as_str() };
        match self.kind {
            DifferenceKind::Missing { expected } => write!(f, "{at}: missing; expected {}", expected.article()),
            DifferenceKind::Extra { found } => {
                write!(f, "{at}: new field ({}), not in the golden shape", found.article())
            }
            DifferenceKind::Changed { expected, found } => {
                write!(f, "{at}: expected {}, found {}", expected.article(), found.article())
            }
        }
    }
}

/// The kind of a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Boolean,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl Kind {
    /// The kind of `value`.
    pub fn of(value: &Value) -> Kind {
        match value {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Boolean,
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::String,
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
        }
    }

    fn article(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Boolean => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }
}

/// Most differences reported for one answer: a hostile answer cannot make the report unbounded.
pub const MAX_DIFFERENCES: usize = 64;

/// Where `found`'s shape differs from `golden`'s: every key of the golden example must be there with a value
/// of the same kind; every element of an array is held to the golden array's first element.
pub fn compare(golden: &Value, found: &Value) -> Vec<Difference> {
    let mut differences = Vec::new();
    compare_at(String::new(), golden, found, &mut differences);
    differences
}

fn compare_at(path: String, golden: &Value, found: &Value, out: &mut Vec<Difference>) {
    if out.len() >= MAX_DIFFERENCES {
        return;
    }
    match (golden, found) {
        (Value::Object(expected), Value::Object(actual)) => {
            for (key, value) in expected {
                let at = join(&path, key);
                match actual.get(key) {
                    Some(present) => compare_at(at, value, present, out),
                    None => push(out, at, DifferenceKind::Missing { expected: Kind::of(value) }),
                }
            }
            for (key, value) in actual.iter().filter(|(key, _)| !expected.contains_key(*key)) {
                push(out, join(&path, key), DifferenceKind::Extra { found: Kind::of(value) });
            }
        }
        (Value::Array(expected), Value::Array(actual)) => {
            let Some(model) = expected.first() else { return };
            for (index, element) in actual.iter().enumerate() {
                compare_at(format!("{path}[{index}]"), model, element, out);
            }
        }
        _ if Kind::of(golden) == Kind::of(found) => {}
        _ => push(out, path, DifferenceKind::Changed { expected: Kind::of(golden), found: Kind::of(found) }),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn push(out: &mut Vec<Difference>, path: String, kind: DifferenceKind) {
    if out.len() < MAX_DIFFERENCES {
        out.push(Difference { path, kind });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_golden_example_is_read_by_the_code() {
        for golden in Golden::ALL {
            assert!(golden.example().is_object(), "{golden:?}");
            assert_eq!(golden.parse_with_code(golden.text().as_bytes()), Ok(()), "{golden:?}");
            assert!(compare(&golden.example(), &golden.example()).is_empty());
        }
    }

    #[test]
    fn differences_are_told_in_words_without_values() {
        let golden = Golden::LwaToken.example();
        let found =
            json!({"access_token": "Atza|secret", "token_type": "bearer", "expires_in": "3600", "scope": "profile"});
        let words: Vec<String> = compare(&golden, &found).iter().map(ToString::to_string).collect();
        assert_eq!(
            words,
            [
                "expires_in: expected a number, found a string",
                "refresh_token: missing; expected a string",
                "scope: new field (a string), not in the golden shape",
            ]
        );
        assert!(!words.concat().contains("secret"));
    }

    #[test]
    fn arrays_are_held_to_the_first_golden_element_and_reports_are_bounded() {
        let golden = Golden::PrimeGamingEntitlements.example();
        let many: Vec<Value> = (0..500).map(|_| json!({"EntitlementId": 1})).collect();
        let differences = compare(&golden, &json!({ "Entitlements": many }));
        assert_eq!(differences.len(), MAX_DIFFERENCES);
        assert_eq!(differences[0].to_string(), "Entitlements[0].EntitlementId: expected a string, found a number");
        assert_eq!(
            compare(&golden, &json!([])),
            [Difference {
                path: String::new(),
                kind: DifferenceKind::Changed { expected: Kind::Object, found: Kind::Array }
            }]
        );
        assert!(compare(&golden, &json!({"Entitlements": []})).is_empty());
    }
}
