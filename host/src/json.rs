//! A tolerant reader for the top level of a token response.
//!
//! The token endpoint's answer is a JSON object (RFC 6749 §5.1). A strict JSON parser
//! refuses the whole document for one bad member — a `NaN` or `1e400` lifetime that some
//! servers emit — and with it the rotated refresh token that the same answer carries. This
//! reader splits the top-level object into members and leaves each value as raw text, so
//! that every field is judged on its own ([`crate::token`]). Nested values are skipped by
//! counting brackets (no recursion, so no depth limit is needed: the body's size bounds
//! the work); strings are decoded by `serde_json`.

/// Why a body is not a JSON object this reader can split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScanError {
    /// The body is not an object (an array, a string, HTML, nothing).
    NotAnObject,
    /// It ends in the middle of the object.
    Truncated,
    /// A syntax error at the top level, or bytes after the object.
    Syntax,
}

/// One member of the top-level object: its decoded key and its value's raw text.
pub(crate) struct Member<'a> {
    pub key: String,
    pub raw: &'a str,
}

/// What a scan found: the members completed in order (duplicates kept), and the problem
/// that stopped it, if any. A body cut short or followed by garbage still yields the
/// members before the problem, so that a rotation among them is not lost (§12.3).
pub(crate) struct Scan<'a> {
    pub members: Vec<Member<'a>>,
    pub error: Option<ScanError>,
}

/// A key that cannot be decoded (a lone surrogate escape): it names no field.
const UNDECODABLE: &str = "\u{fffd}";

/// Splits the top-level object of `text` into its members.
pub(crate) fn members(text: &str) -> Scan<'_> {
    let mut members = Vec::new();
    let error = scan(text, &mut members).err();
    Scan { members, error }
}

fn scan<'a>(text: &'a str, out: &mut Vec<Member<'a>>) -> Result<(), ScanError> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    match b.get(i) {
        Some(b'{') => i += 1,
        Some(_) => return Err(ScanError::NotAnObject),
        None => return Err(ScanError::Truncated),
    }
    i = skip_ws(b, i);
    if b.get(i) == Some(&b'}') {
        return end(b, i + 1);
    }
    loop {
        match b.get(i) {
            Some(b'"') => {}
            Some(_) => return Err(ScanError::Syntax),
            None => return Err(ScanError::Truncated),
        }
        let key_end = string_end(b, i)?;
        let key: String =
            serde_json::from_str(&text[i..key_end]).unwrap_or_else(|_| UNDECODABLE.to_owned());
        i = skip_ws(b, key_end);
        match b.get(i) {
            Some(b':') => i = skip_ws(b, i + 1),
            Some(_) => return Err(ScanError::Syntax),
            None => return Err(ScanError::Truncated),
        }
        let value_end = value_end(b, i)?;
        out.push(Member {
            key,
            raw: &text[i..value_end],
        });
        i = skip_ws(b, value_end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return end(b, i + 1),
            Some(_) => return Err(ScanError::Syntax),
            None => return Err(ScanError::Truncated),
        }
    }
}

