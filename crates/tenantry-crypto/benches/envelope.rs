//! Credential-vault costs, single-threaded: `cargo bench -p tenantry-crypto`.
//!
//! (a) sealing one credential (three ~40-byte fields, like a WhatsApp
//!     credential), (b) opening it, (c) re-wrapping 100,000 data keys from one
//!     KEK to another (unwrap + wrap each), as a master-key rotation does.
//!
//! Each figure comes with a baseline measured in the same run (SHA-256 of the
//! same bytes), so results from different machines can be compared as ratios.
//! Plain `std::time` timing, no criterion, to keep the build light: every
//! micro-benchmark is calibrated to ~100 ms per sample and the median of
//! several samples is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use rand::RngCore as _;
use rand::rngs::OsRng;
use sha2::{Digest as _, Sha256};
use tenantry_crypto::{Binding, DataKey, Kek, Keyring, WrappedKey, aead, open, seal, unwrap, wrap};

const SAMPLES: usize = 9;
const SAMPLE_TIME: Duration = Duration::from_millis(100);
const REWRAP_COUNT: usize = 100_000;
const REWRAP_ROUNDS: usize = 3;

/// A WhatsApp Cloud API credential: three secret fields of ~40 bytes.
const FIELDS: [(&str, &[u8]); 3] = [
    ("access_token", b"EAAGm0PX4ZCpsBAKZB7q1xZCwZDZD9a8RkT3nQpL"),
    ("app_secret", b"3f9c1d2e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"),
    (
        "webhook_verify_token",
        b"whv_8Jq2nR5tY7uI9oP1aS3dF6gH0jK4lZ2xC7vB",
    ),
];

fn binding(field: &str) -> Binding<'_> {
    Binding {
        tenant_id: "acme",
        record_id: "cred_01HXAMPLE7Q3",
        kind: "whatsapp",
        field,
    }
}

/// Median and minimum ns per call of `f`, over `SAMPLES` samples of ~`SAMPLE_TIME`.
fn bench(mut f: impl FnMut()) -> (f64, f64) {
    // Warm up and calibrate.
    let mut iters: u64 = 1;
    loop {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        let elapsed = start.elapsed();
        if elapsed >= SAMPLE_TIME / 4 {
            let per = elapsed.as_secs_f64() / iters as f64;
            iters = ((SAMPLE_TIME.as_secs_f64() / per) as u64).max(1);
            break;
        }
        iters *= 2;
    }
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    (samples[SAMPLES / 2], samples[0])
}

fn row(name: &str, (median, min): (f64, f64), baseline: Option<f64>) {
    let ratio = baseline.map_or(String::new(), |b| {
        format!("  {:>6.1}x baseline", median / b)
    });
    println!("{name:<52} {median:>10.0} ns/op (min {min:>8.0}){ratio}");
}

