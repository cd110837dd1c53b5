//! Verification: walks a chain from its pruned anchor, entry by entry (in
//! pages, never the whole log in memory), checks every checkpoint's
//! signature and that its (size, hash) is the chain's at that size, and
//! finally that the head row agrees. The same walk verifies an NDJSON export
//! with no database.
#![allow(clippy::disallowed_methods)] // The audit log's own bookkeeping (checkpoints, their key, retention, verification and export reads), run by the worker and the CLI on the server's authority and by handlers after their grant check; it records no change. Key rotation goes through the change path.

use super::{ChainTx, chain_of_origin, hash_bytes, origin};
pub use tenantry_api::audit::VerifyReport;
use tenantry_core::audit::{AuditEntry, Chain, GENESIS_HASH, verify_chain};
use tenantry_crypto::note::{Checkpoint, Note, NoteVerifier};
use tenantry_store::{Store, StoreError, StoredCheckpoint};

/// Entries read per page.
const PAGE: u32 = 500;

/// A checkpoint to check: the stored columns (or export fields) and its note.
pub struct CheckpointView<'a> {
    pub size: u64,
    pub head_hash: &'a str,
    pub note: &'a str,
}

/// The walk over one chain, fed entries and checkpoints in order.
pub struct Walker {
    origin: String,
    verifiers: Vec<NoteVerifier>,
    pub size: u64,
    pub hash: String,
    anchor: u64,
    anchor_vouched: bool,
    pub checked: u64,
    pub broken: Option<(u64, String)>,
}

impl Walker {
    pub fn new(chain: &Chain, verifiers: Vec<NoteVerifier>, start: (u64, String)) -> Walker {
        Walker {
            origin: origin(chain),
            verifiers,
            anchor: start.0,
            // A whole chain starts at the genesis: nothing to vouch for.
            anchor_vouched: start.0 == 0 && start.1 == GENESIS_HASH,
            size: start.0,
            hash: start.1,
            checked: 0,
            broken: None,
        }
    }

    fn fail(&mut self, sequence: u64, reason: String) {
        if self.broken.is_none() {
            self.broken = Some((sequence.max(1), reason));
        }
    }

    pub fn entry(&mut self, entry: &AuditEntry) {
        if self.broken.is_some() {
            return;
        }
        match verify_chain(std::slice::from_ref(entry), (self.size, &self.hash)) {
            Ok((size, hash)) => {
                self.size = size;
                self.hash = hash;
            }
            Err(b) => self.fail(b.sequence, b.reason),
        }
    }

    /// Checks a checkpoint of the chain's current size.
    pub fn checkpoint(&mut self, cp: &CheckpointView<'_>) {
        if self.broken.is_some() {
            return;
        }
        let at = cp.size;
        let Ok(note) = Note::parse(cp.note) else {
            return self.fail(
                at,
                format!("the checkpoint at size {at} is not a signed note"),
            );
        };
        if note.verified_by(&self.verifiers).is_none() {
            return self.fail(
                at,
                format!("the checkpoint at size {at} is not signed by a known checkpoint key"),
            );
        }
        let Ok(body) = Checkpoint::parse(&note.text) else {
            return self.fail(at, format!("the checkpoint at size {at} is malformed"));
        };
        if body.origin != self.origin {
            return self.fail(
                at,
                format!(
                    "the checkpoint at size {at} is of another chain ({})",
                    body.origin
                ),
            );
        }
        if body.size != cp.size || body.hash != hash_bytes(cp.head_hash) {
            return self.fail(
                at,
                format!("the checkpoint at size {at} disagrees with its signed note"),
            );
        }
        if body.size != self.size || body.hash != hash_bytes(&self.hash) {
            return self.fail(
                at,
                format!("the signed checkpoint at size {at} commits to another chain than the one stored"),
            );
        }
        if body.size == self.anchor {
            self.anchor_vouched = true;
        }
        self.checked += 1;
    }

    /// A checkpoint larger than the chain as walked: entries were removed.
    pub fn beyond_end(&mut self, size: u64) {
        let end = self.size;
        self.fail(
            end + 1,
            format!(
                "a signed checkpoint covers {size} entries but the chain ends at {end}: its newest entries were removed"
            ),
        );
    }

