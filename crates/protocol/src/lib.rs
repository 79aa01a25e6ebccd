//! Wire types for the Amazon digital-goods APIs that `bevy_amazon_rewards` speaks.
//!
//! This crate holds only data shapes and pure validation: no Bevy, no I/O. It is shared by the game
//! plugin (`bevy_amazon_rewards`), the local Amazon emulator (`amazon_rewards_sandbox`) and the
//! studio backend, so that all three agree on every field by construction.
//!
//! Modules: [`prime_gaming`] (entitlements and fulfilment), [`lwa`] (Login with Amazon), [`instant_access`]
//! (the calls Amazon makes to a vendor) with its request signature [`dta1`], [`devpay`], [`moments`],
//! [`http`] (bounded readers of `Retry-After` and loopback request heads), and [`sandbox_admin`]. Every parser
//! of input from outside lives here, without I/O, so it can be unit-tested and fuzzed (`fuzz/`).
//!
//! Where Amazon's public record gives a contract, the types follow it; where it is silent, the
//! sandbox defines the contract and the item says so ("sandbox-defined").
#![forbid(missing_docs)]

pub mod catalog;
pub mod competitions;
pub mod devpay;
pub mod dta1;
pub mod golden;
pub mod http;
pub mod instant_access;
pub mod inventory;
pub mod lwa;
pub mod moments;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod prime_gaming;
pub mod sandbox_admin;
pub mod studio;
