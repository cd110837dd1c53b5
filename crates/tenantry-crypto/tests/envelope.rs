//! Behaviour of the public API: round trips, bindings, tampering, wrong keys,
//! rotation, keyring files and secrecy of key material.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use tenantry_crypto::{
    Binding, CryptoError, DataKey, Kek, Keyring, WrappedKey, envelope_dek_id, open, seal, unwrap,
    wrap,
};

const BINDING: Binding<'static> = Binding {
    tenant_id: "acme",
    record_id: "cred_01HX",
    kind: "whatsapp",
    field: "access_token",
};

fn ring(keks: Vec<Kek>) -> Keyring {
    Keyring::new(keks).unwrap()
}

/// The bytes of a key, recovered from its only public rendering.
fn key_bytes(kek: &Kek) -> Vec<u8> {
    STANDARD.decode(kek.to_base64()).unwrap()
}

/// Every rendering of `bytes` that a leak could plausibly take.
fn renderings(bytes: &[u8]) -> Vec<String> {
    vec![
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        hex::encode(bytes),
        hex::encode_upper(bytes),
        format!("{bytes:?}"),
        // A prefix is enough to count as a leak.
        STANDARD.encode(bytes)[..12].to_owned(),
        hex::encode(bytes)[..12].to_owned(),
    ]
}

fn assert_no_key_material(text: &str, bytes: &[u8]) {
    for r in renderings(bytes) {
        assert!(!text.contains(&r), "{text:?} contains key material {r:?}");
    }
}

// --- sealing values ----------------------------------------------------------

#[test]
fn seal_open_round_trips() {
    let dek = DataKey::generate("dek_acme_1");
    for plaintext in [
        &b""[..],
        b"x",
        b"EAAGm0PX4ZCpsBAKZAZBZCZCtoken-0123456789abcdef",
        &[0u8, 255, 1, 254, 0, 0, 10, 13][..],
        &vec![0xa5; 100_000][..],
    ] {
        let envelope = seal(&dek, &BINDING, plaintext).unwrap();
        assert!(envelope.is_ascii());
        assert_eq!(open(&dek, &BINDING, &envelope).unwrap(), plaintext);
    }
}

