//! Versioned schema migrations, applied in order at start-up.
//!
//! Each entry is applied once and recorded in `schema_migrations`; an applied migration is
//! never edited, a change of schema is a new entry. Every statement is valid on both MySQL 8
//! and MariaDB 10.11 (no `AS new` upsert alias, no MySQL-only collations).

/// One schema version: its number, a short name, and the statements that build it.
pub struct Migration {
    /// Strictly increasing version number, stored in `schema_migrations.version`.
    pub version: u32,
    /// What the version adds, for operators reading `schema_migrations`.
    pub name: &'static str,
    /// Statements run in order; DDL is not transactional in MySQL, so each one is written
    /// to be re-runnable (`IF NOT EXISTS`) in case a crash interrupts a migration.
    pub statements: &'static [&'static str],
}

/// `ALTER TABLE` statements run only when `table` lacks `column`: MySQL 8 has no
/// `ADD COLUMN IF NOT EXISTS`, and a crash between an ALTER and its migration record must
/// not make the next start fail. One ALTER per table is atomic in InnoDB, so the column
/// stands for the whole statement.
macro_rules! alter_unless_column {
    ($table:literal, $column:literal, $alter:literal) => {
        [
            concat!(
                "SET @velodrome_ddl = IF((SELECT COUNT(*) FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = '",
                $table,
                "' AND column_name = '",
                $column,
                "') = 0, '",
                $alter,
                "', 'DO 0')"
            ),
            "PREPARE velodrome_ddl FROM @velodrome_ddl",
            "EXECUTE velodrome_ddl",
            "DEALLOCATE PREPARE velodrome_ddl",
        ]
    };
}

/// Statements that add index `$index` on `$columns` to `$table` unless it has one of that
/// name: MySQL 8 has no `ADD INDEX IF NOT EXISTS`, and a crash between the ALTER and the
/// migration's record must not make the next start fail.
macro_rules! add_key_unless_present {
    ($table:literal, $index:literal, $columns:literal) => {
        [
            concat!(
                "SET @velodrome_ddl = IF((SELECT COUNT(*) FROM information_schema.statistics \
                 WHERE table_schema = DATABASE() AND table_name = '",
                $table,
                "' AND index_name = '",
                $index,
                "') = 0, 'ALTER TABLE ",
                $table,
                " ADD KEY ",
                $index,
                " ",
                $columns,
                "', 'DO 0')"
            ),
            "PREPARE velodrome_ddl FROM @velodrome_ddl",
            "EXECUTE velodrome_ddl",
            "DEALLOCATE PREPARE velodrome_ddl",
        ]
    };
}

const ISSUES_NODE_ID: [&str; 4] = alter_unless_column!(
    "issues",
    "node_id",
    "ALTER TABLE issues ADD COLUMN node_id VARCHAR(128) NULL"
);
const EVENTS_NODE_ID: [&str; 4] = alter_unless_column!(
    "issue_events",
    "node_id",
    "ALTER TABLE issue_events ADD COLUMN node_id VARCHAR(128) NULL, \
     ADD UNIQUE KEY events_repo_node (repository, node_id)"
);
const BACKFILL_CURSOR: [&str; 4] = alter_unless_column!(
    "sync_event_backfill",
    "timeline_after",
    "ALTER TABLE sync_event_backfill ADD COLUMN timeline_after VARCHAR(255) NULL"
);

