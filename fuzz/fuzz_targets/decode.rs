//! The session decoder on arbitrary bytes: it must never panic, and whatever it accepts must
//! encode, decode again and encode to the same bytes (decoding is stable).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((session, _)) = session_der::decode_at(data, 1) else {
        return;
    };
    let _ = session_der::text::openssl_text(&session);
    let der = session_der::to_der(&session).expect("a decoded session encodes");
    let again = session_der::from_der_at(&der, 1).expect("what we encode decodes");
    assert_eq!(*session_der::to_der(&again).unwrap(), *der);
    let pem = session_der::to_pem(&session).expect("a decoded session encodes as PEM");
    let from_pem = session_der::from_pem_at(pem.as_bytes(), 1).expect("our PEM decodes");
    assert_eq!(*session_der::to_der(&from_pem).unwrap(), *der);
});
