//! The in buffer's reader and the out buffer's writer (the crate docs describe both).

use crate::{Error, Result};

/// Reads the string arguments of one call from the in buffer, in order.
pub struct Args<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Args<'a> {
    /// A reader at the start of `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Args { input, at: 0 }
    }

    /// The next `len` bytes.
    pub fn bytes(&mut self, len: i32) -> Result<&'a [u8]> {
        let len = usize::try_from(len).map_err(|_| Error::argument("a negative length"))?;
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.input.len())
            .ok_or_else(|| Error::argument("the arguments overrun the in buffer"))?;
        let bytes = &self.input[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    /// The next `len` bytes as UTF-8 (`what` names the argument in the error).
    pub fn text(&mut self, len: i32, what: &str) -> Result<&'a str> {
        std::str::from_utf8(self.bytes(len)?)
            .map_err(|_| Error::argument(format!("{what} is not valid UTF-8")))
    }

    /// The next string written with its `u32` little-endian length in front.
    pub fn prefixed(&mut self, what: &str) -> Result<&'a str> {
        let len: [u8; 4] = self
            .bytes(4)?
            .try_into()
            .map_err(|_| Error::argument("a short length"))?;
        let len = i32::try_from(u32::from_le_bytes(len))
            .map_err(|_| Error::argument("a length over 2 GiB"))?;
        self.text(len, what)
    }
}

/// What a call writes for JavaScript: little-endian numbers, `f64` for every id, time
/// and count, strings as a `u32` length and UTF-8.
#[derive(Default)]
pub struct Out(Vec<u8>);

impl Out {
    /// Empties the buffer (each call starts with an empty one).
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Where the bytes start.
    pub fn as_ptr(&self) -> *const u8 {
        self.0.as_ptr()
    }

    /// How many bytes were written.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes, for encoders that write a `Vec` themselves.
    pub fn vec(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }

    /// Raw bytes.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// One byte.
    pub fn u8(&mut self, value: u8) {
        self.0.push(value);
    }

    /// A `u32`, little-endian.
    pub fn u32(&mut self, value: u32) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    /// An `f64`, little-endian.
    pub fn f64(&mut self, value: f64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    /// An integer as `f64` (exact below 2^53; ids, times and lifetimes stay far below).
    pub fn num(&mut self, value: u64) {
        self.f64(value as f64);
    }

    /// An optional integer: `-1` for none.
    pub fn opt(&mut self, value: Option<u64>) {
        self.f64(value.map_or(-1.0, |v| v as f64));
    }

    /// A string: its `u32` byte length, then its UTF-8.
    pub fn text(&mut self, text: &str) {
        self.u32(u32::try_from(text.len()).unwrap_or(u32::MAX));
        self.bytes(text.as_bytes());
    }

    /// An optional string: a `u8` 0 for none, else 1 and the string.
    pub fn opt_text(&mut self, text: Option<&str>) {
        match text {
            None => self.u8(0),
            Some(text) => {
                self.u8(1);
                self.text(text);
            }
        }
    }
}
