//! Amazon Instant Access: the JSON calls Amazon makes to a vendor's two endpoints (account linking and
//! fulfilment) and their answers, from Amazon's official SDKs. Requests are signed with [`crate::dta1`].
//!
//! The JSON `operation` picks the call: `GetUserId`, `Purchase`, `Revoke`, `SubscriptionActivate`,
//! `SubscriptionDeactivate`, and the Java SDK's v3 additions `SubscriptionGet` and `SubscriptionUpdate`
//! with license counts (`numberOfLicenses`; answers carry `numberOfUnusedLicenses`, `numberOfUsedLicenses`,
//! `managementURL`) and the deactivation reason `REASSIGN` (`v3/serialization/messages/*.java`,
//! `base/SubscriptionReasonValue.java`). Operation names and enum values are read case-insensitively and
//! unknown fields are ignored, as the SDKs do. Every answer is HTTP 200 with a `response` code, `FAIL_*`
//! included; a bad signature is 403 and unreadable JSON 400.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Path of the account-linking endpoint on the studio backend.
pub const LINKING_PATH: &str = "/instant-access/linking";
/// Path of the fulfilment endpoint on the studio backend.
pub const FULFILLMENT_PATH: &str = "/instant-access/fulfillment";

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// The wire name.
            pub fn as_str(&self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// Reads a wire name, ignoring case.
            pub fn parse(text: &str) -> Option<Self> {
                $(if text.eq_ignore_ascii_case($text) { return Some(Self::$variant); })+
                None
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                // Read case-insensitively; written as listed.
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("unknown {} {text:?}", stringify!($name))))
            }
        }
    };
}

wire_enum!(
    /// Why a purchase is being fulfilled.
    PurchaseReason {
        /// Deliver the product.
        Fulfill = "FULFILL",
    }
);
wire_enum!(
    /// Why a purchase is being revoked.
    RevokeReason {
        /// Customer service refunded it.
        CustomerServiceRequest = "CUSTOMER_SERVICE_REQUEST",
        /// The payment failed.
        PaymentProblem = "PAYMENT_PROBLEM",
    }
);
wire_enum!(
    /// Why a subscription ended.
    DeactivateReason {
        /// Not renewed at period end.
        NotRenewed = "NOT_RENEWED",
        /// The customer cancelled.
        UserRequest = "USER_REQUEST",
        /// Customer service ended it.
        CustomerServiceRequest = "CUSTOMER_SERVICE_REQUEST",
        /// The payment failed.
        PaymentProblem = "PAYMENT_PROBLEM",
        /// The vendor could not fulfil it.
        UnableToFulfill = "UNABLE_TO_FULFILL",
        /// Test traffic.
        Testing = "TESTING",
        /// The subscription moved to another customer or account (SDK v3).
        Reassign = "REASSIGN",
    }
);
wire_enum!(
    /// Which period a deactivation happened in.
    SubscriptionPeriod {
        /// In the grace period after a failed renewal.
        GracePeriod = "GRACE_PERIOD",
        /// In a paid period.
        Regular = "REGULAR",
        /// Before it started.
        NotStarted = "NOT_STARTED",
        /// In the free trial.
        FreeTrial = "FREE_TRIAL",
    }
);
wire_enum!(
    /// The `response` code of an answer (by default `FailOther`).
    #[derive(Default)]
    ResponseCode {
        /// Done.
        Ok = "OK",
        /// Account linking: the customer's details match no account.
        FailAccountInvalid = "FAIL_ACCOUNT_INVALID",
        /// The user may not buy this.
        FailUserNotEligible = "FAIL_USER_NOT_ELIGIBLE",
        /// The user id is unknown.
        FailUserInvalid = "FAIL_USER_INVALID",
        /// Revoke: the purchase token is unknown.
        FailInvalidPurchaseToken = "FAIL_INVALID_PURCHASE_TOKEN",
        /// Subscription: the subscription id is unknown.
        FailInvalidSubscription = "FAIL_INVALID_SUBSCRIPTION",
        /// Anything else.
        #[default]
        FailOther = "FAIL_OTHER",
    }
);