    pub fn finish(mut self, chain: &Chain) -> VerifyReport {
        if !self.anchor_vouched {
            let anchor = self.anchor;
            self.fail(
                anchor + 1,
                format!("the retained entries start after sequence {anchor}, which no signed checkpoint vouches for"),
            );
        }
        let (first_bad_sequence, reason) = self.broken.clone().unzip();
        VerifyReport {
            ok: first_bad_sequence.is_none(),
            chain: super::chain_name(chain),
            size: self.size,
            head_hash: self.hash,
            pruned_through: self.anchor,
            first_bad_sequence,
            reason,
            checkpoints_checked: self.checked,
        }
    }
}

/// Verifies a stored chain. A chain whose head moves during the walk (an
/// append meanwhile) is walked again, up to three times.
pub async fn verify_stored(store: &Store, chain: &Chain) -> Result<VerifyReport, StoreError> {
    let verifiers = super::keys::verifiers(store).await?;
    let mut report = None;
    for _ in 0..3 {
        let (r, moved) = walk_stored(store, chain, verifiers.clone()).await?;
        report = Some(r);
        if !moved {
            break;
        }
    }
    report.ok_or_else(|| StoreError::Corrupt("no verification ran".into()))
}

async fn walk_stored(
    store: &Store,
    chain: &Chain,
    verifiers: Vec<NoteVerifier>,
) -> Result<(VerifyReport, bool), StoreError> {
    let mut tx = ChainTx::read(store, chain).await?;
    let head = tx.head().await?;
    let (pruned_through, pruned_hash) = head
        .as_ref()
        .map(|h| (h.pruned_through, h.pruned_hash.clone()))
        .unwrap_or((0, GENESIS_HASH.to_owned()));
    let mut walker = Walker::new(chain, verifiers, (pruned_through, pruned_hash));
    let mut pending: std::collections::VecDeque<StoredCheckpoint> = Default::default();
    let mut cp_after: Option<(u64, i64)> = None;
    let mut cp_done = false;
    // Checkpoints below the anchor were pruned with their entries.
    let min_size = pruned_through;
    loop {
        // Check every checkpoint at the current size (refilling the buffer a
        // page at a time).
        loop {
            if pending.is_empty() && !cp_done {
                let page = tx
                    .checkpoints_by_size(cp_after, min_size, u64::MAX, PAGE)
                    .await?;
                cp_done = page.len() < PAGE as usize;
                if let Some(last) = page.last() {
                    cp_after = Some((last.size, last.slot));
                }
                pending.extend(page);
            }
            match pending.front() {
                Some(cp) if cp.size <= walker.size => {
                    if cp.size == walker.size {
                        walker.checkpoint(&CheckpointView {
                            size: cp.size,
                            head_hash: &cp.head_hash,
                            note: &cp.note,
                        });
                    }
                    pending.pop_front();
                }
                _ => break,
            }
        }
        if walker.broken.is_some() {
            break;
        }
        // A row edited into something that no longer decodes is a break in
        // the chain, not an error: the page is read again one entry at a
        // time, so the report names the first entry that does not decode.
        let page = match tx.range(walker.size, PAGE).await {
            Err(StoreError::Corrupt(_)) => match tx.range(walker.size, 1).await {
                Err(StoreError::Corrupt(why)) => {
                    let at = walker.size + 1;
                    walker.fail(
                        at,
                        format!("the entry after sequence {} cannot be read: {why}", at - 1),
                    );
                    break;
                }
                other => other?,
            },
            other => other?,
        };
        if page.is_empty() {
            break;
        }
        // One entry at a time, so that checkpoints in between are checked.
        let mut progressed = false;
        for entry in &page {
            let before = walker.size;
            walker.entry(entry);
            if walker.broken.is_some() || walker.size == before {
                break;
            }
            progressed = true;
            if pending.front().is_some_and(|cp| cp.size <= walker.size)
                || (pending.is_empty() && !cp_done)
            {
                break; // back to the checkpoint loop, then a fresh page
            }
        }
        if walker.broken.is_some() || !progressed {
            break;
        }
    }
    if walker.broken.is_none() {
        // Anything left is larger than the chain.
        if let Some(cp) = pending.front() {
            walker.beyond_end(cp.size);
        } else if !cp_done
            && let Some(cp) = tx
                .checkpoints_by_size(cp_after, walker.size + 1, u64::MAX, 1)
                .await?
                .first()
        {
            walker.beyond_end(cp.size);
        }
    }
    if walker.broken.is_none() {
        let (size, hash) = head
            .as_ref()
            .map(|h| (h.size, h.head_hash.clone()))
            .unwrap_or((0, GENESIS_HASH.to_owned()));
        if size != walker.size || hash != walker.hash {
            let at = size.min(walker.size) + 1;
            let walked = walker.size;
            walker.broken = Some((
                at,
                format!(
                    "the chain's head row says {size} entries, the stored entries make {walked}"
                ),
            ));
        }
    }
    let after = tx.head().await?;
    tx.commit().await?;
    let moved = after.map(|h| h.size) != head.map(|h| h.size);
    Ok((walker.finish(chain), moved))
}

