//! ClientHellos built field by field, for the unit tests (`src/`, through `#[path]`) and the
//! tests in `tests/`: valid ones, and ones broken in exactly one place.

// Each test crate that includes this file uses a different part of it.
#![allow(dead_code)]

/// A ClientHello's fields, each settable; `body`, `message` and `records` encode it.
#[derive(Clone, Debug)]
pub(crate) struct Hello {
    pub(crate) legacy_version: u16,
    pub(crate) random: [u8; 32],
    pub(crate) session_id: Vec<u8>,
    pub(crate) cipher_suites: Vec<u8>,
    pub(crate) compression: Vec<u8>,
    /// `None`: no extensions vector at all (a TLS 1.2 ClientHello may end after
    /// compression).
    pub(crate) extensions: Option<Vec<(u16, Vec<u8>)>>,
}

impl Hello {
    /// A TLS 1.2 ClientHello without a session to resume: an empty session id, a ticket
    /// asked for (an empty `session_ticket`), a server name.
    pub(crate) fn tls12() -> Self {
        Hello {
            legacy_version: 0x0303,
            random: [0x5a; 32],
            session_id: Vec::new(),
            cipher_suites: vec![0xc0, 0x2f, 0xc0, 0x30],
            compression: vec![0],
            extensions: Some(vec![
                (0, server_name(b"example.com")),
                (10, vec![0, 2, 0, 0x1d]),
                (35, Vec::new()),
            ]),
        }
    }

    /// A TLS 1.3 ClientHello without a PSK, as a browser sends it: a 32-byte random legacy
    /// session id, TLS 1.3 and 1.2 supported, `psk_dhe_ke`, an X25519 key share.
    pub(crate) fn tls13() -> Self {
        let mut share = vec![0, 0x1d, 0, 32];
        share.extend([0x33; 32]);
        Hello {
            legacy_version: 0x0303,
            random: [0xa5; 32],
            session_id: vec![0xee; 32],
            cipher_suites: vec![0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f],
            compression: vec![0],
            extensions: Some(vec![
                (0, server_name(b"example.com")),
                (10, vec![0, 4, 0, 0x1d, 0, 0x17]),
                (35, Vec::new()),
                (43, vec![4, 3, 4, 3, 3]),
                (45, vec![1, 1]),
                (51, vec16(&share)),
            ]),
        }
    }

    pub(crate) fn session_id(mut self, id: &[u8]) -> Self {
        self.session_id = id.to_vec();
        self
    }

    /// Replaces extension `kind`'s data where it is, or appends it.
    pub(crate) fn ext(mut self, kind: u16, data: Vec<u8>) -> Self {
        let exts = self.extensions.get_or_insert_with(Vec::new);
        match exts.iter_mut().find(|(k, _)| *k == kind) {
            Some(slot) => slot.1 = data,
            None => exts.push((kind, data)),
        }
        self
    }

    /// Appends extension `kind` even if it is there already.
    pub(crate) fn push_ext(mut self, kind: u16, data: Vec<u8>) -> Self {
        self.extensions
            .get_or_insert_with(Vec::new)
            .push((kind, data));
        self
    }

    pub(crate) fn without(mut self, kind: u16) -> Self {
        if let Some(exts) = &mut self.extensions {
            exts.retain(|(k, _)| *k != kind);
        }
        self
    }

    /// Appends `pre_shared_key` offering `identities` (with their obfuscated ages), each
    /// with a 32-byte binder.
    pub(crate) fn psk(self, identities: &[(&[u8], u32)]) -> Self {
        self.push_ext(41, psk(identities, identities.len(), 32))
    }

    pub(crate) fn body(&self) -> Vec<u8> {
        let mut out = self.legacy_version.to_be_bytes().to_vec();
        out.extend(self.random);
        out.extend(vec8(&self.session_id));
        out.extend(vec16(&self.cipher_suites));
        out.extend(vec8(&self.compression));
        if let Some(exts) = &self.extensions {
            let mut all = Vec::new();
            for (kind, data) in exts {
                all.extend(kind.to_be_bytes());
                all.extend(vec16(data));
            }
            out.extend(vec16(&all));
        }
        out
    }

    /// The handshake message: type 1, a 3-byte length, the body.
    pub(crate) fn message(&self) -> Vec<u8> {
        message(&self.body())
    }

    /// The message in records of at most `size` bytes.
    pub(crate) fn records(&self, size: usize) -> Vec<u8> {
        records(&self.message(), size)
    }
}

/// A handshake message of type 1 around `body`.
pub(crate) fn message(body: &[u8]) -> Vec<u8> {
    let len = (body.len() as u32).to_be_bytes();
    let mut out = vec![1, len[1], len[2], len[3]];
    out.extend(body);
    out
}

/// `message` in handshake records (version 0x0301) of at most `size` bytes each.
pub(crate) fn records(message: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in message.chunks(size) {
        out.extend(record(22, chunk));
    }
    out
}

/// One record of `content_type` (version 0x0301) around `fragment`.
pub(crate) fn record(content_type: u8, fragment: &[u8]) -> Vec<u8> {
    let mut out = vec![content_type, 3, 1];
    out.extend(vec16(fragment));
    out
}

/// `data` behind a 1-byte length.
pub(crate) fn vec8(data: &[u8]) -> Vec<u8> {
    let mut out = vec![data.len() as u8];
    out.extend(data);
    out
}

/// `data` behind a 2-byte length.
pub(crate) fn vec16(data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u16).to_be_bytes().to_vec();
    out.extend(data);
    out
}

/// `server_name`'s data: one `host_name`.
pub(crate) fn server_name(host: &[u8]) -> Vec<u8> {
    let mut entry = vec![0];
    entry.extend(vec16(host));
    vec16(&entry)
}

/// `pre_shared_key`'s data: `identities` and `binders` binders of `binder_len` bytes.
pub(crate) fn psk(identities: &[(&[u8], u32)], binders: usize, binder_len: usize) -> Vec<u8> {
    let mut ids = Vec::new();
    for (identity, age) in identities {
        ids.extend(vec16(identity));
        ids.extend(age.to_be_bytes());
    }
    let mut entries = Vec::new();
    for i in 0..binders {
        entries.extend(vec8(&vec![i as u8; binder_len]));
    }
    let mut out = vec16(&ids);
    out.extend(vec16(&entries));
    out
}
