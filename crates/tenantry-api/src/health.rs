//! `health` wire types.

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: String,
}
