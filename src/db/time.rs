//! Datetimes stored the way Django stores them with `USE_TZ = True`: a naive
//! UTC text `YYYY-MM-DD HH:MM:SS[.ffffff]` on SQLite (Python's `str()` of the
//! datetime), `timestamp with time zone` on PostgreSQL.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
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
}

/// From SQLite's text, for the read path (`db::read`).
impl<'de> serde::Deserialize<'de> for DjangoDateTime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        DjangoDateTime::parse_sqlite_text(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a Django datetime: {text:?}")))
    }
}

/// A boolean column as SQLite stores it (0 or 1), for the read path: serde's
/// own bool refuses an integer once a row is buffered (`serde(flatten)`).
pub fn sqlite_bool<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a boolean or 0/1")
        }
        fn visit_bool<E>(self, value: bool) -> Result<bool, E> {
            Ok(value)
        }
        fn visit_i64<E>(self, value: i64) -> Result<bool, E> {
            Ok(value != 0)
        }
        fn visit_u64<E>(self, value: u64) -> Result<bool, E> {
            Ok(value != 0)
        }
    }
    deserializer.deserialize_any(Visitor)
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
}