#[test]
fn envelope_format() {
    let dek = DataKey::generate("dek_Acme_42");
    let envelope = seal(&dek, &BINDING, b"hello").unwrap();
    let parts: Vec<&str> = envelope.split('.').collect();
    assert_eq!(parts.len(), 3, "{envelope}");
    assert_eq!(parts[0], "tv1");
    assert_eq!(parts[1], "dek_Acme_42");
    let payload = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    assert_eq!(payload.len(), 12 + 5 + 16, "nonce || ciphertext || tag");
    assert!(
        parts[2]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(envelope_dek_id(&envelope), Ok("dek_Acme_42"));
}

#[test]
fn nonces_are_random() {
    let dek = DataKey::generate("dek_1");
    let a = seal(&dek, &BINDING, b"same plaintext").unwrap();
    let b = seal(&dek, &BINDING, b"same plaintext").unwrap();
    assert_ne!(a, b);
    let nonce = |e: &str| {
        URL_SAFE_NO_PAD
            .decode(e.rsplit('.').next().unwrap())
            .unwrap()[..12]
            .to_vec()
    };
    assert_ne!(nonce(&a), nonce(&b));

    let keyring = ring(vec![Kek::generate()]);
    let w1 = wrap(&keyring, "acme", &dek).unwrap();
    let w2 = wrap(&keyring, "acme", &dek).unwrap();
    assert_ne!(w1.ciphertext, w2.ciphertext);
}

#[test]
fn moved_ciphertext_fails_to_open() {
    let dek = DataKey::generate("dek_1");
    let envelope = seal(&dek, &BINDING, b"secret").unwrap();
    let moved = [
        Binding {
            tenant_id: "globex",
            ..BINDING
        },
        Binding {
            record_id: "cred_01HY",
            ..BINDING
        },
        Binding {
            kind: "stripe",
            ..BINDING
        },
        Binding {
            field: "app_secret",
            ..BINDING
        },
        // Parts shifted between neighbours must not collide.
        Binding {
            tenant_id: "acmec",
            record_id: "red_01HX",
            ..BINDING
        },
        Binding {
            kind: "whatsappaccess_token",
            field: "",
            ..BINDING
        },
    ];
    for binding in moved {
        assert_eq!(
            open(&dek, &binding, &envelope),
            Err(CryptoError::Decrypt),
            "{binding:?}"
        );
    }
    assert_eq!(open(&dek, &BINDING, &envelope).unwrap(), b"secret");
}

#[test]
fn a_flipped_bit_anywhere_fails() {
    let dek = DataKey::generate("dek_1");
    let envelope = seal(&dek, &BINDING, b"a 40-byte WhatsApp access token........").unwrap();
    let (head, payload) = envelope.rsplit_once('.').unwrap();
    let bytes = URL_SAFE_NO_PAD.decode(payload).unwrap();

    // Every bit of nonce, ciphertext and tag: authentication fails.
    for i in 0..bytes.len() * 8 {
        let mut tampered = bytes.clone();
        tampered[i / 8] ^= 1 << (i % 8);
        let forged = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&tampered));
        assert_eq!(
            open(&dek, &BINDING, &forged),
            Err(CryptoError::Decrypt),
            "bit {i}"
        );
    }
    // Every bit of the envelope text: some error, never a plaintext.
    let text = envelope.as_bytes();
    let mut tried = 0;
    for i in 0..text.len() * 8 {
        let mut tampered = text.to_vec();
        tampered[i / 8] ^= 1 << (i % 8);
        let Ok(forged) = String::from_utf8(tampered) else {
            continue;
        };
        tried += 1;
        assert!(open(&dek, &BINDING, &forged).is_err(), "bit {i}: {forged}");
    }
    assert!(tried > text.len() * 6);
    // Truncations and extensions too.
    for cut in 0..envelope.len() {
        assert!(
            open(&dek, &BINDING, &envelope[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    assert!(open(&dek, &BINDING, &format!("{envelope}A")).is_err());
    assert!(open(&dek, &BINDING, &format!("{envelope}AA")).is_err());
}

#[test]
fn wrong_data_key() {
    let dek = DataKey::generate("dek_1");
    let other = DataKey::generate("dek_2");
    let envelope = seal(&dek, &BINDING, b"secret").unwrap();
    assert_eq!(
        open(&other, &BINDING, &envelope),
        Err(CryptoError::WrongKey("dek_1".into()))
    );
    assert_eq!(
        open(&other, &BINDING, &envelope).unwrap_err().to_string(),
        "the envelope was sealed with data key dek_1, not this one"
    );
    // Same id, different bytes: caught by authentication.
    let impostor = DataKey::generate("dek_1");
    assert_eq!(
        open(&impostor, &BINDING, &envelope),
        Err(CryptoError::Decrypt)
    );
}

#[test]
fn envelope_parsing() {
    assert_eq!(
        envelope_dek_id("tv1.dek_9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        Ok("dek_9")
    );
    for bad in [
        "",
        "tv1",
        "tv1.",
        "tv1.dek",
        "tv1.dek.",
        "tv1..AAAA",
        "tv1.de-k.AAAA",
        "tv1.dek.AA AA",
        "tv1.dek.AA+A",
        "tv1.dek.AA=",
        "tv1.dek.AA.AA",
        "TV1.dek.AAAA",
        "tv.dek.AAAA",
        "tvx.dek.AAAA",
        "v1.dek.AAAA",
        "hello world",
        "tv1.dék.AAAA",
    ] {
        assert_eq!(envelope_dek_id(bad), Err(CryptoError::Malformed), "{bad:?}");
    }
    for newer in ["tv2.dek.AAAA", "tv10.dek_1.AAAA", "tv0.x.y"] {
        assert_eq!(
            envelope_dek_id(newer),
            Err(CryptoError::UnsupportedVersion),
            "{newer:?}"
        );
    }
    let dek = DataKey::generate("dek");
    assert_eq!(
        open(&dek, &BINDING, "tv2.dek.AAAA"),
        Err(CryptoError::UnsupportedVersion)
    );
    // Well-formed but too short to hold a nonce and a tag.
    assert_eq!(
        open(&dek, &BINDING, "tv1.dek.AAAA"),
        Err(CryptoError::Malformed)
    );
    // Not canonical base64url (length 4n+1).
    assert_eq!(
        open(&dek, &BINDING, "tv1.dek.AAAAA"),
        Err(CryptoError::Malformed)
    );
}

#[test]
fn seal_refuses_a_data_key_id_that_would_break_the_envelope() {
    for id in ["", "dek.1", "dek-1", "dek 1", "dék"] {
        assert_eq!(
            seal(&DataKey::generate(id), &BINDING, b"x"),
            Err(CryptoError::Malformed),
            "{id:?}"
        );
    }
}

#[test]
fn data_key_from_bytes_is_deterministic() {
    let a = DataKey::from_bytes("dek_1", [3; 32]);
    let b = DataKey::from_bytes("dek_1", [3; 32]);
    let envelope = seal(&a, &BINDING, b"x").unwrap();
    assert_eq!(open(&b, &BINDING, &envelope).unwrap(), b"x");
    assert_eq!(a.id(), "dek_1");
}

// --- wrapping data keys --------------------------------------------------------

#[test]
fn wrap_unwrap_round_trips() {
    let keyring = ring(vec![Kek::generate()]);
    let dek = DataKey::generate("dek_1");
    let wrapped = wrap(&keyring, "acme", &dek).unwrap();
    assert_eq!(wrapped.kek_id, keyring.active().id());
    let unwrapped = unwrap(&keyring, "acme", "dek_1", &wrapped).unwrap();
    assert_eq!(unwrapped.id(), "dek_1");
    // Same key bytes: what one seals the other opens.
    let envelope = seal(&dek, &BINDING, b"secret").unwrap();
    assert_eq!(open(&unwrapped, &BINDING, &envelope).unwrap(), b"secret");
}

#[test]
fn wrapped_key_is_bound_to_tenant_dek_and_kek() {
    let (k1, k2) = (Kek::generate(), Kek::generate());
    let k2_id = k2.id().to_owned();
    let keyring = ring(vec![k1, k2]);
    let wrapped = wrap(&keyring, "acme", &DataKey::generate("dek_1")).unwrap();
    assert_eq!(
        unwrap(&keyring, "globex", "dek_1", &wrapped).err(),
        Some(CryptoError::Decrypt)
    );
    assert_eq!(
        unwrap(&keyring, "acme", "dek_2", &wrapped).err(),
        Some(CryptoError::Decrypt)
    );
    // Relabelled to claim another KEK of the ring.
    let relabelled = WrappedKey {
        kek_id: k2_id,
        ..wrapped.clone()
    };
    assert_eq!(
        unwrap(&keyring, "acme", "dek_1", &relabelled).err(),
        Some(CryptoError::Decrypt)
    );
    for i in 0..wrapped.ciphertext.len() * 8 {
        let mut tampered = wrapped.clone();
        tampered.ciphertext[i / 8] ^= 1 << (i % 8);
        assert_eq!(
            unwrap(&keyring, "acme", "dek_1", &tampered).err(),
            Some(CryptoError::Decrypt),
            "bit {i}"
        );
    }
    for cut in 0..wrapped.ciphertext.len() {
        let truncated = WrappedKey {
            ciphertext: wrapped.ciphertext[..cut].to_vec(),
            ..wrapped.clone()
        };
        assert!(
            unwrap(&keyring, "acme", "dek_1", &truncated).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn unwrap_with_a_keyring_lacking_the_kek() {
    let old = Kek::generate();
    let old_id = old.id().to_owned();
    let wrapped = wrap(&ring(vec![old]), "acme", &DataKey::generate("dek_1")).unwrap();
    let other = ring(vec![Kek::generate()]);
    let err = unwrap(&other, "acme", "dek_1", &wrapped).unwrap_err();
    assert_eq!(err, CryptoError::UnknownKek(old_id.clone()));
    assert_eq!(
        err.to_string(),
        format!("key-encryption key {old_id} is not in the keyring")
    );
}

#[test]
fn rotation_keeps_old_wraps_readable() {
    let old = Kek::generate();
    let old_id = old.id().to_owned();
    let keyring = ring(vec![old]);
    let dek = DataKey::generate("dek_1");
    let old_wrapped = wrap(&keyring, "acme", &dek).unwrap();
    let envelope = seal(&dek, &BINDING, b"secret").unwrap();

    let new = Kek::generate();
    let new_id = new.id().to_owned();
    let rotated = keyring.with_active(new);
    assert_eq!(rotated.ids(), vec![new_id.clone(), old_id.clone()]);
    assert_eq!(rotated.active().id(), new_id);
    // The original keyring is untouched.
    assert_eq!(keyring.ids(), vec![old_id.clone()]);

    // Old wraps still open; new wraps use the new KEK.
    let dek_again = unwrap(&rotated, "acme", "dek_1", &old_wrapped).unwrap();
    assert_eq!(open(&dek_again, &BINDING, &envelope).unwrap(), b"secret");
    let new_wrapped = wrap(&rotated, "acme", &dek_again).unwrap();
    assert_eq!(new_wrapped.kek_id, new_id);

    // Once everything is re-wrapped, the old key can go.
    let retired = rotated.without(&old_id).unwrap();
    assert_eq!(retired.ids(), vec![new_id.clone()]);
    assert_eq!(
        unwrap(&retired, "acme", "dek_1", &old_wrapped).err(),
        Some(CryptoError::UnknownKek(old_id.clone()))
    );
    let dek_rewrapped = unwrap(&retired, "acme", "dek_1", &new_wrapped).unwrap();
    assert_eq!(
        open(&dek_rewrapped, &BINDING, &envelope).unwrap(),
        b"secret"
    );
}

#[test]
fn keyring_membership() {
    let (a, b, c) = (Kek::generate(), Kek::generate(), Kek::generate());
    let ids = [a.id().to_owned(), b.id().to_owned(), c.id().to_owned()];
    let keyring = ring(vec![a, b, c.clone()]);
    assert_eq!(keyring.ids(), ids.to_vec());
    assert_eq!(keyring.active().id(), ids[0]);
    assert_eq!(keyring.get(&ids[1]).unwrap().id(), ids[1]);
    assert!(keyring.get("kek_0000000000000000").is_none());

    // The active key cannot be removed; unknown ids are reported as such.
    assert!(matches!(
        keyring.without(&ids[0]),
        Err(CryptoError::Keyring(_))
    ));
    assert_eq!(
        keyring.without("kek_0000000000000000").err(),
        Some(CryptoError::UnknownKek("kek_0000000000000000".into()))
    );
    assert_eq!(
        keyring.without(&ids[1]).unwrap().ids(),
        vec![ids[0].clone(), ids[2].clone()]
    );

    // Making a present key active moves it to the front, without duplicating.
    assert_eq!(
        keyring.with_active(c).ids(),
        vec![ids[2].clone(), ids[0].clone(), ids[1].clone()]
    );
}

#[test]
fn keyring_new_refuses_empty_and_duplicates() {
    assert!(matches!(Keyring::new(vec![]), Err(CryptoError::Keyring(_))));
    let kek = Kek::from_bytes([9; 32]);
    let err =
        Keyring::new(vec![kek.clone(), Kek::generate(), Kek::from_bytes([9; 32])]).unwrap_err();
    assert!(matches!(err, CryptoError::Keyring(_)));
    assert!(err.to_string().contains(kek.id()), "{err}");
    assert_no_key_material(&err.to_string(), &[9; 32]);
}

// --- KEKs and keyring files ------------------------------------------------------

#[test]
fn kek_basics() {
    let kek = Kek::from_bytes([1; 32]);
    assert_eq!(kek.id(), Kek::from_bytes([1; 32]).id());
    assert_ne!(kek.id(), Kek::from_bytes([2; 32]).id());
    assert!(kek.id().starts_with("kek_"));
    assert_eq!(kek.id().len(), 4 + 16);
    assert!(
        kek.id()[4..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(kek.to_base64(), STANDARD.encode([1; 32]));
    assert_eq!(kek.to_base64().len(), 44);
    assert_ne!(Kek::generate().id(), Kek::generate().id());
}

#[test]
fn keyring_text_round_trips() {
    let keyring = ring(vec![Kek::generate(), Kek::generate(), Kek::generate()]);
    let text = keyring.to_text();
    assert!(text.starts_with('#'), "{text}");
    let parsed = Keyring::parse(&text).unwrap();
    assert_eq!(parsed.ids(), keyring.ids());
    assert_eq!(parsed.to_text(), text);
    // The parsed keys are the same keys, not just the same ids.
    let wrapped = wrap(&keyring, "acme", &DataKey::generate("dek_1")).unwrap();
    assert!(unwrap(&parsed, "acme", "dek_1", &wrapped).is_ok());
}

#[test]
fn keyring_parse_accepts_the_documented_forms() {
    let (a, b) = (Kek::from_bytes([1; 32]), Kek::from_bytes([2; 32]));
    let (a64, b64) = (a.to_base64(), b.to_base64());

    // A single key, as in TENANTRY_MASTER_KEY, with or without a newline.
    for single in [a64.clone(), format!("{a64}\n"), format!("  {a64}  \r\n")] {
        assert_eq!(
            Keyring::parse(&single).unwrap().ids(),
            vec![a.id().to_owned()]
        );
    }
    // Comments, blank lines, CRLF, indentation, unpadded base64.
    let text = format!(
        "# production keyring\n\n   # rotated 2026-11\r\n{a64}\r\n\n\t{}\n# trailing comment\n",
        b64.trim_end_matches('=')
    );
    assert_eq!(
        Keyring::parse(&text).unwrap().ids(),
        vec![a.id().to_owned(), b.id().to_owned()]
    );
    // A byte-order mark from an editor.
    assert_eq!(
        Keyring::parse(&format!("\u{feff}{a64}\n"))
            .unwrap()
            .active()
            .id(),
        a.id()
    );
}

#[test]
fn keyring_parse_errors_name_the_line_and_never_the_key() {
    let key = [0x5au8; 32];
    let good = STANDARD.encode(key);
    let short = STANDARD.encode(&key[..31]);
    let long = STANDARD.encode([&key[..], &[1]].concat());
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "no keys"),
        ("\n\n  \n".into(), "no keys"),
        ("# just a comment\n".into(), "no keys"),
        (format!("# k\n{good}\n\n{short}\n"), "line 4"),
        (format!("{long}\n"), "line 1"),
        (format!("{good}\n{}!\n", &good[..20]), "line 2"),
        (format!("#\n#\n{}\n", good.replace('a', "-")), "line 3"),
        (format!("{good}\n{good} {good}\n"), "line 2"),
        (format!("{good}\n# again\n{good}\n"), "line 3"),
        (format!("key = {good}\n"), "line 1"),
    ];
    for (text, expected) in cases {
        let err = Keyring::parse(&text).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, CryptoError::Keyring(_)), "{message}");
        assert!(
            message.contains(expected),
            "{message:?} should mention {expected:?}"
        );
        assert!(message.starts_with("invalid keyring: "), "{message}");
        assert_no_key_material(&message, &key);
        assert_no_key_material(&format!("{err:?}"), &key);
        assert!(!message.contains(&good[..8]) && !message.contains(&short[..8]));
    }
    // The duplicate error says which line it repeats.
    let err = Keyring::parse(&format!("{good}\n# again\n{good}\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 1"), "{err}");
}

// --- secrecy of Debug output --------------------------------------------------------

#[test]
fn debug_never_shows_key_bytes() {
    let kek = Kek::generate();
    let kek_bytes = key_bytes(&kek);
    let other = Kek::generate();
    let other_bytes = key_bytes(&other);
    let keyring = ring(vec![kek.clone(), other]);
    for rendering in [format!("{kek:?}"), format!("{kek:#?}")] {
        assert!(rendering.contains(kek.id()), "{rendering}");
        assert_no_key_material(&rendering, &kek_bytes);
    }
    for rendering in [format!("{keyring:?}"), format!("{keyring:#?}")] {
        for id in keyring.ids() {
            assert!(rendering.contains(&id), "{rendering}");
        }
        assert_no_key_material(&rendering, &kek_bytes);
        assert_no_key_material(&rendering, &other_bytes);
    }

    let bytes = [0xc3u8; 32];
    let dek = DataKey::from_bytes("dek_1", bytes);
    for rendering in [format!("{dek:?}"), format!("{dek:#?}")] {
        assert!(rendering.contains("dek_1"), "{rendering}");
        assert_no_key_material(&rendering, &bytes);
        assert!(!rendering.contains("195"), "{rendering}"); // 0xc3 in decimal
    }
    // A generated data key: its bytes are only observable through a wrap.
    let generated = DataKey::generate("dek_2");
    let keyring = ring(vec![Kek::from_bytes([4; 32])]);
    let wrapped = wrap(&keyring, "acme", &generated).unwrap();
    let raw = tenantry_crypto::aead::decrypt(
        &[4; 32],
        wrapped.ciphertext[..12].try_into().unwrap(),
        &aad(&[
            b"tenantry:dek:v1",
            b"acme",
            b"dek_2",
            keyring.active().id().as_bytes(),
        ]),
        &wrapped.ciphertext[12..],
    )
    .unwrap();
    assert_eq!(raw.len(), 32);
    assert_no_key_material(&format!("{generated:?}"), &raw);
}

/// The documented AAD encoding (big-endian u64 length before each part),
/// written out independently of the crate.
fn aad(parts: &[&[u8]]) -> Vec<u8> {
    parts
        .iter()
        .flat_map(|p| {
            (p.len() as u64)
                .to_be_bytes()
                .into_iter()
                .chain(p.iter().copied())
        })
        .collect()
}

#[test]
fn sealed_values_follow_the_documented_construction() {
    // Opening by hand with the AEAD layer pins the envelope layout and the AAD.
    let bytes = [0x11u8; 32];
    let dek = DataKey::from_bytes("dek_1", bytes);
    let envelope = seal(&dek, &BINDING, b"pinned").unwrap();
    let payload = URL_SAFE_NO_PAD
        .decode(envelope.rsplit('.').next().unwrap())
        .unwrap();
    let expected_aad = aad(&[
        b"tenantry:field:v1",
        BINDING.tenant_id.as_bytes(),
        BINDING.record_id.as_bytes(),
        BINDING.kind.as_bytes(),
        BINDING.field.as_bytes(),
    ]);
    let opened = tenantry_crypto::aead::decrypt(
        &bytes,
        payload[..12].try_into().unwrap(),
        &expected_aad,
        &payload[12..],
    )
    .unwrap();
    assert_eq!(opened, b"pinned");
}

#[test]
fn error_messages() {
    assert_eq!(
        CryptoError::Malformed.to_string(),
        "malformed envelope or key"
    );
    assert_eq!(
        CryptoError::UnsupportedVersion.to_string(),
        "unsupported envelope version"
    );
    assert_eq!(
        CryptoError::Decrypt.to_string(),
        "decryption failed: the ciphertext was tampered with or does not belong to this tenant, record or field"
    );
    assert_eq!(
        CryptoError::Keyring("x".into()).to_string(),
        "invalid keyring: x"
    );
}
