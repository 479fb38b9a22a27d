//! The codec on sessions we build: round trips, OpenSSL's omission rules, and a clear error
//! for every kind of bad input. (Sessions from a real OpenSSL are in the workspace's
//! `tests/openssl_interop.rs`.)

use session_core::{
    AlpnProtocol, CertificateDer, CipherSuite, HostName, MasterKey, OpensslExtras, ProtocolVersion,
    Session, SessionBuilder, SessionId, SidCtx, Ticket,
};
use session_der::{
    decode_at, from_der_at, from_pem_at, to_der, to_pem, DecodeError, EncodeError, Format,
};

const NOW: u64 = 1_790_000_000;

/// A minimal certificate-shaped SEQUENCE.
const CERT: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x05];

fn full_session() -> Session {
    let mut extras = OpensslExtras::default();
    extras.kex_group = 0x001d;
    extras.psk_identity = Some(b"client-1".as_slice().into());
    extras.psk_identity_hint = Some(b"hint".as_slice().into());
    extras.srp_username = Some(b"alice".as_slice().into());
    extras.max_fragment_len_mode = 2;
    extras.ticket_appdata = Some(b"app".as_slice().into());
    extras.peer_raw_public_key = Some(vec![0x30, 0x00].into());
    extras.other_flags = 0x10;
    SessionBuilder::new(ProtocolVersion::TLS1_3, NOW)
        .cipher(CipherSuite(0x1302))
        .id(SessionId::new(&[0xAB; 32]).unwrap())
        .sid_ctx(SidCtx::new(b"ctx").unwrap())
        .master_key(MasterKey::new(&[0x5A; 48]).unwrap())
        .timeout(7200)
        .peer_certificates(CertificateDer::chain([CERT]).unwrap())
        .host_name(Some(HostName::new("example.com").unwrap()))
        .alpn(Some(AlpnProtocol::new(b"h2").unwrap()))
        .ticket(Some(Ticket::new(&[7; 100], 7200, 0xDEADBEEF).unwrap()))
        .max_early_data(16384)
        .extended_master_secret(true)
        .verify_result(18)
        .extras(extras)
        .build()
}

fn same_fields(a: &Session, b: &Session) {
    assert_eq!(a.version(), b.version());
    assert_eq!(a.cipher(), b.cipher());
    assert_eq!(a.id().as_bytes(), b.id().as_bytes());
    assert_eq!(a.sid_ctx().as_bytes(), b.sid_ctx().as_bytes());
    assert_eq!(a.master_key(), b.master_key());
    assert_eq!(a.time(), b.time());
    assert_eq!(a.timeout(), b.timeout());
    assert_eq!(a.peer_certificates(), b.peer_certificates());
    assert_eq!(a.host_name(), b.host_name());
    assert_eq!(a.alpn(), b.alpn());
    assert_eq!(a.ticket(), b.ticket());
    assert_eq!(a.max_early_data(), b.max_early_data());
    assert_eq!(a.extended_master_secret(), b.extended_master_secret());
    assert_eq!(a.verify_result(), b.verify_result());
    assert_eq!(a.extras(), b.extras());
}

#[test]
fn every_field_round_trips_through_der_and_pem() {
    let s = full_session();
    let der = to_der(&s).unwrap();
    let back = from_der_at(&der, 1).unwrap();
    same_fields(&s, &back);
    assert_eq!(
        *to_der(&back).unwrap(),
        *der,
        "re-encoding is byte-identical"
    );

    let pem = to_pem(&s).unwrap();
    assert!(pem.starts_with("-----BEGIN SSL SESSION PARAMETERS-----\n"));
    assert!(pem.ends_with("-----END SSL SESSION PARAMETERS-----\n"));
    assert!(pem.lines().all(|l| l.len() <= 64));
    let back = from_pem_at(pem.as_bytes(), 1).unwrap();
    same_fields(&s, &back);

    assert_eq!(decode_at(&der, 1).unwrap().1, Format::Der);
    assert_eq!(decode_at(pem.as_bytes(), 1).unwrap().1, Format::Pem);
}

