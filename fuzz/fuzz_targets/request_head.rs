//! The loopback listener's request head: any bytes are read or refused without a panic; a head that is read
//! has a path starting with `/` that the bytes contain, and a method of the request line.
#![no_main]

use amazon_rewards_protocol::http::{MAX_REQUEST_HEAD_BYTES, parse_request_head};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(head) = parse_request_head(data) {
        assert!(data.len() <= MAX_REQUEST_HEAD_BYTES);
        assert!(head.path.starts_with('/'));
        let text = std::str::from_utf8(data).unwrap();
        assert!(text.starts_with(&format!("{} {}", head.method, head.path)));
    }
});
