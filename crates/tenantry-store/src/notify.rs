//! Authenticated cache invalidations. PostgreSQL lets any user connected to
//! the database `NOTIFY` any channel, and `LISTEN` to it, so a message on the
//! invalidation channel proves nothing by itself. Each one the server sends
//! carries an HMAC-SHA256 under a secret that only the owning role can read
//! (`tenantry_secrets`, made by the migrations), a timestamp and a random id:
//! a forged message fails the MAC, and a replayed one is either too old or
//! has an id the listener has already seen.
//!
//! Wire format: `v1 <mac hex> <unix seconds> <id hex> <payload>`, the MAC
//! covering everything after it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far a message's timestamp may be from the receiver's clock.
pub const MAX_AGE_SECS: i64 = 120;

/// The key that signs and checks invalidations; never printed.
pub(crate) struct NotifySeal {
    key: [u8; 32],
}

impl std::fmt::Debug for NotifySeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NotifySeal(..)")
    }
}

/// A message that passed the checks.
#[derive(Debug, PartialEq, Eq)]
pub struct VerifiedNotice<'a> {
    /// Unique per message: a receiver drops an id it has seen.
    pub id: &'a str,
    pub payload: &'a str,
}

/// Why a message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoticeRejected {
    #[error("not an authenticated invalidation")]
    Malformed,
    #[error("bad signature")]
    BadMac,
    #[error("timestamp outside the accepted window")]
    Stale,
}

impl NotifySeal {
    pub(crate) fn new(secret: &[u8]) -> Option<NotifySeal> {
        // Derived, so that the stored secret could serve other purposes.
        let mut mac = HmacSha256::new_from_slice(secret).ok()?;
        mac.update(b"tenantry invalidation v1");
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        Some(NotifySeal { key })
    }

    fn mac(&self, signed: &str) -> HmacSha256 {
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            // HMAC takes keys of any length.
            Err(_) => unreachable_hmac(),
        };
        mac.update(signed.as_bytes());
        mac
    }

    pub(crate) fn seal(&self, payload: &str, now_unix: i64) -> String {
        let id = hex::encode(rand::random::<[u8; 16]>());
        let signed = format!("{now_unix} {id} {payload}");
        let tag = hex::encode(self.mac(&signed).finalize().into_bytes());
        format!("v1 {tag} {signed}")
    }

    pub(crate) fn open<'a>(
        &self,
        message: &'a str,
        now_unix: i64,
    ) -> Result<VerifiedNotice<'a>, NoticeRejected> {
        let rest = message
            .strip_prefix("v1 ")
            .ok_or(NoticeRejected::Malformed)?;
        let (tag, signed) = rest.split_once(' ').ok_or(NoticeRejected::Malformed)?;
        let tag = hex::decode(tag).map_err(|_| NoticeRejected::Malformed)?;
        self.mac(signed)
            .verify_slice(&tag)
            .map_err(|_| NoticeRejected::BadMac)?;
        let mut parts = signed.splitn(3, ' ');
        let (Some(time), Some(id), Some(payload)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoticeRejected::Malformed);
        };
        let time: i64 = time.parse().map_err(|_| NoticeRejected::Malformed)?;
        if (now_unix - time).abs() > MAX_AGE_SECS {
            return Err(NoticeRejected::Stale);
        }
        Ok(VerifiedNotice { id, payload })
    }
}

#[allow(clippy::panic)]
fn unreachable_hmac() -> ! {
    panic!("HMAC accepts keys of every length")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn sealed_messages_open_and_forgeries_do_not() {
        let seal = NotifySeal::new(b"a secret of the owning role").unwrap();
        let message = seal.seal("h:acme.com", 1_000);
        let opened = seal.open(&message, 1_010).unwrap();
        assert_eq!(opened.payload, "h:acme.com");
        assert_eq!(opened.id.len(), 32);
        assert_ne!(seal.seal("*", 1_000), seal.seal("*", 1_000), "unique ids");

        assert_eq!(seal.open("*", 1_000), Err(NoticeRejected::Malformed));
        let other = NotifySeal::new(b"another secret").unwrap();
        assert_eq!(
            other.open(&message, 1_000),
            Err(NoticeRejected::BadMac),
            "signed with another key"
        );
        let tampered = message.replace("acme.com", "globex.com");
        assert_eq!(seal.open(&tampered, 1_000), Err(NoticeRejected::BadMac));
        assert_eq!(
            seal.open(&message, 1_000 + MAX_AGE_SECS + 1),
            Err(NoticeRejected::Stale)
        );
        assert_eq!(format!("{seal:?}"), "NotifySeal(..)");
    }
}
