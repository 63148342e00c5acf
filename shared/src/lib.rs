//! lever-bridge: everything with logic. The functions in `functions/` only wire these together.

pub mod admin;
pub mod clock;
pub mod config;
#[cfg(feature = "schema")]
pub mod contract;
pub mod events;
pub mod files;
pub mod function;
pub mod ids;
pub mod input;
pub mod lambda;
pub mod lever;
pub mod pages;
pub mod push;
pub mod queue;
pub mod receiver;
pub mod relay;
pub mod secrets;
pub mod store;
pub mod sync;
pub mod tenant;
pub mod transcript;
pub mod urlkey;
pub mod webhook;

/// Lever's recorded and documented bodies (`tests/fixtures/lever/`), for unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    pub fn read(name: &str) -> Vec<u8> {
        let path =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/lever/").to_string() + name;
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }
}
