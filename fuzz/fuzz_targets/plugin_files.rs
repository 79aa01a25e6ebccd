//! The plugin's own files on the player's disk (the ledger, the tokens, the Moments outbox): any bytes are read
//! or refused without a panic, with the properties `bevy_amazon_rewards::fuzzing` asserts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bevy_amazon_rewards::fuzzing::ledger_file(data);
    bevy_amazon_rewards::fuzzing::tokens_file(data);
    bevy_amazon_rewards::fuzzing::moments_file(data);
});
