//! One body of SQL for a write transaction, two ways to run it: through
//! sqlx ([`WriteTx`], PostgreSQL and in-memory SQLite), or whole on the
//! SQLite writer thread ([`super::sqlite_writer`]), where a statement is a
//! function call instead of a hand-off between threads.
//!
//! A transaction is a [`WriteOp`]: its `run` is generic over [`Exec`], and
//! both executors run the same code. Statements name their parameters
//! `$1`, `$2`, ... in both.

use sqlx::Row;

use super::StoreError;
use super::db::WriteTx;
use super::dialect::Dialect;

/// A statement's parameter.
#[derive(Debug, Clone, Copy)]
pub(super) enum Param<'a> {
    Text(&'a str),
    Int(i64),
    NullText,
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(s: &'a str) -> Self {
        Param::Text(s)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(s: &'a String) -> Self {
        Param::Text(s)
    }
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}

impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(v: Option<&'a str>) -> Self {
        v.map_or(Param::NullText, Param::Text)
    }
}

/// A value of a result column, read from either executor's rows.
pub(super) trait Column: Sized {
    fn from_any(row: &sqlx::any::AnyRow, i: usize) -> Result<Self, StoreError>;
    fn from_lite(row: &rusqlite::Row<'_>, i: usize) -> Result<Self, StoreError>;
}

impl Column for String {
    fn from_any(row: &sqlx::any::AnyRow, i: usize) -> Result<Self, StoreError> {
        Ok(row.try_get(i)?)
    }
    fn from_lite(row: &rusqlite::Row<'_>, i: usize) -> Result<Self, StoreError> {
        Ok(row.get(i)?)
    }
}

impl Column for i64 {
    fn from_any(row: &sqlx::any::AnyRow, i: usize) -> Result<Self, StoreError> {
        Ok(row.try_get(i)?)
    }
    fn from_lite(row: &rusqlite::Row<'_>, i: usize) -> Result<Self, StoreError> {
        Ok(row.get(i)?)
    }
}

impl<T: Column> Column for Option<T> {
    fn from_any(row: &sqlx::any::AnyRow, i: usize) -> Result<Self, StoreError> {
        use sqlx::ValueRef;
        if row.try_get_raw(i)?.is_null() {
            return Ok(None);
        }
        T::from_any(row, i).map(Some)
    }
    fn from_lite(row: &rusqlite::Row<'_>, i: usize) -> Result<Self, StoreError> {
        if row.get_ref(i)? == rusqlite::types::ValueRef::Null {
            return Ok(None);
        }
        T::from_lite(row, i).map(Some)
    }
}

/// A result row as a tuple of columns.
pub(super) trait Tuple: Sized {
    fn from_any(row: &sqlx::any::AnyRow) -> Result<Self, StoreError>;
    fn from_lite(row: &rusqlite::Row<'_>) -> Result<Self, StoreError>;
}

/// `Tuple` for a tuple of `Column`s, reading column i into element i.
macro_rules! tuple {
    ($($t:ident $i:tt),+) => {
        impl<$($t: Column),+> Tuple for ($($t,)+) {
            fn from_any(row: &sqlx::any::AnyRow) -> Result<Self, StoreError> {
                Ok(($($t::from_any(row, $i)?,)+))
            }
            fn from_lite(row: &rusqlite::Row<'_>) -> Result<Self, StoreError> {
                Ok(($($t::from_lite(row, $i)?,)+))
            }
        }
    };
}
tuple!(A 0);
tuple!(A 0, B 1);
tuple!(A 0, B 1, C 2, D 3, E 4);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);

/// Runs statements inside a write transaction.
pub(super) trait Exec {
    /// The dialect the statements are written in.
    fn dialect(&self) -> Dialect;
    /// Every row the statement returns.
    async fn rows<T: Tuple>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<T>, StoreError>;
    /// How many rows the statement changed.
    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError>;
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    params: &[Param<'q>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for p in params {
        query = match *p {
            Param::Text(s) => query.bind(s),
            Param::Int(v) => query.bind(v),
            Param::NullText => query.bind(None::<String>),
        };
    }
    query
}

impl Exec for WriteTx {
    fn dialect(&self) -> Dialect {
        self.dialect
    }

    async fn rows<T: Tuple>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<T>, StoreError> {
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), params)
            .fetch_all(&mut **self)
            .await?;
        rows.iter().map(T::from_any).collect()
    }

    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        let done = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), params)
            .execute(&mut **self)
            .await?;
        Ok(done.rows_affected())
    }
}

/// A write transaction as a value: what it needs, owned, so that it can be
/// sent to the SQLite writer thread, and its statements, generic over the
/// executor.
pub(super) trait WriteOp: Send + 'static {
    type Output: Send + 'static;
    async fn run<E: Exec>(self, exec: &mut E) -> Result<Self::Output, StoreError>;
}