/// A call from Amazon to the vendor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstantAccessRequest {
    /// Account linking: which user is this customer? Fields are what the customer typed.
    GetUserId {
        /// First field.
        info_field1: Option<String>,
        /// Second field.
        info_field2: Option<String>,
        /// Third field.
        info_field3: Option<String>,
    },
    /// Fulfil a purchase.
    Purchase {
        /// Always `FULFILL`.
        reason: PurchaseReason,
        /// The vendor's product (SKU).
        product_id: String,
        /// The linked user.
        user_id: String,
        /// Identifies the transaction: a repeated call with the same token must not grant twice.
        purchase_token: String,
    },
    /// Take a purchase back.
    Revoke {
        /// Why.
        reason: RevokeReason,
        /// The vendor's product.
        product_id: String,
        /// The linked user.
        user_id: String,
        /// The purchase being revoked.
        purchase_token: String,
    },
    /// A subscription started.
    SubscriptionActivate {
        /// Identifies the subscription.
        subscription_id: String,
        /// The vendor's product.
        product_id: String,
        /// The linked user.
        user_id: String,
        /// How many seats the customer bought (SDK v3); absent for a single-user subscription.
        number_of_licenses: Option<u32>,
    },
    /// Amazon asks how a subscription's licenses are used (SDK v3).
    SubscriptionGet {
        /// The subscription.
        subscription_id: String,
        /// The vendor's product, when sent.
        product_id: Option<String>,
        /// The linked user, when sent.
        user_id: Option<String>,
    },
    /// The customer changed a subscription's license count (SDK v3).
    SubscriptionUpdate {
        /// The subscription.
        subscription_id: String,
        /// The vendor's product, when sent.
        product_id: Option<String>,
        /// The linked user, when sent.
        user_id: Option<String>,
        /// The new number of licenses, when it changes.
        number_of_licenses: Option<u32>,
        /// Drop every license not assigned to a user.
        remove_all_unassigned_licenses: Option<bool>,
    },
    /// A subscription ended.
    SubscriptionDeactivate {
        /// The subscription.
        subscription_id: String,
        /// Why.
        reason: DeactivateReason,
        /// When.
        period: SubscriptionPeriod,
    },
}

/// Why a request body could not be read (answered with HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not a JSON object.
    #[error("the body is not a JSON object: {0}")]
    NotJson(String),
    /// No or unknown `operation`.
    #[error("unknown operation {0:?}")]
    UnknownOperation(String),
    /// A required field is missing or not a string.
    #[error("field {0} is missing or not a string")]
    MissingField(&'static str),
    /// A field has an unknown enum value.
    #[error("field {field} has unknown value {value:?}")]
    BadValue {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
    },
}

fn field(object: &Map<String, Value>, name: &'static str) -> Result<String, RequestError> {
    object.get(name).and_then(Value::as_str).map(str::to_owned).ok_or(RequestError::MissingField(name))
}

fn optional(object: &Map<String, Value>, name: &str) -> Option<String> {
    object.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// The largest license count read: the SDK's fields are Java `Integer`s.
pub const MAX_LICENSES: u32 = i32::MAX as u32;

fn licenses(object: &Map<String, Value>, name: &'static str) -> Result<Option<u32>, RequestError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .filter(|n| *n <= u64::from(MAX_LICENSES))
            .map(|n| Some(n as u32))
            .ok_or(RequestError::BadValue { field: name, value: value.to_string() }),
    }
}

fn flag(object: &Map<String, Value>, name: &'static str) -> Result<Option<bool>, RequestError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(*value)),
        Some(value) => Err(RequestError::BadValue { field: name, value: value.to_string() }),
    }
}

fn parsed<T>(object: &Map<String, Value>, name: &'static str, parse: fn(&str) -> Option<T>) -> Result<T, RequestError> {
    let value = field(object, name)?;
    parse(&value).ok_or(RequestError::BadValue { field: name, value })
}

