//! The wire types the client hands out keep secrets out of `Debug`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tenantry_client::api::settings::SettingsOut;

#[test]
fn revealed_settings_hide_their_data_in_debug() {
    // What `settings(..).reveal(..)` decodes: plaintext secrets.
    let revealed: SettingsOut = serde_json::from_value(serde_json::json!({
        "category": "smtp",
        "data": {"host": "smtp.example", "password": "hunter2-smtp"},
        "updated_at": "2026-12-01T00:00:00Z",
    }))
    .unwrap();
    let shown = format!("{revealed:?}");
    assert!(!shown.contains("hunter2-smtp"), "{shown}");
    assert!(shown.contains("smtp"), "{shown}");
    // The value itself is untouched.
    assert_eq!(revealed.data["password"], "hunter2-smtp");
}