/// Verifies an NDJSON export (see `export.rs`) with no database: the entries
/// chain to each other, every checkpoint in the file is signed by a trusted
/// key (`trusted`, or the keys in the file when none is given) and matches
/// the entries, and at least one checkpoint does.
pub fn verify_export(text: &str, trusted: &[NoteVerifier]) -> Result<VerifyReport, String> {
    let mut chain: Option<Chain> = None;
    let mut file_keys = Vec::new();
    let mut entries: Vec<AuditEntry> = Vec::new();
    let mut checkpoints: Vec<(u64, String, String)> = Vec::new();
    let mut complete = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: not JSON: {e}", n + 1))?;
        match value["kind"].as_str() {
            Some("header") => {
                let o = value["origin"].as_str().unwrap_or_default();
                chain = Some(
                    chain_of_origin(o)
                        .ok_or_else(|| format!("line {}: unknown origin {o}", n + 1))?,
                );
            }
            Some("key") => {
                let vkey = value["vkey"].as_str().unwrap_or_default();
                file_keys
                    .push(NoteVerifier::parse(vkey).map_err(|e| format!("line {}: {e}", n + 1))?);
            }
            Some("entry") => {
                let mut v = value.clone();
                if let Some(map) = v.as_object_mut() {
                    map.remove("kind");
                }
                entries.push(
                    serde_json::from_value(v)
                        .map_err(|e| format!("line {}: not an audit entry: {e}", n + 1))?,
                );
            }
            Some("end") => complete = true,
            Some("checkpoint") => checkpoints.push((
                value["size"]
                    .as_u64()
                    .ok_or_else(|| format!("line {}: checkpoint without size", n + 1))?,
                value["head_hash"].as_str().unwrap_or_default().to_owned(),
                value["note"].as_str().unwrap_or_default().to_owned(),
            )),
            _ => return Err(format!("line {}: unknown kind", n + 1)),
        }
    }
    let chain = chain.ok_or("the file has no header line")?;
    if !complete {
        return Err("the export is incomplete: it has no end line".into());
    }
    let verifiers = if trusted.is_empty() {
        file_keys
    } else {
        trusted.to_vec()
    };
    checkpoints.sort_by_key(|c| c.0);
    let start = entries
        .first()
        .map(|e| (e.sequence.saturating_sub(1), e.prev_hash.clone()))
        .unwrap_or((0, GENESIS_HASH.to_owned()));
    let mut walker = Walker::new(&chain, verifiers, start);
    // A range starts mid-chain: its first entries are vouched for by the
    // later checkpoints that commit to them (each hash covers its
    // predecessors), so the anchor itself needs no checkpoint; at least one
    // must verify (checked below).
    walker.anchor_vouched = true;
    let mut cps = checkpoints.iter().peekable();
    let check_here =
        |walker: &mut Walker,
         cps: &mut std::iter::Peekable<std::slice::Iter<'_, (u64, String, String)>>| {
            while let Some(cp) = cps.peek() {
                if cp.0 > walker.size {
                    break;
                }
                if cp.0 == walker.size {
                    walker.checkpoint(&CheckpointView {
                        size: cp.0,
                        head_hash: &cp.1,
                        note: &cp.2,
                    });
                }
                cps.next();
            }
        };
    check_here(&mut walker, &mut cps);
    for entry in &entries {
        walker.entry(entry);
        check_here(&mut walker, &mut cps);
    }
    if walker.broken.is_none()
        && let Some(cp) = cps.peek()
    {
        walker.beyond_end(cp.0);
    }
    if walker.broken.is_none() && walker.checked == 0 {
        let at = walker.size + 1;
        walker.broken = Some((
            at,
            "no checkpoint in the file is signed by a trusted key".into(),
        ));
    }
    Ok(walker.finish(&chain))
}
