//! Datetimes stored the way Django stores them with `USE_TZ = True`: a naive
//! UTC text `YYYY-MM-DD HH:MM:SS[.ffffff]` on SQLite (Python's `str()` of the
//! datetime), `timestamp with time zone` on PostgreSQL, a naive UTC
//! `datetime(6)` on MySQL.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::mysql::{MySql, MySqlTypeInfo, MySqlValueRef};
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef, Postgres};
use sqlx::sqlite::{Sqlite, SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Type};

/// An aware UTC datetime with Django's storage format on each back end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DjangoDateTime(pub DateTime<Utc>);

impl DjangoDateTime {
    /// Now, at the microsecond precision both databases keep.
    pub fn now() -> Self {
        DjangoDateTime(Utc::now().trunc_subsecs(6))
    }

    /// Python's `str(naive_datetime)`: microseconds only when non-zero.
    pub fn to_sqlite_text(&self) -> String {
        let naive = self.0.naive_utc();
        if naive.and_utc().timestamp_subsec_micros() == 0 {
            naive.format("%Y-%m-%d %H:%M:%S").to_string()
        } else {
            naive.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
        }
    }

    /// Reads what Django's `parse_datetime` reads: a space or `T`, optional
    /// fraction, optional UTC offset.
    pub fn parse_sqlite_text(text: &str) -> Option<Self> {
        if let Some(stored) = Self::parse_stored(text.as_bytes()) {
            return Some(stored);
        }
        if let Ok(aware) = DateTime::parse_from_rfc3339(&text.replacen(' ', "T", 1)) {
            return Some(DjangoDateTime(aware.with_timezone(&Utc)));
        }
        [
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M",
        ]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| DjangoDateTime(naive.and_utc()))
    }

    /// The form Django writes, `YYYY-MM-DD HH:MM:SS[.f]` with 1 to 6
    /// fraction digits, read without chrono's format machinery: every row of
    /// the product list carries two of them.
    fn parse_stored(text: &[u8]) -> Option<Self> {
        fn number(digits: &[u8]) -> Option<u32> {
            digits.iter().try_fold(0u32, |n, &d| {
                d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
            })
        }
        if text.len() < 19 || !matches!(text.get(19), None | Some(b'.')) {
            return None;
        }
        let shape = [(4, b'-'), (7, b'-'), (10, b' '), (13, b':'), (16, b':')];
        if shape.iter().any(|&(at, c)| text[at] != c) {
            return None;
        }
        let micros = match text.get(20..) {
            None => 0,
            Some(fraction @ [_, ..]) if fraction.len() <= 6 => {
                number(fraction)? * 10u32.pow(6 - fraction.len() as u32)
            }
            Some(_) => return None,
        };
        let date = chrono::NaiveDate::from_ymd_opt(
            number(&text[0..4])? as i32,
            number(&text[5..7])?,
            number(&text[8..10])?,
        )?;
        let time = chrono::NaiveTime::from_hms_micro_opt(
            number(&text[11..13])?,
            number(&text[14..16])?,
            number(&text[17..19])?,
            micros,
        )?;
        Some(DjangoDateTime(date.and_time(time).and_utc()))
    }
}

/// From SQLite's text, for the read path (`db::read`).
impl<'de> serde::Deserialize<'de> for DjangoDateTime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        DjangoDateTime::parse_sqlite_text(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a Django datetime: {text:?}")))
    }
}

impl Type<Sqlite> for DjangoDateTime {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for DjangoDateTime {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.to_sqlite_text(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for DjangoDateTime {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Sqlite>>::decode(value)?;
        DjangoDateTime::parse_sqlite_text(text)
            .ok_or_else(|| format!("not a Django datetime: {text:?}").into())
    }
}

impl Type<Postgres> for DjangoDateTime {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for DjangoDateTime {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for DjangoDateTime {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(DjangoDateTime(<DateTime<Utc> as Decode<Postgres>>::decode(
            value,
        )?))
    }
}

/// Django on MySQL with `USE_TZ` writes the UTC wall time into a column
/// without a zone, and reads it back as UTC.
impl Type<MySql> for DjangoDateTime {
    fn type_info() -> MySqlTypeInfo {
        <NaiveDateTime as Type<MySql>>::type_info()
    }
    fn compatible(ty: &MySqlTypeInfo) -> bool {
        <NaiveDateTime as Type<MySql>>::compatible(ty)
    }
}

impl Encode<'_, MySql> for DjangoDateTime {
    fn encode_by_ref(&self, buf: &mut Vec<u8>) -> Result<IsNull, BoxDynError> {
        <NaiveDateTime as Encode<MySql>>::encode_by_ref(&self.0.naive_utc(), buf)
    }
}

impl<'r> Decode<'r, MySql> for DjangoDateTime {
    fn decode(value: MySqlValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(DjangoDateTime(
            <NaiveDateTime as Decode<MySql>>::decode(value)?.and_utc(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sqlite_text_matches_python_str() {
        let whole = DjangoDateTime(Utc.with_ymd_and_hms(2026, 11, 25, 9, 5, 7).unwrap());
        assert_eq!(whole.to_sqlite_text(), "2026-11-25 09:05:07");
        let micro = DjangoDateTime(whole.0 + chrono::Duration::microseconds(1234));
        assert_eq!(micro.to_sqlite_text(), "2026-11-25 09:05:07.001234");
        for text in [
            "2026-11-25 09:05:07.001234",
            "2026-11-25T09:05:07.001234",
            "2026-11-25 12:05:07.001234+03:00",
        ] {
            assert_eq!(
                DjangoDateTime::parse_sqlite_text(text),
                Some(micro),
                "{text}"
            );
        }
        assert_eq!(
            DjangoDateTime::parse_sqlite_text("2026-11-25 09:05:07"),
            Some(whole)
        );
        assert_eq!(DjangoDateTime::parse_sqlite_text("yesterday"), None);
    }

    #[test]
    fn the_stored_form_reads_as_the_general_parser_reads_it() {
        let general = |text: &str| {
            ["%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
                .map(|naive| DjangoDateTime(naive.and_utc()))
        };
        for text in [
            "2026-11-25 09:05:07",
            "2026-11-25 09:05:07.5",
            "2026-11-25 09:05:07.001234",
            "0001-01-01 00:00:00",
            "9999-12-31 23:59:59.999999",
            "2024-02-29 12:00:00.000001",
        ] {
            let fast = DjangoDateTime::parse_stored(text.as_bytes());
            assert!(fast.is_some(), "{text}");
            assert_eq!(fast, general(text), "{text}");
        }
        // Not the stored form: left to the general parser (or refused).
        for text in [
            "2023-02-29 12:00:00",
            "2026-11-25 24:00:00",
            "2026-11-25 09:05:07.",
            "2026-11-25 09:05:07.1234567",
            "2026-11-25T09:05:07",
            "2026-11-25 09:05:07+03:00",
            "2026-1-25 09:05:07",
            "2026-11-25 09:05:0x",
            "+026-11-25 09:05:07",
        ] {
            assert_eq!(
                DjangoDateTime::parse_stored(text.as_bytes()),
                None,
                "{text}"
            );
        }
    }
}
