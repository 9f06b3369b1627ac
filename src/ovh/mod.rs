//! The OVH APIv6 client: endpoints, credentials (environment, ovh.conf, OAuth2), request signing,
//! the clock delta, batch reads, typed models, the inventory snapshot and the metrics token.
//! Owns its own transport (timeouts, signing); retry policy belongs to `extract`.

pub mod client;
pub mod credentials;
pub mod inventory;
pub mod model;
pub mod sign;

pub use client::{Client, OvhError};
pub use credentials::{resolve_endpoint, Auth};
