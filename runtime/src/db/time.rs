//! UTC instants with one-second precision, the unit GitHub and the DATETIME columns share.
//!
//! A small own type instead of chrono or time: we only parse RFC 3339, print it, and move
//! values in and out of MySQL, and the dependency would cost more build time than this.

use std::fmt;

use mysql_async::Value;

/// Seconds since 1970-01-01T00:00:00Z. Ordered, so watermarks compare directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime(pub i64);

/// A timestamp string that is not RFC 3339.
#[derive(Debug, thiserror::Error)]
#[error("invalid timestamp {0:?} (want RFC 3339 such as 2017-10-10T16:00:00Z)")]
pub struct TimeError(pub String);

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl UtcTime {
    /// Builds an instant from calendar fields, all in UTC.
    pub fn from_parts(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Self {
        UtcTime(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
    }

    /// The calendar fields (year, month, day, hour, minute, second) in UTC.
    pub fn parts(self) -> (i64, i64, i64, i64, i64, i64) {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        (y, m, d, secs / 3600, secs % 3600 / 60, secs % 60)
    }

    /// Parses RFC 3339 (`Z` or a numeric offset; fractions of a second are dropped).
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        let err = || TimeError(text.to_owned());
        let b = text.as_bytes();
        if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return Err(err());
        }
        let num = |from: usize, to: usize| -> Result<i64, TimeError> {
            let s = text.get(from..to).ok_or_else(err)?;
            if !s.bytes().all(|c| c.is_ascii_digit()) {
                return Err(err());
            }
            s.parse().map_err(|_| err())
        };
        let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
        if b[13] != b':' || b[16] != b':' {
            return Err(err());
        }
        let (h, mi, s) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
            return Err(err());
        }
        let mut rest = &text[19..];
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(err());
            }
            rest = &frac[digits..];
        }
        let offset = match rest {
            "Z" | "z" | "" => 0,
            _ if rest.len() == 6 && matches!(&rest[..1], "+" | "-") && &rest[3..4] == ":" => {
                let oh: i64 = rest[1..3].parse().map_err(|_| err())?;
                let om: i64 = rest[4..6].parse().map_err(|_| err())?;
                let sign = if &rest[..1] == "-" { -1 } else { 1 };
                sign * (oh * 3600 + om * 60)
            }
            _ => return Err(err()),
        };
        Ok(UtcTime(Self::from_parts(y, mo, d, h, mi, s).0 - offset))
    }

    /// The value bound into a DATETIME column (naive UTC wall-clock time).
    pub fn to_mysql(self) -> Value {
        let (y, mo, d, h, mi, s) = self.parts();
        Value::Date(y as u16, mo as u8, d as u8, h as u8, mi as u8, s as u8, 0)
    }

    /// Reads a DATETIME column value (binary or text protocol); `None` for NULL.
    pub fn from_mysql(value: &Value) -> Result<Option<Self>, TimeError> {
        match value {
            Value::NULL => Ok(None),
            Value::Date(y, mo, d, h, mi, s, _) => Ok(Some(Self::from_parts(
                i64::from(*y),
                i64::from(*mo),
                i64::from(*d),
                i64::from(*h),
                i64::from(*mi),
                i64::from(*s),
            ))),
            Value::Bytes(bytes) => {
                let text = String::from_utf8_lossy(bytes);
                Self::parse(&text).map(Some)
            }
            other => Err(TimeError(format!("{other:?}"))),
        }
    }
}

impl fmt::Display for UtcTime {
    /// RFC 3339 with `Z`, as GitHub writes it and expects in `since=`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s) = self.parts();
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

impl<'de> serde::Deserialize<'de> for UtcTime {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(de)?;
        UtcTime::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for UtcTime {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    // Unused when a bench includes this file with #[path] (its tests are not built there).
    #[allow(unused_imports)]
    use super::*;

    #[test]
    fn round_trips() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2017-10-10T16:00:00Z",
            "1900-01-01T00:00:00Z",
            "2100-02-28T23:59:59Z",
        ] {
            assert_eq!(UtcTime::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            UtcTime::parse("1970-01-01T01:00:00+01:00").unwrap(),
            UtcTime(0)
        );
        assert_eq!(
            UtcTime::parse("1970-01-01T00:00:01.5Z").unwrap(),
            UtcTime(1)
        );
        for bad in [
            "",
            "2017-13-01T00:00:00Z",
            "2017-10-10",
            "2017-10-10T16:00:00X",
            "abcd-10-10T16:00:00Z",
        ] {
            assert!(UtcTime::parse(bad).is_err(), "{bad}");
        }
        let t = UtcTime::parse("2001-02-03T04:05:06Z").unwrap();
        assert_eq!(UtcTime::from_mysql(&t.to_mysql()).unwrap(), Some(t));
    }
}
