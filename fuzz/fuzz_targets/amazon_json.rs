//! Every JSON answer the plugin and backend read from Amazon (Prime Gaming, Login with Amazon, the DevPay
//! license service, Moments) and the fulfil bodies the sandbox and backend read: any bytes parse or are
//! refused without a panic, and what parses re-serializes to a value that parses back equal.
#![no_main]

use amazon_rewards_protocol::devpay::{SubscriptionStatus, license};
use amazon_rewards_protocol::{lwa, moments, prime_gaming};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(data) {
        let again: T = serde_json::from_slice(&serde_json::to_vec(&value).unwrap()).unwrap();
        assert_eq!(again, value);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<prime_gaming::EntitlementsPage>(data);
    round_trip::<prime_gaming::FulfillRequest>(data);
    round_trip::<prime_gaming::FulfillResponse>(data);
    round_trip::<lwa::TokenResponse>(data);
    round_trip::<lwa::DeviceCodeResponse>(data);
    round_trip::<lwa::OAuthErrorBody>(data);
    round_trip::<lwa::Profile>(data);
    round_trip::<lwa::TokenInfo>(data);
    round_trip::<license::HostedActivation>(data);
    round_trip::<license::SubscriptionStanding>(data);
    round_trip::<license::LicenseError>(data);
    round_trip::<SubscriptionStatus>(data);
    round_trip::<moments::MomentAnswer>(data);
    round_trip::<moments::RewardInfo>(data);
    round_trip::<moments::RewardGrant>(data);
});
