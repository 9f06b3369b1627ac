//! The OVH APIv6 client: endpoints, credentials (environment, ovh.conf, OAuth2), request signing,
//! the clock delta and the clocks behind it, batch reads, typed models, the inventory snapshot and the metrics token.
//! Owns its own transport (timeouts, signing, pacing); retry policy belongs to `extract`.

pub mod batch;
pub mod client;
pub mod clock;
pub mod credentials;
pub mod error;
#[cfg(test)]
mod fake;
pub mod inventory;
pub mod model;
mod oauth2;
pub mod sign;
pub mod throttle;

pub use client::{Client, ClientOptions};
pub use credentials::{resolve_endpoint, Auth};
pub use error::OvhError;