#[test]
fn decoded_sessions_are_fresh_and_resumable() {
    let s = full_session();
    s.mark_not_resumable();
    let back = from_der_at(&to_der(&s).unwrap(), 1).unwrap();
    assert!(back.is_resumable(), "the mark is not part of the form");
    assert_eq!(back.ref_count(), 1);
}

#[test]
fn zero_fields_are_left_out_as_openssl_leaves_them_out() {
    let s = SessionBuilder::new(ProtocolVersion::TLS1_2, NOW)
        .cipher(CipherSuite(0xC02F))
        .id(SessionId::new(&[1; 32]).unwrap())
        .master_key(MasterKey::new(&[2; 48]).unwrap())
        .timeout(300)
        .build();
    let der = to_der(&s).unwrap();
    // version, ssl_version, cipher, id, key, [1] time, [2] timeout, [4] sid_ctx, [19] group.
    let mut expected = vec![
        0x02, 0x01, 0x01, 0x02, 0x02, 0x03, 0x03, 0x04, 0x02, 0xC0, 0x2F,
    ];
    expected.extend([0x04, 32]);
    expected.extend([1; 32]);
    expected.extend([0x04, 48]);
    expected.extend([2; 48]);
    expected.extend([0xA1, 0x06, 0x02, 0x04]);
    expected.extend((NOW as u32).to_be_bytes());
    expected.extend([0xA2, 0x04, 0x02, 0x02, 0x01, 0x2C]);
    expected.extend([0xA4, 0x02, 0x04, 0x00]);
    expected.extend([0xB3, 0x03, 0x02, 0x01, 0x00]);
    assert!(expected.len() < 128);
    let mut whole = vec![0x30, expected.len() as u8];
    whole.extend(&expected);
    assert_eq!(*der, whole);
}

#[test]
fn a_missing_time_is_now_and_a_missing_timeout_is_three_seconds() {
    let s = SessionBuilder::new(ProtocolVersion::TLS1_2, 0)
        .cipher(CipherSuite(0xC02F))
        .timeout(0)
        .build();
    let back = from_der_at(&to_der(&s).unwrap(), 1234).unwrap();
    assert_eq!(back.time(), 1234);
    assert_eq!(back.timeout(), 3);
}

#[test]
fn unknown_ciphers_and_versions_are_kept() {
    let s = SessionBuilder::new(ProtocolVersion::new(0x03FF).unwrap(), NOW)
        .cipher(CipherSuite(0xFAFA))
        .build();
    let back = from_der_at(&to_der(&s).unwrap(), 1).unwrap();
    assert_eq!(back.version().wire(), 0x03FF);
    assert_eq!(back.cipher(), CipherSuite(0xFAFA));
}

#[test]
fn a_server_copy_keeps_its_ticket_parameters_without_a_ticket() {
    let mut extras = OpensslExtras::default();
    extras.ticket_age_add = 99;
    extras.ticket_lifetime_hint = 1 << 40;
    let s = SessionBuilder::new(ProtocolVersion::TLS1_3, NOW)
        .extras(extras.clone())
        .build();
    let back = from_der_at(&to_der(&s).unwrap(), 1).unwrap();
    assert!(back.ticket().is_none());
    assert_eq!(back.extras(), &extras);
}

#[test]
fn values_openssl_cannot_hold_are_refused_when_encoding() {
    let s = SessionBuilder::new(ProtocolVersion::TLS1_2, u64::MAX).build();
    assert!(matches!(
        to_der(&s),
        Err(EncodeError::OutOfRange { field: "time", .. })
    ));
    let s = SessionBuilder::new(ProtocolVersion::TLS1_2, NOW)
        .verify_result(1 << 40)
        .build();
    let err = to_der(&s).unwrap_err();
    assert!(err.to_string().contains("verify_result"), "{err}");
}

/// A valid encoding to break.
fn sample() -> Vec<u8> {
    to_der(&full_session()).unwrap().to_vec()
}