/// Migration 2 in order: the three guarded ALTERs, then the new tables.
const V2: [&str; 14] = [
    ISSUES_NODE_ID[0],
    ISSUES_NODE_ID[1],
    ISSUES_NODE_ID[2],
    ISSUES_NODE_ID[3],
    EVENTS_NODE_ID[0],
    EVENTS_NODE_ID[1],
    EVENTS_NODE_ID[2],
    EVENTS_NODE_ID[3],
    BACKFILL_CURSOR[0],
    BACKFILL_CURSOR[1],
    BACKFILL_CURSOR[2],
    BACKFILL_CURSOR[3],
    // Submitted pull-request reviews. id: the review's database id (REST `id`, GraphQL
    // `fullDatabaseId`); issue_id: the pull request NUMBER; state as GitHub spells it
    // (APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED); user '' when the author is gone.
    "CREATE TABLE IF NOT EXISTS reviews (
        repository VARCHAR(255) NOT NULL,
        id BIGINT NOT NULL,
        node_id VARCHAR(128) NOT NULL,
        issue_id BIGINT NOT NULL,
        user VARCHAR(255) NOT NULL,
        state VARCHAR(32) NOT NULL,
        submitted_at DATETIME NULL,
        body MEDIUMTEXT NOT NULL,
        PRIMARY KEY (repository, id),
        KEY reviews_repo_submitted (repository, submitted_at),
        KEY reviews_repo_issue (repository, issue_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    // Pull requests whose reviews must be read (the issues walk saw them change);
    // after_cursor resumes a pull request with more than one page of reviews.
    "CREATE TABLE IF NOT EXISTS sync_review_queue (
        repository VARCHAR(255) NOT NULL,
        issue_id BIGINT NOT NULL,
        after_cursor VARCHAR(255) NULL,
        PRIMARY KEY (repository, issue_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
];

/// Mergers and first merges read one event type over a time range (or all time):
/// without `event` in the key, that is every event of the repository.
const EVENTS_BY_TYPE: [&str; 4] = add_key_unless_present!(
    "issue_events",
    "events_repo_event_created",
    "(repository, event, event_created_at)"
);
/// Pull requests (or issues) opened in a time range.
const ISSUES_BY_KIND: [&str; 4] = add_key_unless_present!(
    "issues",
    "issues_repo_pr_created",
    "(repository, is_pr, issue_created_at)"
);
/// The oldest open pull requests (or issues): only the open ones are read, oldest first.
const ISSUES_BY_STATE: [&str; 4] = add_key_unless_present!(
    "issues",
    "issues_repo_state_pr_created",
    "(repository, state, is_pr, issue_created_at)"
);

/// Migration 3 in order. (Version 2 is the fetcher's reviews migration.)
const V3: [&str; 12] = [
    EVENTS_BY_TYPE[0],
    EVENTS_BY_TYPE[1],
    EVENTS_BY_TYPE[2],
    EVENTS_BY_TYPE[3],
    ISSUES_BY_KIND[0],
    ISSUES_BY_KIND[1],
    ISSUES_BY_KIND[2],
    ISSUES_BY_KIND[3],
    ISSUES_BY_STATE[0],
    ISSUES_BY_STATE[1],
    ISSUES_BY_STATE[2],
    ISSUES_BY_STATE[3],
];

const ISSUES_USER_TYPE: [&str; 4] = alter_unless_column!(
    "issues",
    "user_type",
    "ALTER TABLE issues ADD COLUMN user_type VARCHAR(32) NULL"
);
const COMMENTS_USER_TYPE: [&str; 4] = alter_unless_column!(
    "comments",
    "user_type",
    "ALTER TABLE comments ADD COLUMN user_type VARCHAR(32) NULL"
);
const EVENTS_ACTOR_TYPE: [&str; 4] = alter_unless_column!(
    "issue_events",
    "actor_type",
    "ALTER TABLE issue_events ADD COLUMN actor_type VARCHAR(32) NULL"
);
const REVIEWS_USER_TYPE: [&str; 4] = alter_unless_column!(
    "reviews",
    "user_type",
    "ALTER TABLE reviews ADD COLUMN user_type VARCHAR(32) NULL"
);

/// The reconciliation migration in order: the four guarded ALTERs (author types, NULL when
/// unknown), then the removals log and the sweep's own state.
const RECONCILE: [&str; 20] = [
    ISSUES_USER_TYPE[0],
    ISSUES_USER_TYPE[1],
    ISSUES_USER_TYPE[2],
    ISSUES_USER_TYPE[3],
    COMMENTS_USER_TYPE[0],
    COMMENTS_USER_TYPE[1],
    COMMENTS_USER_TYPE[2],
    COMMENTS_USER_TYPE[3],
    EVENTS_ACTOR_TYPE[0],
    EVENTS_ACTOR_TYPE[1],
    EVENTS_ACTOR_TYPE[2],
    EVENTS_ACTOR_TYPE[3],
    REVIEWS_USER_TYPE[0],
    REVIEWS_USER_TYPE[1],
    REVIEWS_USER_TYPE[2],
    REVIEWS_USER_TYPE[3],
    // Every change of presence the sweep makes to an issue's rows (a removal, or rows a
    // walk never stored), written in the transaction that makes it: first_at is the
    // earliest time among those rows, from which the transform rewrites its points.
    "CREATE TABLE IF NOT EXISTS sync_removals (
        id BIGINT NOT NULL AUTO_INCREMENT,
        repository VARCHAR(255) NOT NULL,
        issue_id BIGINT NOT NULL,
        reason VARCHAR(255) NOT NULL,
        first_at DATETIME NULL,
        rows_removed INT NOT NULL,
        rows_added INT NOT NULL,
        logged_at DATETIME NOT NULL,
        PRIMARY KEY (id),
        KEY removals_repo (repository, id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    // One reconciliation sweep per repository: its phase (issues, pulls, unlisted, reread,
    // done), the GraphQL cursor of the list being read, the issues walk's mark when it
    // started, and when it started and last finished.
    "CREATE TABLE IF NOT EXISTS sync_sweeps (
        repository VARCHAR(255) NOT NULL,
        phase VARCHAR(16) NOT NULL,
        after_cursor VARCHAR(255) NULL,
        mark_at DATETIME NULL,
        started_at DATETIME NULL,
        finished_at DATETIME NULL,
        PRIMARY KEY (repository)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    // What the sweep in progress has seen: every issue GitHub listed (listed = true), every
    // stored issue it did not list, why an issue must be read again (NULL: it agrees), and
    // GitHub's counts of it (census: "updated|comments|events|reviews|review comments").
    "CREATE TABLE IF NOT EXISTS sync_sweep_items (
        repository VARCHAR(255) NOT NULL,
        issue_id BIGINT NOT NULL,
        is_pr BOOL NOT NULL,
        listed BOOL NOT NULL,
        reason VARCHAR(255) NULL,
        census VARCHAR(96) NULL,
        PRIMARY KEY (repository, issue_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    // Issues a sweep read whole: GitHub's counts then and MySQL's after the replacement.
    // Where GitHub's two APIs disagree on a count, the next sweep finds both unchanged and
    // does not read the issue again.
    "CREATE TABLE IF NOT EXISTS sync_reconciled (
        repository VARCHAR(255) NOT NULL,
        issue_id BIGINT NOT NULL,
        census VARCHAR(96) NOT NULL,
        stored VARCHAR(96) NOT NULL,
        PRIMARY KEY (repository, issue_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
];

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "original tables with integer ids, plus fetcher sync state",
        statements: &[
            // One row per issue or pull request; id is the issue NUMBER.
            "CREATE TABLE IF NOT EXISTS issues (
            repository VARCHAR(255) NOT NULL,
            id BIGINT NOT NULL,
            title TEXT NOT NULL,
            body MEDIUMTEXT NOT NULL,
            user VARCHAR(255) NOT NULL,
            state VARCHAR(16) NOT NULL,
            comments INT NOT NULL,
            is_pr BOOL NOT NULL,
            issue_closed_at DATETIME NULL,
            issue_created_at DATETIME NOT NULL,
            issue_updated_at DATETIME NOT NULL,
            PRIMARY KEY (repository, id),
            KEY issues_repo_updated (repository, issue_updated_at)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            // Every issue event, all types kept; issue_id is the issue NUMBER.
            "CREATE TABLE IF NOT EXISTS issue_events (
            repository VARCHAR(255) NOT NULL,
            id BIGINT NOT NULL,
            issue_id BIGINT NOT NULL,
            event VARCHAR(64) NOT NULL,
            label VARCHAR(255) NULL,
            actor VARCHAR(255) NULL,
            assignee VARCHAR(255) NULL,
            event_created_at DATETIME NOT NULL,
            PRIMARY KEY (repository, id),
            KEY repo_created (repository, event_created_at),
            KEY events_repo_issue (repository, issue_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            // Issue comments (pull_request = false) and review comments (pull_request = true):
            // two id spaces on GitHub, so the flag is part of the key.
            "CREATE TABLE IF NOT EXISTS comments (
            repository VARCHAR(255) NOT NULL,
            id BIGINT NOT NULL,
            pull_request BOOL NOT NULL,
            issue_id BIGINT NOT NULL,
            body MEDIUMTEXT NOT NULL,
            user VARCHAR(255) NOT NULL,
            comment_created_at DATETIME NOT NULL,
            comment_updated_at DATETIME NOT NULL,
            PRIMARY KEY (repository, id, pull_request),
            KEY repo_comment_created (repository, comment_created_at),
            KEY comments_repo_issue (repository, issue_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            // Current label set of each issue, replaced on every update of the issue.
            "CREATE TABLE IF NOT EXISTS labels (
            repository VARCHAR(255) NOT NULL,
            issue_id BIGINT NOT NULL,
            name VARCHAR(255) NOT NULL,
            PRIMARY KEY (repository, issue_id, name)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            // Current assignee set of each issue, replaced on every update of the issue.
            "CREATE TABLE IF NOT EXISTS assignees (
            repository VARCHAR(255) NOT NULL,
            issue_id BIGINT NOT NULL,
            name VARCHAR(255) NOT NULL,
            PRIMARY KEY (repository, issue_id, name)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            // Per repository and endpoint: where the next poll starts and the ETag to send.
            // since_at: `since` watermark (list endpoints sorted by updated ascending).
            // next_url: page to resume from (events feed walks newest first).
            // mark_id / mark_at: newest event already fully covered by the events feed.
            // walk_top_id / walk_top_at: newest event of the walk in progress.
            "CREATE TABLE IF NOT EXISTS sync_cursors (
            repository VARCHAR(255) NOT NULL,
            endpoint VARCHAR(32) NOT NULL,
            since_at DATETIME NULL,
            etag VARCHAR(255) NULL,
            next_url TEXT NULL,
            mark_id BIGINT NULL,
            mark_at DATETIME NULL,
            walk_top_id BIGINT NULL,
            walk_top_at DATETIME NULL,
            updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
            PRIMARY KEY (repository, endpoint)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            // Issues whose events the repository-wide feed cannot reach (it only goes back so
            // far), so their per-issue event pages must be read; a row goes when its last page
            // is committed. next_url resumes a partly read issue.
            "CREATE TABLE IF NOT EXISTS sync_event_backfill (
            repository VARCHAR(255) NOT NULL,
            issue_id BIGINT NOT NULL,
            next_url TEXT NULL,
            PRIMARY KEY (repository, issue_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        ],
    },
    Migration {
        version: 2,
        name: "node ids of issues and events, pull-request reviews, GraphQL timeline cursors",
        statements: &V2,
    },
    Migration {
        version: 3,
        name: "indexes for the people and backlog dashboard",
        statements: &V3,
    },
    Migration {
        version: 4,
        name: "reconciliation: author types, removals log, sweep state",
        statements: &RECONCILE,
    },
];
