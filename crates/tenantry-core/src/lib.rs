//! Domain types shared by every part of Tenantry.
//!
//! Nothing here does I/O. Values are parsed once at the edge (`TenantId::parse`,
//! `Hostname::parse`, ...) and carried as types afterwards, so code further in
//! never re-validates and cannot be handed an unchecked string.

pub mod audit;
pub mod clock;
pub mod credentials;
pub mod error;
pub mod ids;
pub mod keys;
pub mod secret;
pub mod tenant;
pub mod values;

pub use clock::{Clock, SystemClock};
pub use error::ValidationError;
pub use ids::TenantId;
pub use secret::SecretString;
