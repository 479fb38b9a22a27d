//! A bounds-checked cursor over part of a ClientHello's body, giving positions as ranges of
//! the whole body so that the parsed hello can keep them.

use std::ops::Range;

use crate::Error;

/// Reads `buf[pos..end]`, named `name` in errors (the container of what it reads). No
/// `Debug`: the bytes hold session ids and tickets.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
    name: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over all of `buf`.
    pub(crate) fn new(buf: &'a [u8], name: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            end: buf.len(),
            name,
        }
    }

    /// A reader over `range` of the same buffer (a range an earlier read returned).
    pub(crate) fn sub(&self, range: Range<usize>, name: &'static str) -> Self {
        Reader {
            buf: self.buf,
            pos: range.start,
            end: range.end,
            name,
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// The next `n` bytes' range.
    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<Range<usize>, Error> {
        if n > self.remaining() {
            return Err(Error::Overrun {
                field,
                container: self.name,
            });
        }
        let range = self.pos..self.pos + n;
        self.pos += n;
        Ok(range)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], Error> {
        let range = self.take(N, field)?;
        let mut out = [0; N];
        out.copy_from_slice(&self.buf[range]);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, Error> {
        self.array::<1>(field).map(|[b]| b)
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, Error> {
        self.array(field).map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, Error> {
        self.array(field).map(u32::from_be_bytes)
    }

    /// A vector with a 1-byte length: its contents' range.
    pub(crate) fn vec8(&mut self, field: &'static str) -> Result<Range<usize>, Error> {
        let len = self.u8(field)?;
        self.take(usize::from(len), field)
    }

    /// A vector with a 2-byte length: its contents' range.
    pub(crate) fn vec16(&mut self, field: &'static str) -> Result<Range<usize>, Error> {
        let len = self.u16(field)?;
        self.take(usize::from(len), field)
    }

    /// The bytes of `range` (a range an earlier read returned).
    pub(crate) fn slice(&self, range: Range<usize>) -> &'a [u8] {
        self.buf.get(range).unwrap_or_default()
    }

    /// Fails if anything is left.
    pub(crate) fn finish(&self) -> Result<(), Error> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(Error::TrailingBytes {
                container: self.name,
                count,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_values_and_vectors() {
        let buf = [1, 0x02, 0x03, 0, 0, 1, 0, 2, 0xaa, 0xbb, 0, 1, 0xcc, 0xdd];
        let mut r = Reader::new(&buf, "buf");
        assert_eq!(r.u8("a"), Ok(1));
        assert_eq!(r.u16("b"), Ok(0x0203));
        assert_eq!(r.u32("c"), Ok(0x100));
        assert_eq!(r.vec8("d"), Ok(8..10));
        assert_eq!(r.vec16("e"), Ok(12..13));
        assert_eq!(r.remaining(), 1);
        assert_eq!(
            r.finish(),
            Err(Error::TrailingBytes {
                container: "buf",
                count: 1
            })
        );
    }

    #[test]
    fn a_length_past_the_end_is_an_overrun_of_the_container_and_moves_nothing() {
        let buf = [9, 0, 3, 1, 2];
        let mut whole = Reader::new(&buf, "whole");
        let inner = whole.take(5, "all").unwrap();
        let mut r = whole.sub(1..inner.end, "inner");
        let overrun = Error::Overrun {
            field: "v",
            container: "inner",
        };
        assert_eq!(r.vec16("v"), Err(overrun.clone()));
        assert_eq!(
            r.remaining(),
            2,
            "the length was read, its contents were not"
        );
        assert_eq!(r.u32("v"), Err(overrun));
        assert_eq!(r.take(2, "rest"), Ok(3..5));
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(
            r.u8("x"),
            Err(Error::Overrun {
                field: "x",
                container: "inner"
            })
        );
    }
}