fn decode_err(bytes: &[u8]) -> DecodeError {
    from_der_at(bytes, 1).expect_err("bad input must not decode")
}

#[test]
fn empty_input() {
    assert_eq!(decode_err(&[]), DecodeError::Empty);
    assert_eq!(from_pem_at(b"  \n", 1).unwrap_err(), DecodeError::Empty);
}

#[test]
fn every_truncation_is_an_error_naming_a_field() {
    let der = sample();
    for len in 1..der.len() {
        let err = decode_err(&der[..len]);
        assert!(
            matches!(err, DecodeError::Der { .. } | DecodeError::Value { .. }),
            "truncated at {len}: {err:?}"
        );
    }
}

#[test]
fn trailing_bytes() {
    let mut der = sample();
    let len = der.len();
    der.extend([0, 0, 0]);
    assert_eq!(
        decode_err(&der),
        DecodeError::TrailingBytes { at: len, len: 3 }
    );
}

#[test]
fn wrong_outer_tag() {
    let mut der = sample();
    der[0] = 0x31;
    let err = decode_err(&der);
    assert!(err.to_string().contains("SEQUENCE"), "{err}");
}

#[test]
fn a_forged_length_is_an_error_not_an_allocation() {
    // A SEQUENCE that claims 2^31 bytes.
    let err = decode_err(&[0x30, 0x84, 0x7F, 0xFF, 0xFF, 0xFF, 0x02, 0x01, 0x01]);
    assert!(
        matches!(
            err,
            DecodeError::Der {
                field: "session",
                ..
            }
        ),
        "{err}"
    );
    // A session id that claims more than the session holds.
    // Outer header (4 bytes), version (3), ssl_version (4), cipher (4), then the id's tag
    // and length: swap the id for one that claims 2^31 bytes, and pad to keep the outer
    // length true.
    let der = sample();
    assert_eq!(der[15..17], [0x04, 32]);
    let mut forged = der[..15].to_vec();
    forged.extend([0x04, 0x84, 0x7F, 0xFF, 0xFF, 0xFF]);
    forged.extend(&der[17 + 32..]);
    forged.resize(der.len(), 0);
    let err = decode_err(&forged);
    assert!(
        matches!(
            err,
            DecodeError::Der {
                field: "session_id",
                ..
            }
        ),
        "{err}"
    );
}

fn session_with_id(id: &[u8]) -> Vec<u8> {
    // Hand-built, since the builder refuses a 33-byte id.
    let mut body = vec![
        0x02, 0x01, 0x01, 0x02, 0x02, 0x03, 0x03, 0x04, 0x02, 0xC0, 0x2F,
    ];
    body.extend([0x04, id.len() as u8]);
    body.extend(id);
    body.extend([0x04, 0x00]);
    let mut der = vec![0x30, body.len() as u8];
    der.extend(body);
    der
}

