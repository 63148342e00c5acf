//! lever-bridge: everything with logic. The functions in `functions/` only wire these together.

pub mod admin;
pub mod clock;
pub mod config;
pub mod events;
pub mod lambda;
pub mod lever;
pub mod push;
pub mod queue;
pub mod receiver;
pub mod secrets;
pub mod store;
pub mod sync;
pub mod tenant;
pub mod transcript;
pub mod webhook;