impl InstantAccessRequest {
    /// Reads a request body.
    pub fn from_json(body: &[u8]) -> Result<Self, RequestError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| RequestError::NotJson(e.to_string()))?;
        let object = value.as_object().ok_or_else(|| RequestError::NotJson("not an object".into()))?;
        let operation = optional(object, "operation").unwrap_or_default();
        let is = |name: &str| operation.eq_ignore_ascii_case(name);
        if is("GetUserId") {
            Ok(Self::GetUserId {
                info_field1: optional(object, "infoField1"),
                info_field2: optional(object, "infoField2"),
                info_field3: optional(object, "infoField3"),
            })
        } else if is("Purchase") {
            Ok(Self::Purchase {
                reason: parsed(object, "reason", PurchaseReason::parse)?,
                product_id: field(object, "productId")?,
                user_id: field(object, "userId")?,
                purchase_token: field(object, "purchaseToken")?,
            })
        } else if is("Revoke") {
            Ok(Self::Revoke {
                reason: parsed(object, "reason", RevokeReason::parse)?,
                product_id: field(object, "productId")?,
                user_id: field(object, "userId")?,
                purchase_token: field(object, "purchaseToken")?,
            })
        } else if is("SubscriptionActivate") {
            Ok(Self::SubscriptionActivate {
                subscription_id: field(object, "subscriptionId")?,
                product_id: field(object, "productId")?,
                user_id: field(object, "userId")?,
                number_of_licenses: licenses(object, "numberOfLicenses")?,
            })
        } else if is("SubscriptionGet") {
            Ok(Self::SubscriptionGet {
                subscription_id: field(object, "subscriptionId")?,
                product_id: optional(object, "productId"),
                user_id: optional(object, "userId"),
            })
        } else if is("SubscriptionUpdate") {
            Ok(Self::SubscriptionUpdate {
                subscription_id: field(object, "subscriptionId")?,
                product_id: optional(object, "productId"),
                user_id: optional(object, "userId"),
                number_of_licenses: licenses(object, "numberOfLicenses")?,
                remove_all_unassigned_licenses: flag(object, "removeAllUnassignedLicenses")?,
            })
        } else if is("SubscriptionDeactivate") {
            Ok(Self::SubscriptionDeactivate {
                subscription_id: field(object, "subscriptionId")?,
                reason: parsed(object, "reason", DeactivateReason::parse)?,
                period: parsed(object, "period", SubscriptionPeriod::parse)?,
            })
        } else {
            Err(RequestError::UnknownOperation(operation))
        }
    }

    /// The request as Amazon sends it.
    pub fn to_json(&self) -> Value {
        use serde_json::json;
        match self {
            Self::GetUserId { info_field1, info_field2, info_field3 } => json!({
                "operation": "GetUserId", "infoField1": info_field1, "infoField2": info_field2, "infoField3": info_field3,
            }),
            Self::Purchase { reason, product_id, user_id, purchase_token } => json!({
                "operation": "Purchase", "reason": reason, "productId": product_id, "userId": user_id,
                "purchaseToken": purchase_token,
            }),
            Self::Revoke { reason, product_id, user_id, purchase_token } => json!({
                "operation": "Revoke", "reason": reason, "productId": product_id, "userId": user_id,
                "purchaseToken": purchase_token,
            }),
            Self::SubscriptionActivate { subscription_id, product_id, user_id, number_of_licenses } => {
                let mut call = json!({
                    "operation": "SubscriptionActivate", "subscriptionId": subscription_id, "productId": product_id,
                    "userId": user_id,
                });
                if let Some(count) = number_of_licenses {
                    call["numberOfLicenses"] = json!(count);
                }
                call
            }
            Self::SubscriptionGet { subscription_id, product_id, user_id } => without_nulls(json!({
                "operation": "SubscriptionGet", "subscriptionId": subscription_id, "productId": product_id,
                "userId": user_id,
            })),
            Self::SubscriptionUpdate {
                subscription_id,
                product_id,
                user_id,
                number_of_licenses,
                remove_all_unassigned_licenses,
            } => without_nulls(json!({
                "operation": "SubscriptionUpdate", "subscriptionId": subscription_id, "productId": product_id,
                "userId": user_id, "numberOfLicenses": number_of_licenses,
                "removeAllUnassignedLicenses": remove_all_unassigned_licenses,
            })),
            Self::SubscriptionDeactivate { subscription_id, reason, period } => json!({
                "operation": "SubscriptionDeactivate", "subscriptionId": subscription_id, "reason": reason,
                "period": period,
            }),
        }
    }
}

