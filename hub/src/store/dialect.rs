//! The few places where SQLite and PostgreSQL need different SQL. Everything
//! else in the store is one statement for both: `$1` placeholders, `ON
//! CONFLICT`, `RETURNING` and text/bigint columns mean the same on each.

/// Which database a [`super::SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A column of rows unpacked from a JSON array parameter: name and SQL type.
pub type JsonColumn<'a> = (&'a str, &'a str);

impl Dialect {
    pub fn from_url(url: &str) -> Option<Dialect> {
        if url.starts_with("sqlite:") {
            Some(Dialect::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Dialect::Postgres)
        } else {
            None
        }
    }

    /// A row source over the JSON array of objects bound as `$n`, one column
    /// per key: `json_each` on SQLite, typed `jsonb_to_recordset` on
    /// PostgreSQL. Batch statements take one such parameter, whatever the
    /// batch size.
    pub fn json_rows(self, n: usize, columns: &[JsonColumn]) -> String {
        match self {
            Dialect::Sqlite => {
                let cols: Vec<String> = columns
                    .iter()
                    .map(|(name, _)| format!("value ->> '{name}' AS {name}"))
                    .collect();
                format!("SELECT {} FROM json_each(${n})", cols.join(", "))
            }
            Dialect::Postgres => {
                let cols: Vec<String> = columns.iter().map(|(n, t)| format!("{n} {t}")).collect();
                format!(
                    "SELECT * FROM jsonb_to_recordset(${n}::jsonb) AS r({})",
                    cols.join(", ")
                )
            }
        }
    }

    /// The strings of the JSON array of strings bound as `$n`, for `IN (...)`.
    pub fn json_strings(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("SELECT value FROM json_each(${n})"),
            Dialect::Postgres => format!("SELECT jsonb_array_elements_text(${n}::jsonb)"),
        }
    }

    /// Appended to a `SELECT` that picks rows to update, so that concurrent
    /// hubs on PostgreSQL take different rows instead of waiting on each
    /// other. SQLite has one writer at a time and needs nothing.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// Appended to a `SELECT` of rows the transaction will rewrite (`FOR
    /// UPDATE OF alias` on PostgreSQL).
    pub fn lock_for_update(self, alias: &str) -> String {
        match self {
            Dialect::Sqlite => String::new(),
            Dialect::Postgres => format!(" FOR UPDATE OF {alias}"),
        }
    }

    /// The larger / smaller of two values: scalar `max`/`min` on SQLite.
    pub fn greatest(self) -> &'static str {
        match self {
            Dialect::Sqlite => "max",
            Dialect::Postgres => "GREATEST",
        }
    }

    pub fn least(self) -> &'static str {
        match self {
            Dialect::Sqlite => "min",
            Dialect::Postgres => "LEAST",
        }
    }

    /// The database's clock in Unix milliseconds. Leases and shared rate
    /// limits use it, so that hosts whose clocks differ still agree.
    /// Stable within one statement (SQLite's 'now' is per step; PostgreSQL's
    /// `statement_timestamp()` per statement), so a statement may use it twice.
    pub fn now_ms(self) -> &'static str {
        match self {
            Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// The database's clock in Unix microseconds, for the shared rate limit.
    pub fn now_us(self) -> &'static str {
        match self {
            Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
            Dialect::Postgres => {
                "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000 AS BIGINT)"
            }
        }
    }
}

impl Dialect {
    /// Refreshes the planner's statistics of `table` (PostgreSQL only). A
    /// walk over a table that was just bulk-loaded, before autovacuum has
    /// analyzed it, is otherwise planned on stale counts: PostgreSQL then
    /// scans a million rows per batch through a partial index instead of
    /// reading a thousand in key order (285 ms instead of 0.3 ms a batch).
    /// SQLite plans these walks on the primary key without statistics.
    pub fn analyze(self, table: &str) -> Option<String> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some(format!("ANALYZE {table}")),
        }
    }

    /// The integer `expr` as decimal text, zero-padded to `width` digits.
    pub fn zero_padded(self, expr: &str, width: usize) -> String {
        match self {
            Dialect::Sqlite => format!("printf('%0{width}d', {expr})"),
            Dialect::Postgres => format!("lpad(CAST({expr} AS TEXT), {width}, '0')"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_rows_name_every_column() {
        let cols = [("id", "text"), ("n", "bigint")];
        assert_eq!(
            Dialect::Sqlite.json_rows(1, &cols),
            "SELECT value ->> 'id' AS id, value ->> 'n' AS n FROM json_each($1)"
        );
        assert_eq!(
            Dialect::Postgres.json_rows(2, &cols),
            "SELECT * FROM jsonb_to_recordset($2::jsonb) AS r(id text, n bigint)"
        );
    }

    #[test]
    fn urls_pick_the_dialect() {
        assert_eq!(Dialect::from_url("sqlite://x.db"), Some(Dialect::Sqlite));
        assert_eq!(
            Dialect::from_url("postgresql://h/db"),
            Some(Dialect::Postgres)
        );
        assert_eq!(Dialect::from_url("mysql://h/db"), None);
    }
}
