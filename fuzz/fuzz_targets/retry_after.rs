//! `Retry-After`: any value is read or refused without a panic, and what is read is at most an hour, so it
//! can be added to an `Instant`.
#![no_main]

use std::time::{Duration, Instant, SystemTime};

use amazon_rewards_protocol::http::{MAX_SERVER_DELAY, parse_retry_after};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (String, u32)| {
    let (value, seconds) = input;
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(seconds));
    if let Some(delay) = parse_retry_after(&value, now) {
        assert!(delay <= MAX_SERVER_DELAY, "{value:?} gave {delay:?}");
        let _ = Instant::now() + delay;
    }
});
