//! Made-up subjects for tests and benchmarks (`hub dev seed`): many rows
//! fast, straight into the store, without webhooks. Each chunk is one
//! multi-row `INSERT ... SELECT` over a generated number series.

use super::{SqlStore, StoreError, now_ms};

/// The source seeded subjects come from; their external ids are `seed-N`.
pub const SEED_SOURCE: &str = "seed";

/// Subjects per statement: big enough that statements are few, small
/// enough that one transaction holds the SQLite writer only briefly.
const CHUNK: u64 = 20_000;

/// Creates subjects `seed-1` .. `seed-N` (those missing); returns how many
/// were created. Their hub ids are UUID-shaped and sort by N.
pub(super) async fn subjects(store: &SqlStore, count: u64) -> Result<u64, StoreError> {
    let d = store.dialect;
    let now = now_ms();
    let number = d.zero_padded("n", 12);
    let sql = format!(
        "WITH RECURSIVE series (n) AS (SELECT $1 UNION ALL SELECT n + 1 FROM series WHERE n < $2) \
         INSERT INTO subjects (id, source, external_id, user_name, primary_email, profile, version, \
         last_occurred_at, deleted_at, created_at, updated_at) \
         SELECT '00000000-0000-4000-8000-' || {number}, '{SEED_SOURCE}', 'seed-' || CAST(n AS TEXT), \
         'seed-' || CAST(n AS TEXT), NULL, \
         '{{\"userName\":\"seed-' || CAST(n AS TEXT) || '\",\"active\":true}}', 1, $3, NULL, $3, $3 \
         FROM series WHERE true ON CONFLICT DO NOTHING"
    );
    let mut created = 0;
    let mut first = 1;
    while first <= count {
        let last = (first + CHUNK - 1).min(count);
        let mut tx = store.begin_write().await?;
        let r = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(first as i64)
            .bind(last as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        created += r.rows_affected();
        first = last + 1;
    }
    Ok(created)
}
