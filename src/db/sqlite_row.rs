//! A rusqlite row as serde sees it, for the SQLite read path (`db::read`):
//! a struct takes its fields from the columns of the same names, a tuple
//! takes the columns in order.
//!
//! Values are read in place: text is lent to the field (a `String` copies it
//! once, a datetime parses it where it lies), and a column no field names is
//! never read at all. A general-purpose mapper that copied every value into
//! an owned one first cost more than SQLite's own work on the product list.

use rusqlite::types::ValueRef;
use rusqlite::Row;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;

/// Why a row did not fit the type asked for.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("{0}")]
    Mismatch(String),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

impl de::Error for RowError {
    fn custom<T: std::fmt::Display>(message: T) -> Self {
        RowError::Mismatch(message.to_string())
    }
}

/// The row as a `T`; `columns` are the statement's column names.
pub fn from_row<T: DeserializeOwned>(row: &Row<'_>, columns: &[String]) -> Result<T, RowError> {
    T::deserialize(RowDeserializer { row, columns })
}

struct RowDeserializer<'a, 'stmt> {
    row: &'a Row<'stmt>,
    columns: &'a [String],
}

impl<'de> de::Deserializer<'de> for RowDeserializer<'de, '_> {
    type Error = RowError;

    /// A lone value (not a struct or tuple) is the first column.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        Column::new(self.row, 0).deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, RowError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_map(Columns {
            row: self.row,
            columns: self.columns,
            next: 0,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, RowError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, RowError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_seq(Columns {
            row: self.row,
            columns: self.columns,
            next: 0,
        })
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct enum identifier
        ignored_any
    }
}

/// The columns one after another: as map entries (name, value) for a
/// struct, as elements for a tuple.
struct Columns<'a, 'stmt> {
    row: &'a Row<'stmt>,
    columns: &'a [String],
    next: usize,
}

impl<'de> MapAccess<'de> for Columns<'de, '_> {
    type Error = RowError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, RowError> {
        let Some(name) = self.columns.get(self.next) else {
            return Ok(None);
        };
        seed.deserialize(de::value::BorrowedStrDeserializer::new(name))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, RowError> {
        let index = self.next;
        self.next += 1;
        seed.deserialize(Column::new(self.row, index))
            .map_err(|e| RowError::Mismatch(format!("column {}: {e}", self.columns[index])))
    }
}

impl<'de> SeqAccess<'de> for Columns<'de, '_> {
    type Error = RowError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, RowError> {
        if self.next >= self.columns.len() {
            return Ok(None);
        }
        let index = self.next;
        self.next += 1;
        seed.deserialize(Column::new(self.row, index)).map(Some)
    }
}

/// One value of the row, borrowed from SQLite until the next step; read
/// only when a field asks for it.
struct Column<'de, 'stmt> {
    row: &'de Row<'stmt>,
    index: usize,
}

impl<'de, 'stmt> Column<'de, 'stmt> {
    fn new(row: &'de Row<'stmt>, index: usize) -> Column<'de, 'stmt> {
        Column { row, index }
    }

    fn value(&self) -> Result<ValueRef<'de>, RowError> {
        Ok(self.row.get_ref(self.index)?)
    }
}

impl<'de> de::Deserializer<'de> for Column<'de, '_> {
    type Error = RowError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        match self.value()? {
            ValueRef::Null => visitor.visit_none(),
            ValueRef::Integer(n) => visitor.visit_i64(n),
            ValueRef::Real(x) => visitor.visit_f64(x),
            ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => visitor.visit_borrowed_str(text),
                Err(e) => Err(RowError::Mismatch(format!("text that is not UTF-8: {e}"))),
            },
            ValueRef::Blob(bytes) => visitor.visit_borrowed_bytes(bytes),
        }
    }

    /// SQLite keeps booleans as 0 and 1.
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        match self.value()? {
            ValueRef::Integer(n) => visitor.visit_bool(n != 0),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        match self.value()? {
            ValueRef::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    /// A column no field names: skipped unread.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple tuple_struct
        map struct enum identifier
    }
}
