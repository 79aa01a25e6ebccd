//! Instant Access requests as Amazon sends them: any body is read or refused with a typed error, never a
//! panic; a request that is read writes out as JSON that reads back to the same request.
#![no_main]

use amazon_rewards_protocol::instant_access::{InstantAccessRequest, InstantAccessResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = InstantAccessRequest::from_json(data) {
        let again = InstantAccessRequest::from_json(request.to_json().to_string().as_bytes()).unwrap();
        assert_eq!(again, request);
    }
    if let Ok(answer) = serde_json::from_slice::<InstantAccessResponse>(data) {
        let again: InstantAccessResponse = serde_json::from_slice(&serde_json::to_vec(&answer).unwrap()).unwrap();
        assert_eq!(again, answer);
    }
});