/// The schema of a request: one object per `operation`, with the fields [`InstantAccessRequest::from_json`]
/// requires and reads (names as the SDKs send them; enum values read case-insensitively, unknown fields ignored).
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for InstantAccessRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use serde_json::json;
        let text = json!({"type": "string"});
        let licenses = json!({"type": "integer", "minimum": 0, "maximum": MAX_LICENSES});
        let call = |operation: &str, required: &[&str], fields: Value| {
            let mut properties = json!({"operation": {"type": "string", "enum": [operation]}});
            if let (Some(properties), Some(fields)) = (properties.as_object_mut(), fields.as_object()) {
                properties.extend(fields.clone());
            }
            let mut required = required.to_vec();
            required.insert(0, "operation");
            json!({"type": "object", "title": operation, "required": required, "properties": properties})
        };
        let purchase_fields =
            |reasons: Value| json!({"reason": reasons, "productId": text, "userId": text, "purchaseToken": text});
        let calls = [
            call("GetUserId", &[], json!({"infoField1": text, "infoField2": text, "infoField3": text})),
            call(
                "Purchase",
                &["reason", "productId", "userId", "purchaseToken"],
                purchase_fields(wire_values::<PurchaseReason>()),
            ),
            call(
                "Revoke",
                &["reason", "productId", "userId", "purchaseToken"],
                purchase_fields(wire_values::<RevokeReason>()),
            ),
            call(
                "SubscriptionActivate",
                &["subscriptionId", "productId", "userId"],
                json!({"subscriptionId": text, "productId": text, "userId": text, "numberOfLicenses": licenses}),
            ),
            call(
                "SubscriptionGet",
                &["subscriptionId"],
                json!({"subscriptionId": text, "productId": text, "userId": text}),
            ),
            call(
                "SubscriptionUpdate",
                &["subscriptionId"],
                json!({"subscriptionId": text, "productId": text, "userId": text, "numberOfLicenses": licenses,
                       "removeAllUnassignedLicenses": {"type": "boolean"}}),
            ),
            call(
                "SubscriptionDeactivate",
                &["subscriptionId", "reason", "period"],
                json!({"subscriptionId": text, "reason": wire_values::<DeactivateReason>(),
                       "period": wire_values::<SubscriptionPeriod>()}),
            ),
        ];
        let schema = json!({"oneOf": calls});
        // The value above is a schema by construction; utoipa reads it back into its own type.
        serde_json::from_value(schema).unwrap_or_default()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for InstantAccessRequest {}

/// A wire enum's schema as JSON.
#[cfg(feature = "openapi")]
fn wire_values<T: utoipa::PartialSchema>() -> Value {
    serde_json::to_value(T::schema()).unwrap_or(Value::Null)
}

/// The JSON object without its `null` fields (the SDK leaves unset fields out).
fn without_nulls(mut value: Value) -> Value {
    if let Some(object) = value.as_object_mut() {
        object.retain(|_, v| !v.is_null());
    }
    value
}

/// An answer to Amazon.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct InstantAccessResponse {
    /// The outcome.
    pub response: ResponseCode,
    /// The linked user, for an `OK` answer to `GetUserId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Licenses not assigned to a user, answering `SubscriptionGet` / `SubscriptionUpdate` (SDK v3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_unused_licenses: Option<u32>,
    /// Licenses assigned to a user (SDK v3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_used_licenses: Option<u32>,
    /// Where the customer manages the subscription's licenses on the vendor's site (SDK v3).
    #[serde(rename = "managementURL", default, skip_serializing_if = "Option::is_none")]
    pub management_url: Option<String>,
}

impl InstantAccessResponse {
    /// An answer with just a code.
    pub fn code(response: ResponseCode) -> Self {
        Self { response, ..Self::default() }
    }
}

/// `GET` (the player's studio session): the player's Instant Access subscriptions as the backend recorded
/// Amazon's calls (studio-defined route; the fields are Amazon's).
pub const PLAYER_SUBSCRIPTIONS_PATH: &str = "/api/instant-access/subscriptions";

