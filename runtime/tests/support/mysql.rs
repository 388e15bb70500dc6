//! A fresh MariaDB/MySQL database per test, on the server named by VELODROME_TEST_MYSQL_URL.

use mysql_async::prelude::Queryable;

/// True when CI demands every service: a missing one is then a failure, not a skip.
pub fn services_required() -> bool {
    std::env::var("VELODROME_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The server URL without a database path or query.
fn server_url() -> String {
    let url = std::env::var("VELODROME_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    match url[authority_start..].find(['/', '?']) {
        Some(i) => url[..authority_start + i].to_owned(),
        None => url,
    }
}

/// Creates (dropping any leftover) a database named `vt_<name>` (prefix from
/// `VELODROME_TEST_DB_PREFIX`) and returns its URL, or
/// `None` when no server answers and services are not required.
pub async fn fresh_database(name: &str) -> Option<String> {
    let server = server_url();
    let pool = mysql_async::Pool::new(server.as_str());
    let mut conn = match pool.get_conn().await {
        Ok(conn) => conn,
        Err(err) => {
            if services_required() {
                panic!(
                    "MySQL at {server} is required (VELODROME_REQUIRE_SERVICES=1) but unreachable: {err}"
                );
            }
            eprintln!("skipping: no MySQL at {server}: {err}");
            return None;
        }
    };
    // VELODROME_TEST_DB_PREFIX keeps two checkouts testing on one server apart.
    let prefix = std::env::var("VELODROME_TEST_DB_PREFIX").unwrap_or_else(|_| "vt_".to_owned());
    let db = format!(
        "{prefix}{}",
        name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    );
    conn.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
        .await
        .expect("drop test database");
    conn.query_drop(format!(
        "CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    ))
    .await
    .expect("create test database");
    drop(conn);
    pool.disconnect().await.ok();
    Some(format!("{server}/{db}"))
}
