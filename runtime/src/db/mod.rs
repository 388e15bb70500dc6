//! The MySQL layer shared by every mode: connecting, versioned migrations, and the tables
//! the fetcher writes and the transform reads.
//!
//! Plain SQL over mysql_async, written so MySQL 8 and MariaDB 10.11 both accept it (upserts
//! use `ON DUPLICATE KEY UPDATE col = VALUES(col)`). Times are naive UTC DATETIMEs: every
//! session sets `time_zone = '+00:00'` so server-side defaults agree.

pub mod migrations;
pub mod replace;
pub mod tables;
pub mod time;

use mysql_async::prelude::Queryable;
use mysql_async::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};

pub use time::UtcTime;

/// A failure of the MySQL layer; the message never includes the password of the URL.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL could not be parsed (the URL itself is not echoed: it may hold a password).
    #[error("invalid MySQL URL: {0}")]
    Url(String),
    /// A statement or connection failed.
    #[error("MySQL: {0}")]
    Mysql(#[from] mysql_async::Error),
    /// The database was migrated by a newer binary.
    #[error("database schema is at version {found}, newer than this binary knows ({known})")]
    TooNew {
        /// Highest version recorded in `schema_migrations`.
        found: u32,
        /// Highest version this binary ships.
        known: u32,
    },
    /// Another process held the migration lock for too long.
    #[error("timed out waiting for the migration lock held by another process")]
    LockTimeout,
    /// A stored value had an unexpected shape.
    #[error("unexpected stored value: {0}")]
    Value(String),
}

/// Opens a connection pool for `url` (`mysql://user:pass@host:port/db`), with sessions in
/// UTC and at most `max_connections` connections.
///
/// The pool is lazy: call [`migrate`] (or any query) to find out whether the server answers.
pub fn connect(url: &str, max_connections: usize) -> Result<Pool, DbError> {
    let opts = Opts::from_url(url).map_err(|err| {
        // mysql_async's URL errors can quote the URL; keep only the kind of problem.
        let text = err.to_string();
        DbError::Url(text.split(':').next().unwrap_or("parse error").to_owned())
    })?;
    let max = max_connections.max(1);
    let constraints = PoolConstraints::new(0, max).unwrap_or_default();
    // No COM_RESET_CONNECTION when a connection returns to the pool: it would drop the
    // cached prepared statements and the session's time zone, costing a prepare and a
    // round trip per page (about half the ingest time). Transactions always end in commit
    // or rollback, so no session state leaks between users of a connection.
    let builder = OptsBuilder::from_opts(opts)
        .pool_opts(
            PoolOpts::default()
                .with_constraints(constraints)
                .with_reset_connection(false),
        )
        .setup(vec!["SET time_zone = '+00:00'".to_owned()]);
    Ok(Pool::new(builder))
}

/// Applies every migration the database has not seen, in order, under a server-wide lock so
/// concurrent starts (fetcher and transform) do not race. Returns the resulting version.
pub async fn migrate(pool: &Pool) -> Result<u32, DbError> {
    let mut conn = pool.get_conn().await?;
    let locked: Option<Option<i64>> = conn
        .query_first("SELECT GET_LOCK('velodrome_schema_migrations', 120)")
        .await?;
    if locked.flatten() != Some(1) {
        return Err(DbError::LockTimeout);
    }
    let result = migrate_locked(&mut conn).await;
    let _: Option<Option<i64>> = conn
        .query_first("SELECT RELEASE_LOCK('velodrome_schema_migrations')")
        .await?;
    result
}

async fn migrate_locked(conn: &mut mysql_async::Conn) -> Result<u32, DbError> {
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INT NOT NULL PRIMARY KEY,
            name VARCHAR(255) NOT NULL,
            applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    )
    .await?;
    let current: Option<Option<u32>> = conn
        .query_first("SELECT MAX(version) FROM schema_migrations")
        .await?;
    let mut current = current.flatten().unwrap_or(0);
    let known = migrations::MIGRATIONS.last().map_or(0, |m| m.version);
    if current > known {
        return Err(DbError::TooNew {
            found: current,
            known,
        });
    }
    for migration in migrations::MIGRATIONS {
        if migration.version <= current {
            continue;
        }
        for statement in migration.statements {
            conn.query_drop(*statement).await?;
        }
        conn.exec_drop(
            "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
            (migration.version, migration.name),
        )
        .await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "schema migrated"
        );
        current = migration.version;
    }
    Ok(current)
}

impl DbError {
    /// True for failures InnoDB answers by rolling the whole transaction back (deadlock,
    /// lock wait timeout): running the same transaction again is safe and usually succeeds.
    pub fn is_transient(&self) -> bool {
        matches!(self, DbError::Mysql(mysql_async::Error::Server(e)) if e.code == 1213 || e.code == 1205)
    }
}

/// Transaction options for writers: READ COMMITTED, so `INSERT ... SELECT` and upserts take
/// no gap locks and repositories syncing side by side do not deadlock each other.
pub fn write_tx() -> mysql_async::TxOpts {
    let mut opts = mysql_async::TxOpts::default();
    opts.with_isolation_level(mysql_async::IsolationLevel::ReadCommitted);
    opts
}

/// Attempts of a transaction that keeps failing transiently before the error is returned.
pub const TRANSIENT_ATTEMPTS: u32 = 5;

/// An error that may be InnoDB rolling a transaction back (see [`DbError::is_transient`]).
pub trait Transient {
    /// True when running the same transaction again may succeed.
    fn is_transient(&self) -> bool;
}

impl Transient for DbError {
    fn is_transient(&self) -> bool {
        DbError::is_transient(self)
    }
}

/// Runs `transaction` (which opens, fills and commits one transaction) again, whole, when
/// MySQL rolls it back on a deadlock or lock wait timeout, up to [`TRANSIENT_ATTEMPTS`]
/// times with a short growing pause. Every writer of the fetcher commits through here, so
/// a rollback never fails a round that one more try would finish. `what` names the
/// transaction in the warning.
pub async fn retry_transient<T, E, F, Fut>(
    repository: &str,
    what: &str,
    mut transaction: F,
) -> Result<T, E>
where
    E: Transient + std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match transaction().await {
            Err(err) if err.is_transient() && attempt < TRANSIENT_ATTEMPTS => {
                tracing::warn!(repository, attempt, error = %err, "{what} rolled back by MySQL; running it again");
                tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}