/// One Instant Access subscription of the player. Amazon's `SubscriptionActivate` carries no period (SDK v3), so
/// only how one ended can be told: its `SubscriptionDeactivate` reason and period.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlayerSubscription {
    /// Amazon's subscription id.
    pub subscription_id: String,
    /// The vendor's product.
    pub product_id: String,
    /// Active now.
    pub active: bool,
    /// Why it ended (`NOT_RENEWED`, `USER_REQUEST`, `PAYMENT_PROBLEM`, …), once it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_reason: Option<String>,
    /// In which period it ended (`FREE_TRIAL`, `GRACE_PERIOD`, `REGULAR`, `NOT_STARTED`), once it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_period: Option<String>,
}

impl PlayerSubscription {
    /// A line for the player.
    pub fn describe(&self) -> String {
        if self.active {
            return "active".into();
        }
        let during = match self.ended_period.as_deref() {
            Some("FREE_TRIAL") => " during the free trial",
            Some("GRACE_PERIOD") => " in the grace period after a failed payment",
            Some("NOT_STARTED") => " before it started",
            _ => "",
        };
        match self.ended_reason.as_deref() {
            Some("PAYMENT_PROBLEM") => {
                format!("ended{during}: a payment problem; fix the payment on Amazon to resubscribe")
            }
            Some("USER_REQUEST") => format!("cancelled{during}"),
            Some("NOT_RENEWED") => format!("not renewed{during}"),
            _ => format!("ended{during}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_player_is_told_how_a_subscription_ended() {
        let ended = |reason: &str, period: &str| PlayerSubscription {
            subscription_id: "s".into(),
            product_id: "p".into(),
            active: false,
            ended_reason: Some(reason.into()),
            ended_period: Some(period.into()),
        };
        assert!(ended("PAYMENT_PROBLEM", "GRACE_PERIOD").describe().contains("grace period after a failed payment"));
        assert_eq!(ended("USER_REQUEST", "FREE_TRIAL").describe(), "cancelled during the free trial");
        assert_eq!(PlayerSubscription { active: true, ..ended("x", "y") }.describe(), "active");
    }

    #[test]
    fn operations_and_enums_are_case_insensitive_and_unknown_fields_ignored() {
        let purchase = InstantAccessRequest::from_json(
            br#"{"operation":"purchase","reason":"fulfill","productId":"gold","userId":"u1","purchaseToken":"t1","newField":3}"#,
        )
        .unwrap();
        assert_eq!(
            purchase,
            InstantAccessRequest::Purchase {
                reason: PurchaseReason::Fulfill,
                product_id: "gold".into(),
                user_id: "u1".into(),
                purchase_token: "t1".into()
            }
        );
        let deactivate = InstantAccessRequest::from_json(
            br#"{"operation":"SUBSCRIPTIONDEACTIVATE","subscriptionId":"s","reason":"Payment_Problem","period":"grace_period"}"#,
        )
        .unwrap();
        assert!(matches!(
            deactivate,
            InstantAccessRequest::SubscriptionDeactivate {
                reason: DeactivateReason::PaymentProblem,
                period: SubscriptionPeriod::GracePeriod,
                ..
            }
        ));
        for request in [purchase, deactivate] {
            let round = InstantAccessRequest::from_json(request.to_json().to_string().as_bytes()).unwrap();
            assert_eq!(round, request);
        }
    }

    /// The shapes of the Java SDK's v3 requests.
    #[test]
    fn v3_subscription_get_update_licenses_and_reassign() {
        let get = InstantAccessRequest::from_json(
            br#"{"operation":"SubscriptionGet","subscriptionId":"s1","productId":"p","userId":"u"}"#,
        )
        .unwrap();
        assert_eq!(
            get,
            InstantAccessRequest::SubscriptionGet {
                subscription_id: "s1".into(),
                product_id: Some("p".into()),
                user_id: Some("u".into())
            }
        );
        let update = InstantAccessRequest::from_json(
            br#"{"operation":"SubscriptionUpdate","subscriptionId":"s1","numberOfLicenses":5,"removeAllUnassignedLicenses":false}"#,
        )
        .unwrap();
        assert_eq!(
            update,
            InstantAccessRequest::SubscriptionUpdate {
                subscription_id: "s1".into(),
                product_id: None,
                user_id: None,
                number_of_licenses: Some(5),
                remove_all_unassigned_licenses: Some(false)
            }
        );
        let activate = InstantAccessRequest::from_json(
            br#"{"operation":"SubscriptionActivate","subscriptionId":"s1","productId":"p","userId":"u","numberOfLicenses":3}"#,
        )
        .unwrap();
        assert!(matches!(activate, InstantAccessRequest::SubscriptionActivate { number_of_licenses: Some(3), .. }));
        let reassign = InstantAccessRequest::from_json(
            br#"{"operation":"SubscriptionDeactivate","subscriptionId":"s1","reason":"REASSIGN","period":"REGULAR"}"#,
        )
        .unwrap();
        assert!(matches!(
            reassign,
            InstantAccessRequest::SubscriptionDeactivate { reason: DeactivateReason::Reassign, .. }
        ));
        for request in [get, update, activate, reassign] {
            assert_eq!(InstantAccessRequest::from_json(request.to_json().to_string().as_bytes()).unwrap(), request);
        }
    }

    /// A license count that is not a non-negative 32-bit integer is a typed refusal.
    #[test]
    fn v3_license_counts_out_of_range_are_refused() {
        for bad in [r#"-1"#, r#"2147483648"#, r#""5""#, "1.5"] {
            let body = format!(r#"{{"operation":"SubscriptionUpdate","subscriptionId":"s","numberOfLicenses":{bad}}}"#);
            assert!(
                matches!(InstantAccessRequest::from_json(body.as_bytes()), Err(RequestError::BadValue { .. })),
                "{bad}"
            );
        }
    }

    /// The v3 answer's license fields and management URL, as the Java SDK names them.
    #[test]
    fn v3_answer_carries_licenses_and_the_management_url() {
        let answer = InstantAccessResponse {
            number_of_unused_licenses: Some(2),
            number_of_used_licenses: Some(1),
            management_url: Some("https://studio.example/licenses".into()),
            ..InstantAccessResponse::code(ResponseCode::Ok)
        };
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"response":"OK","numberOfUnusedLicenses":2,"numberOfUsedLicenses":1,"managementURL":"https://studio.example/licenses"}"#
        );
    }

    #[test]
    fn bad_requests_are_typed() {
        assert!(matches!(InstantAccessRequest::from_json(b"{nope"), Err(RequestError::NotJson(_))));
        assert!(matches!(InstantAccessRequest::from_json(b"[]"), Err(RequestError::NotJson(_))));
        assert!(matches!(
            InstantAccessRequest::from_json(br#"{"operation":"Teleport"}"#),
            Err(RequestError::UnknownOperation(_))
        ));
        assert_eq!(
            InstantAccessRequest::from_json(
                br#"{"operation":"Revoke","reason":"BORED","productId":"p","userId":"u","purchaseToken":"t"}"#
            ),
            Err(RequestError::BadValue { field: "reason", value: "BORED".into() })
        );
        assert_eq!(
            InstantAccessRequest::from_json(
                br#"{"operation":"Purchase","reason":"FULFILL","productId":"p","userId":"u"}"#
            ),
            Err(RequestError::MissingField("purchaseToken"))
        );
    }

    #[test]
    fn responses_serialize_as_the_sdk_does() {
        let linked =
            InstantAccessResponse { user_id: Some("u1".into()), ..InstantAccessResponse::code(ResponseCode::Ok) };
        assert_eq!(serde_json::to_string(&linked).unwrap(), r#"{"response":"OK","userId":"u1"}"#);
        let failed = InstantAccessResponse::code(ResponseCode::FailInvalidPurchaseToken);
        assert_eq!(serde_json::to_string(&failed).unwrap(), r#"{"response":"FAIL_INVALID_PURCHASE_TOKEN"}"#);
        let read: InstantAccessResponse = serde_json::from_str(r#"{"response":"fail_other"}"#).unwrap();
        assert_eq!(read.response, ResponseCode::FailOther);
    }
}