fn main() {
    // `cargo bench` passes --bench; anything else (e.g. a filter) is ignored.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "tenantry-crypto envelope benchmark — single-threaded, median of {SAMPLES} samples of ~{SAMPLE_TIME:?}"
    );
    println!("load average at start: {}", load.trim());
    #[cfg(target_arch = "x86_64")]
    println!(
        "cpu: aes-ni {}, pclmulqdq {}",
        std::arch::is_x86_feature_detected!("aes"),
        std::arch::is_x86_feature_detected!("pclmulqdq"),
    );
    let credential_bytes: usize = FIELDS.iter().map(|(_, v)| v.len()).sum();
    println!(
        "credential: {} fields, {credential_bytes} bytes of secrets ({})",
        FIELDS.len(),
        FIELDS.map(|(f, v)| format!("{f} {} B", v.len())).join(", ")
    );
    println!();

    let dek = DataKey::generate("dek_acme_1");

    // Baseline: SHA-256 of each of the same three field values.
    let base_credential = bench(|| {
        for (_, value) in FIELDS {
            black_box(Sha256::digest(black_box(value)));
        }
    });
    row(
        "baseline: SHA-256 of the 3 field values",
        base_credential,
        None,
    );

    // (a) seal one credential.
    let seal_credential = bench(|| {
        for (field, value) in FIELDS {
            black_box(seal(&dek, &binding(field), black_box(value)).unwrap());
        }
    });
    row(
        "(a) seal one credential (3 fields)",
        seal_credential,
        Some(base_credential.0),
    );

    // (b) open it.
    let envelopes: Vec<(&str, String)> = FIELDS
        .iter()
        .map(|(field, value)| (*field, seal(&dek, &binding(field), value).unwrap()))
        .collect();
    println!(
        "    envelope sizes: {}",
        envelopes
            .iter()
            .map(|(_, e)| format!("{} B", e.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let open_credential = bench(|| {
        for (field, envelope) in &envelopes {
            black_box(open(&dek, &binding(field), black_box(envelope)).unwrap());
        }
    });
    row(
        "(b) open one credential (3 fields)",
        open_credential,
        Some(base_credential.0),
    );

    // Where the time goes.
    let key = [7u8; 32];
    let nonce = [9u8; 12];
    let raw_encrypt = bench(|| {
        black_box(aead::encrypt(&key, &nonce, black_box(b"aad"), black_box(FIELDS[0].1)).unwrap());
    });
    row(
        "    component: aead::encrypt of one 40 B field",
        raw_encrypt,
        None,
    );
    let os_nonce = bench(|| {
        let mut n = [0u8; 12];
        OsRng.fill_bytes(&mut n);
        black_box(n);
    });
    row("    component: one 96-bit nonce from OsRng", os_nonce, None);
    println!();

    // (c) re-wrap 100,000 DEKs from one KEK to another.
    let old_ring = Keyring::new(vec![Kek::generate()]).unwrap();
    let setup = Instant::now();
    let wrapped: Vec<(String, WrappedKey)> = (0..REWRAP_COUNT)
        .map(|i| {
            let id = format!("dek_{i}");
            let w = wrap(&old_ring, "acme", &DataKey::generate(id.as_str())).unwrap();
            (id, w)
        })
        .collect();
    println!(
        "setup: generated and wrapped {REWRAP_COUNT} DEKs in {:.3} s",
        setup.elapsed().as_secs_f64()
    );
    let rotated = old_ring.with_active(Kek::generate());
    let new_kek_id = rotated.active().id().to_owned();

    let mut baseline_totals = Vec::new();
    let mut rewrap_totals = Vec::new();
    for _ in 0..REWRAP_ROUNDS {
        // Baseline: SHA-256 of each wrapped key (the same 60 bytes rewrapped).
        let start = Instant::now();
        for (_, w) in &wrapped {
            black_box(Sha256::digest(black_box(&w.ciphertext)));
        }
        baseline_totals.push(start.elapsed());

        let mut out = Vec::with_capacity(REWRAP_COUNT);
        let start = Instant::now();
        for (id, w) in &wrapped {
            let dek = unwrap(&rotated, "acme", id, w).unwrap();
            out.push(wrap(&rotated, "acme", &dek).unwrap());
        }
        rewrap_totals.push(start.elapsed());
        assert!(out.iter().all(|w| w.kek_id == new_kek_id));
        black_box(out);
    }
    baseline_totals.sort();
    rewrap_totals.sort();
    let per = |d: Duration| d.as_nanos() as f64 / REWRAP_COUNT as f64;
    let base = baseline_totals[REWRAP_ROUNDS / 2];
    let total = rewrap_totals[REWRAP_ROUNDS / 2];
    println!(
        "{:<52} {:>10.0} ns/op  total {:.4} s (median of {REWRAP_ROUNDS} rounds)",
        "baseline: SHA-256 of each 60 B wrapped key",
        per(base),
        base.as_secs_f64()
    );
    println!(
        "{:<52} {:>10.0} ns/op  total {:.3} s (median of {REWRAP_ROUNDS} rounds; min {:.3} s)  {:.1}x baseline",
        format!("(c) re-wrap {REWRAP_COUNT} DEKs (unwrap + wrap)"),
        per(total),
        total.as_secs_f64(),
        rewrap_totals[0].as_secs_f64(),
        per(total) / per(base)
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at end: {}", load.trim());
}
