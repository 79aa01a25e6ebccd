//! The DevPay sign-up return's query string (`?ActivationKey=…&ProductCode=…&state=…`): any query is read or
//! refused without a panic, and a key that is accepted is a well-formed activation key of the right sign-up.
#![no_main]

use amazon_rewards_protocol::devpay::{is_valid_activation_key, read_signup_return};
use amazon_rewards_protocol::http::parse_request_head;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|query: &[u8]| {
    let mut head = b"GET /amazon-rewards/subscribed?".to_vec();
    head.extend_from_slice(query);
    head.extend_from_slice(b" HTTP/1.1\r\n\r\n");
    let Some(request) = parse_request_head(&head) else { return };
    if let Ok(key) = read_signup_return(&request.query, "s", "SEASONPASS") {
        assert!(is_valid_activation_key(&key));
        assert!(request.query.iter().any(|(k, v)| k == "ActivationKey" && *v == key));
    }
});
