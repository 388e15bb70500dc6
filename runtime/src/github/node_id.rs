//! GitHub node IDs (`node_id` in REST, `id` in GraphQL) and the integer id of an event.
//!
//! GraphQL timeline events have no `databaseId`, yet `issue_events.id` must stay an
//! integer, the same for one event whichever API read it, so that existing SQL and the
//! transform keep working and a REST read never duplicates a GraphQL one. GitHub's node IDs
//! carry the database id, in one of two known forms:
//!
//! - legacy: base64 of `"<length of type name, 3 digits>:<TypeName><database id>"`, such
//!   as `MDEyOkxhYmVsZWRFdmVudDE=` for `012:LabeledEvent1`;
//! - current: `<type prefix>_` then unpadded URL-safe base64 of a MessagePack array
//!   `[0, repository id, ..., database id]`, such as `LE_lADOAAABAM4AAYag...`.
//!
//! GitHub calls node IDs opaque, so the decoding is strict: anything that is not exactly
//! one of these shapes yields `None`, and [`event_id`] then falls back to a negative number
//! derived from the node ID (stable, and never equal to a database id, which is positive).

/// The database id a node ID encodes, when it has one of the two known shapes.
pub fn database_id(node_id: &str) -> Option<u64> {
    match node_id.split_once('_') {
        Some((prefix, payload))
            if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            msgpack_last_uint(&base64_decode(payload)?)
        }
        _ => legacy_id(node_id),
    }
}

/// The integer an event is stored under: its database id (what REST calls `id`) when the
/// node ID encodes one, else `-1 - (FNV-1a of the node ID >> 1)`, a stable negative number.
pub fn event_id(node_id: &str) -> i64 {
    match database_id(node_id).and_then(|id| i64::try_from(id).ok()) {
        Some(id) if id > 0 => id,
        _ => -1 - (fnv1a(node_id.as_bytes()) >> 1) as i64,
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// `NNN:TypeName1234` inside standard base64.
fn legacy_id(node_id: &str) -> Option<u64> {
    let text = String::from_utf8(base64_decode(node_id)?).ok()?;
    let (len, rest) = text.split_once(':')?;
    if len.len() != 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: usize = len.parse().ok()?;
    let type_name = rest.get(..len)?;
    let digits = rest.get(len..)?;
    if type_name.is_empty()
        || !type_name.bytes().all(|b| b.is_ascii_alphabetic())
        || digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    digits.parse().ok()
}

/// Base64 in either alphabet (standard or URL-safe), padding optional.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in text.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero padding of the last byte, and one char alone is no byte.
    (acc == 0 && bits < 6).then_some(out)
}

/// The last element of a MessagePack array of unsigned integers whose first element is
/// the format version 0; `None` for any other shape.
fn msgpack_last_uint(bytes: &[u8]) -> Option<u64> {
    let (&head, mut rest) = bytes.split_first()?;
    let count = match head {
        0x92..=0x9f => usize::from(head - 0x90),
        _ => return None,
    };
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        let (&tag, tail) = rest.split_first()?;
        let (value, width) = match tag {
            0x00..=0x7f => (u64::from(tag), 0),
            0xcc => (0, 1),
            0xcd => (0, 2),
            0xce => (0, 4),
            0xcf => (0, 8),
            _ => return None,
        };
        let raw = tail.get(..width)?;
        let value = raw.iter().fold(value, |acc, b| (acc << 8) | u64::from(*b));
        values.push(value);
        rest = &tail[width..];
    }
    if !rest.is_empty() || values.first() != Some(&0) {
        return None;
    }
    values.last().copied()
}

/// Encodes `values` as the current node-ID form with `prefix` (the fake GitHub of the tests
/// and the unit tests build node IDs the way GitHub does).
pub fn encode(prefix: &str, values: &[u64]) -> String {
    let mut bytes = vec![0x90 | values.len().min(15) as u8];
    for &v in values.iter().take(15) {
        match v {
            0..=0x7f => bytes.push(v as u8),
            0x80..=0xff => bytes.extend([0xcc, v as u8]),
            0x100..=0xffff => {
                bytes.push(0xcd);
                bytes.extend((v as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                bytes.push(0xce);
                bytes.extend((v as u32).to_be_bytes());
            }
            _ => {
                bytes.push(0xcf);
                bytes.extend(v.to_be_bytes());
            }
        }
    }
    format!("{prefix}_{}", base64_encode(&bytes, true))
}

/// Encodes the legacy node-ID form (`012:LabeledEvent1`, standard base64 with padding).
pub fn encode_legacy(type_name: &str, id: u64) -> String {
    let text = format!("{:03}:{type_name}{id}", type_name.len());
    base64_encode(text.as_bytes(), false)
}

fn base64_encode(bytes: &[u8], url_safe: bool) -> String {
    let alphabet: &[u8; 64] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else if !url_safe {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_both_known_forms() {
        // GitHub's own examples: a user in the current form, and legacy ids.
        assert_eq!(database_id("U_kgDOAAhEkg"), Some(541_842));
        assert_eq!(database_id("MDEyOkxhYmVsZWRFdmVudDE="), Some(1));
        assert_eq!(database_id("MDEwOlJlcG9zaXRvcnkyMzI1Mjk4"), Some(2_325_298));
        for ids in [
            vec![0, 1, 2],
            vec![0, 38_168_738, 5_000_000_007],
            vec![0, 200, 70_000, 3_000_000_000],
        ] {
            let node = encode("LE", &ids);
            assert_eq!(database_id(&node), ids.last().copied(), "{node}");
        }
        assert_eq!(database_id(&encode_legacy("ClosedEvent", 1234)), Some(1234));
        // Large ids stay exact (past 2^31 and 2^32).
        assert_eq!(
            event_id(&encode("PRR", &[0, 9, 5_000_000_000])),
            5_000_000_000
        );
    }

    #[test]
    fn anything_else_is_a_stable_negative_id() {
        for opaque in [
            "",
            "nonsense",
            "X_!!!!",
            "LE_",
            &encode("LE", &[1, 2, 3]),  // version is not 0
            "MDEyOkxhYmVsZWRFdmVudA==", // legacy without digits
        ] {
            assert_eq!(database_id(opaque), None, "{opaque}");
            let id = event_id(opaque);
            assert!(id < 0, "{opaque}: {id}");
            assert_eq!(id, event_id(opaque), "stable");
        }
        assert_ne!(event_id("a"), event_id("b"));
    }
}