fn end(b: &[u8], i: usize) -> Result<(), ScanError> {
    if skip_ws(b, i) == b.len() {
        Ok(())
    } else {
        Err(ScanError::Syntax)
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// `b[start]` is `"`: the index after the closing quote.
fn string_end(b: &[u8], start: usize) -> Result<usize, ScanError> {
    let mut i = start + 1;
    loop {
        match b.get(i) {
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => i += 2,
            // A raw control character is invalid JSON, but it spoils only its own value
            // (whose decoding refuses it), not the members around it.
            Some(_) => i += 1,
            None => return Err(ScanError::Truncated),
        }
    }
}

/// The end of the value starting at `b[start]`: a string, a nested object or array
/// (skipped, brackets counted outside strings), or a bare word (number, literal, or
/// anything else up to the next delimiter — judged by the field's reader).
fn value_end(b: &[u8], start: usize) -> Result<usize, ScanError> {
    match b.get(start) {
        None => Err(ScanError::Truncated),
        Some(b'"') => string_end(b, start),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            loop {
                match b.get(i) {
                    None => return Err(ScanError::Truncated),
                    Some(b'"') => {
                        i = string_end(b, i)?;
                        continue;
                    }
                    Some(b'{' | b'[') => depth += 1,
                    Some(b'}' | b']') => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                    Some(_) => {}
                }
                i += 1;
            }
        }
        Some(b',' | b'}' | b']' | b':') => Err(ScanError::Syntax),
        Some(_) => {
            let mut i = start;
            while let Some(c) = b.get(i) {
                if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' | b'"') {
                    break;
                }
                i += 1;
            }
            Ok(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Result<Vec<(String, String)>, ScanError> {
        let scan = members(text);
        match scan.error {
            Some(e) => Err(e),
            None => Ok(scan
                .members
                .into_iter()
                .map(|m| (m.key, m.raw.to_owned()))
                .collect()),
        }
    }

    #[test]
    fn keeps_the_members_before_a_problem() {
        for text in [
            r#"{"a":"1","b":"2","c":"#,
            r#"{"a":"1","b":"2"} {"x":1}"#,
            r#"{"a":"1","b":"2","c" 3}"#,
        ] {
            let scan = members(text);
            assert!(scan.error.is_some(), "{text}");
            let got: Vec<&str> = scan.members.iter().map(|m| m.key.as_str()).collect();
            assert_eq!(got, ["a", "b"], "{text}");
        }
        let scan = members(r#"{"x\ud800":1,"a":"b"}"#);
        assert!(scan.error.is_none());
        assert_eq!(scan.members[0].key, UNDECODABLE);
        assert_eq!(scan.members[1].key, "a");
    }

    #[test]
    fn splits_members_and_keeps_raw_values() {
        let m = keys(r#" {"a":"x\"y", "b" : 1e400 ,"c":{"d":[1,"}"]},"e":NaN,"a":null} "#)
            .expect("an object");
        let want = [
            ("a", r#""x\"y""#),
            ("b", "1e400"),
            ("c", r#"{"d":[1,"}"]}"#),
            ("e", "NaN"),
            ("a", "null"),
        ];
        assert_eq!(m.len(), want.len());
        for ((k, v), (wk, wv)) in m.iter().zip(want) {
            assert_eq!((k.as_str(), v.as_str()), (wk, wv));
        }
        assert_eq!(keys("{}").map(|m| m.len()), Ok(0));
        assert_eq!(
            keys(r#"{"\u0061":1}"#).map(|m| m[0].0.clone()),
            Ok("a".into())
        );
    }

    #[test]
    fn refuses_what_is_not_one_object() {
        assert_eq!(keys("[1]").err(), Some(ScanError::NotAnObject));
        assert_eq!(keys("<html>").err(), Some(ScanError::NotAnObject));
        assert_eq!(keys("").err(), Some(ScanError::Truncated));
        assert_eq!(keys(r#"{"a":"b"#).err(), Some(ScanError::Truncated));
        assert_eq!(keys(r#"{"a":1"#).err(), Some(ScanError::Truncated));
        assert_eq!(keys(r#"{"a":1}x"#).err(), Some(ScanError::Syntax));
        assert_eq!(keys(r#"{"a" 1}"#).err(), Some(ScanError::Syntax));
        assert_eq!(keys(r#"{a:1}"#).err(), Some(ScanError::Syntax));
        assert_eq!(
            keys("{\"a\":\"x\ny\",\"b\":1}").map(|m| m.len()),
            Ok(2),
            "a raw control character spoils only its own value"
        );
        let deep = format!(
            "{{\"a\":{}{},\"b\":1}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_eq!(
            keys(&deep).map(|m| m.len()),
            Ok(2),
            "deep nesting is skipped, not recursed into"
        );
    }
}
