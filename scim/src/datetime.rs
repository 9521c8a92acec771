//! Minimal RFC 3339 date-time parser, so `meta.lastModified gt "..."`
//! compares instants rather than text (offsets and fractions differ).

/// Seconds since the Unix epoch plus nanoseconds; ordered chronologically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Instant {
    secs: i64,
    nanos: u32,
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`; `None` for anything else.
pub(crate) fn parse(s: &str) -> Option<Instant> {
    let mut p = Bytes { rest: s.as_bytes() };
    let year = p.digits(4)?;
    p.expect(b'-')?;
    let month = p.digits(2)?;
    p.expect(b'-')?;
    let day = p.digits(2)?;
    p.expect_any(b"Tt")?;
    let hour = p.digits(2)?;
    p.expect(b':')?;
    let minute = p.digits(2)?;
    p.expect(b':')?;
    let second = p.digits(2)?;
    let nanos = if p.expect(b'.').is_some() {
        p.fraction()?
    } else {
        0
    };
    let offset = p.offset()?;
    let valid = p.rest.is_empty()
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second <= 60; // 60: leap second
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset;
    Some(Instant { secs, nanos })
}

struct Bytes<'a> {
    rest: &'a [u8],
}

impl Bytes<'_> {
    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        self.expect_any(&[want])
    }

    fn expect_any(&mut self, wanted: &[u8]) -> Option<()> {
        let b = *self.rest.first()?;
        if wanted.contains(&b) {
            self.rest = &self.rest[1..];
            Some(())
        } else {
            None
        }
    }

    fn digits(&mut self, n: usize) -> Option<i64> {
        let mut v = 0i64;
        for _ in 0..n {
            let b = self.next().filter(u8::is_ascii_digit)?;
            v = v * 10 + i64::from(b - b'0');
        }
        Some(v)
    }

    /// Fractional seconds as nanoseconds; digits past the ninth are ignored.
    fn fraction(&mut self) -> Option<u32> {
        let mut nanos = 0u32;
        let mut count = 0;
        while let Some(&b) = self.rest.first().filter(|b| b.is_ascii_digit()) {
            self.rest = &self.rest[1..];
            if count < 9 {
                nanos = nanos * 10 + u32::from(b - b'0');
            }
            count += 1;
        }
        if count == 0 {
            return None;
        }
        for _ in count..9 {
            nanos *= 10;
        }
        Some(nanos)
    }

    /// `Z` or `±HH:MM`, as seconds east of UTC.
    fn offset(&mut self) -> Option<i64> {
        let sign = match self.next()? {
            b'Z' | b'z' => return Some(0),
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let hours = self.digits(2)?;
        self.expect(b':')?;
        let minutes = self.digits(2)?;
        (hours < 24 && minutes < 60).then_some(sign * (hours * 3_600 + minutes * 60))
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's
/// civil-calendar algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> i64 {
        parse(s).map(|i| i.secs).unwrap_or(i64::MIN)
    }

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(secs("1970-01-01T00:00:00Z"), 0);
        assert_eq!(secs("2011-05-13T04:42:34Z"), 1_305_261_754);
        assert_eq!(secs("2000-02-29T00:00:00Z"), 951_782_400);
        assert_eq!(secs("1969-12-31T23:59:59Z"), -1);
    }

    #[test]
    fn offsets_and_fractions() {
        assert_eq!(
            parse("2011-05-13T06:42:34+02:00"),
            parse("2011-05-13T04:42:34Z")
        );
        assert_eq!(
            parse("2011-05-13T04:42:34.500z"),
            parse("2011-05-13t04:42:34.5Z")
        );
        assert!(parse("2011-05-13T04:42:34.1Z") > parse("2011-05-13T04:42:34Z"));
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "2011-05-13",
            "2011-13-01T00:00:00Z",
            "2011-02-29T00:00:00Z",
            "2011-05-13T24:00:00Z",
            "2011-05-13T04:42:34",
            "2011-05-13T04:42:34.Z",
            "2011-05-13T04:42:34Zjunk",
            "2011-05-13T04:42:34+2:00",
            "２011-05-13T04:42:34Z",
        ] {
            assert_eq!(parse(s), None, "{s}");
        }
    }
}