#[test]
fn session_id_limits() {
    assert!(from_der_at(&session_with_id(&[1; 32]), 1).is_ok());
    let err = decode_err(&session_with_id(&[1; 33]));
    assert!(
        matches!(
            err,
            DecodeError::Value {
                field: "session_id",
                at: 13,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("33 bytes"), "{err}");
}

#[test]
fn wrong_version() {
    let mut der = session_with_id(&[1; 4]);
    der[4] = 2; // version 2
    let err = decode_err(&der);
    assert!(
        matches!(
            err,
            DecodeError::Value {
                field: "version",
                at: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let mut der = session_with_id(&[1; 4]);
    der[7] = 0x04; // ssl_version 0x0403
    let err = decode_err(&der);
    assert!(
        matches!(
            err,
            DecodeError::Value {
                field: "ssl_version",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_cipher_must_be_two_bytes() {
    let mut body = vec![
        0x02, 0x01, 0x01, 0x02, 0x02, 0x03, 0x03, 0x04, 0x03, 0xC0, 0x2F, 0x00,
    ];
    body.extend([0x04, 0x00, 0x04, 0x00]);
    let mut der = vec![0x30, body.len() as u8];
    der.extend(body);
    let err = decode_err(&der);
    assert!(
        matches!(
            err,
            DecodeError::Value {
                field: "cipher",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn unknown_and_out_of_order_fields_are_refused() {
    let mut der = session_with_id(&[]);
    // [21], a field no OpenSSL writes.
    der.extend([0xB5, 0x03, 0x02, 0x01, 0x00]);
    der[1] += 5;
    let err = decode_err(&der);
    assert!(err.to_string().contains("not a field"), "{err}");
    // [2] before [1].
    let mut der = session_with_id(&[]);
    der.extend([0xA2, 0x03, 0x02, 0x01, 0x05, 0xA1, 0x03, 0x02, 0x01, 0x05]);
    der[1] += 10;
    assert!(decode_err(&der).to_string().contains("out of order"));
}

#[test]
fn a_noncanonical_integer_is_refused() {
    let mut der = session_with_id(&[]);
    der.extend([0xA2, 0x04, 0x02, 0x02, 0x00, 0x05]); // timeout 5 with a needless 0x00
    der[1] += 6;
    let err = decode_err(&der);
    assert!(
        matches!(
            err,
            DecodeError::Der {
                field: "timeout",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn pem_errors_name_the_problem() {
    let pem = to_pem(&full_session()).unwrap();
    let other = pem.replace("SSL SESSION PARAMETERS", "CERTIFICATE");
    assert_eq!(
        from_pem_at(other.as_bytes(), 1).unwrap_err(),
        DecodeError::PemLabel {
            found: "CERTIFICATE".into()
        }
    );
    let mut bad = pem.to_string();
    let at = bad.find('\n').unwrap() + 5;
    bad.replace_range(at..at + 1, "*");
    assert!(matches!(
        from_pem_at(bad.as_bytes(), 1).unwrap_err(),
        DecodeError::Pem { .. }
    ));
    let cut = &pem[..pem.len() / 2];
    assert!(matches!(
        from_pem_at(cut.as_bytes(), 1).unwrap_err(),
        DecodeError::Pem { .. }
    ));
}

/// What `openssl sess_id` reads, this reads too: the first session block, after text (its
/// own `-text` output), a byte-order mark, CRLF line ends and blocks of other labels.
#[test]
fn pem_is_read_as_openssl_reads_it() {
    let first = full_session();
    let second = first.to_builder().timeout(99).build();
    let pem = to_pem(&first).unwrap().to_string();
    let pem2 = to_pem(&second).unwrap().to_string();
    let cert = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
    let inputs = [
        format!("SSL-Session:\n    Protocol  : TLSv1.2\n    Timeout   : 300 (sec)\n{pem}"),
        format!("\u{feff}{pem}"),
        format!("\u{feff}SSL-Session:\n  text\n{pem}"),
        pem.replace('\n', "\r\n"),
        format!("{pem}{pem2}"),
        format!("{cert}{pem}{pem2}"),
        format!("{pem}trailing text, not read\n"),
    ];
    for input in &inputs {
        assert_eq!(Format::detect(input.as_bytes()), Format::Pem, "{input}");
        let (read, format) = decode_at(input.as_bytes(), 1).unwrap();
        assert_eq!(format, Format::Pem);
        same_fields(&read, &first);
    }
    // Text with no session block: the label it has, or that there is none.
    assert_eq!(
        from_pem_at(cert.as_bytes(), 1).unwrap_err(),
        DecodeError::PemLabel {
            found: "CERTIFICATE".into()
        }
    );
    let begun = "text\n-----BEGIN SSL SESSION PARAMETERS-----\nMAA=\n";
    assert!(matches!(
        from_pem_at(begun.as_bytes(), 1).unwrap_err(),
        DecodeError::Pem { .. }
    ));
    // A DER session is never taken for text, however its bytes fall.
    assert_eq!(Format::detect(&to_der(&first).unwrap()), Format::Der);
    assert_eq!(Format::detect(&sample()), Format::Der);
}
