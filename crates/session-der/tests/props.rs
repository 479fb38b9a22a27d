//! Property tests: every valid session round-trips; no input makes the decoder panic.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use session_core::{
    AlpnProtocol, CertificateDer, CipherSuite, HostName, MasterKey, OpensslExtras, ProtocolVersion,
    Session, SessionBuilder, SessionId, SidCtx, Ticket,
};
use session_der::{from_der_at, from_pem_at, to_der, to_pem};

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

/// What OpenSSL keeps as a C string: no NUL inside.
fn c_string(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(1u8.., 0..=max)
}

fn nonempty(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 1..=max)
}

fn certificate() -> impl Strategy<Value = CertificateDer> {
    bytes(300).prop_map(|body| {
        let mut der = vec![0x30];
        if body.len() < 128 {
            der.push(body.len() as u8);
        } else if body.len() < 256 {
            der.extend([0x81, body.len() as u8]);
        } else {
            der.extend([0x82, (body.len() >> 8) as u8, body.len() as u8]);
        }
        der.extend(body);
        CertificateDer::new(&der).unwrap()
    })
}

fn extras() -> impl Strategy<Value = OpensslExtras> {
    (
        any::<u32>(),
        option::of(c_string(40)),
        option::of(c_string(40)),
        option::of(c_string(40)),
        any::<u8>(),
        0u32..5,
        option::of(bytes(40)),
        option::of(bytes(40)),
        any::<u64>(),
    )
        .prop_map(
            |(group, hint, identity, srp, comp, mfl, appdata, rpk, flags)| {
                let mut e = OpensslExtras::default();
                e.kex_group = group;
                e.psk_identity_hint = hint.map(Into::into);
                e.psk_identity = identity.map(Into::into);
                e.srp_username = srp.map(Into::into);
                e.compression = comp;
                e.max_fragment_len_mode = mfl;
                e.ticket_appdata = appdata.map(Into::into);
                e.peer_raw_public_key = rpk.map(Into::into);
                e.other_flags = flags & !1;
                e
            },
        )
}

prop_compose! {
    fn session()(
        version in prop_oneof![
            Just(ProtocolVersion::TLS1_2),
            Just(ProtocolVersion::TLS1_3),
            (0x0300u16..=0x03FF).prop_map(|v| ProtocolVersion::new(v).unwrap()),
            (0xFE00u16..=0xFEFF).prop_map(|v| ProtocolVersion::new(v).unwrap()),
        ],
        cipher in any::<u16>(),
        id in bytes(32),
        sid_ctx in bytes(32),
        key in prop_oneof![bytes(64), bytes(512)],
        time in 1..=i64::MAX as u64,
        timeout in 1..=i64::MAX as u64,
        peer in vec(certificate(), 0..=1),
        host in option::of("[a-z][a-z0-9]{0,10}(\\.[a-z][a-z0-9]{0,10}){0,3}"),
        alpn in option::of(nonempty(255)),
        ticket in option::of((nonempty(2000), any::<u32>(), any::<u32>())),
        max_early_data in any::<u32>(),
        ems in any::<bool>(),
        verify in any::<i32>(),
        extras in extras(),
    ) -> Session {
        let mut extras = extras;
        if ticket.is_some() {
            extras.ticket_lifetime_hint = 0;
            extras.ticket_age_add = 0;
        }
        SessionBuilder::new(version, time)
            .cipher(CipherSuite(cipher))
            .id(SessionId::new(&id).unwrap())
            .sid_ctx(SidCtx::new(&sid_ctx).unwrap())
            .master_key(MasterKey::new(&key).unwrap())
            .timeout(timeout)
            .peer_certificates(peer)
            .host_name(host.map(|h| HostName::new(&h).unwrap()))
            .alpn(alpn.map(|a| AlpnProtocol::new(&a).unwrap()))
            .ticket(ticket.map(|(d, h, a)| Ticket::new(&d, h, a).unwrap()))
            .max_early_data(max_early_data)
            .extended_master_secret(ems)
            .verify_result(verify.into())
            .extras(extras)
            .build()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_sessions_round_trip(s in session()) {
        let der = to_der(&s).unwrap();
        let back = from_der_at(&der, 1).unwrap();
        prop_assert_eq!(&*to_der(&back).unwrap(), &*der);
        prop_assert_eq!(back.master_key(), s.master_key());
        prop_assert_eq!(back.id().as_bytes(), s.id().as_bytes());
        prop_assert_eq!(back.time(), s.time());
        prop_assert_eq!(back.ticket(), s.ticket());
        prop_assert_eq!(back.extras(), s.extras());
        let pem = to_pem(&s).unwrap();
        let back = from_pem_at(pem.as_bytes(), 1).unwrap();
        prop_assert_eq!(&*to_der(&back).unwrap(), &*der);
    }

    #[test]
    fn random_bytes_never_panic(input in bytes(600)) {
        let _ = from_der_at(&input, 1);
        let _ = from_pem_at(&input, 1);
        let _ = session_der::decode_at(&input, 1);
    }

    #[test]
    fn mutated_sessions_never_panic(
        s in session(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut der = to_der(&s).unwrap().to_vec();
        for (at, byte) in edits {
            let i = at.index(der.len());
            der[i] = byte;
        }
        let _ = from_der_at(&der, 1);
        der.truncate(cut.index(der.len() + 1));
        let _ = from_der_at(&der, 1);
    }
}
