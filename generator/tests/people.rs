//! The MySQL side of Grafana as rendered, in every MySQL mode: each project's Grafana gets a
//! read-only MySQL datasource whose credentials are references to a Secret, the "People and
//! backlog" dashboard reads only the project's repositories and leaves out `bots:`, and one
//! grants Job (with the SQL velogen generates) keeps the account. Running that SQL against
//! MariaDB is runtime/tests/people.rs.

#[path = "support/validators.rs"]
mod validators;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn render_text(config: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_velogen"))
        .args(["render", "-c"])
        .arg(config)
        .current_dir(root())
        .output()
        .expect("velogen runs");
    assert!(
        out.status.success(),
        "{}: {}",
        config.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn render(config: &Path) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(&render_text(config))
        .expect("YAML")
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, text).expect("config");
    (dir, path)
}

fn find<'a>(docs: &'a [Value], kind: &str, name: impl Fn(&str) -> bool) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| d["kind"] == kind && name(d["metadata"]["name"].as_str().unwrap_or("")))
        .collect()
}

fn env<'a>(container: &'a Value, name: &str) -> &'a Value {
    container["env"]
        .as_array()
        .and_then(|e| e.iter().find(|v| v["name"] == name))
        .unwrap_or_else(|| panic!("no env {name} in {container}"))
}

fn secret_ref(container: &Value, name: &str) -> (String, String) {
    let e = env(container, name);
    assert!(e.get("value").is_none(), "{name} has a literal value");
    let r = &e["valueFrom"]["secretKeyRef"];
    (
        r["name"].as_str().expect("secret name").to_owned(),
        r["key"].as_str().expect("secret key").to_owned(),
    )
}

/// Expected MySQL wiring of one golden case: host:port, database, the Grafana Secret, and
/// the Secret and key the grants Job reads the admin password from (with the admin user:
/// a literal `root`, or a Secret key).
struct Case {
    config: &'static str,
    url: &'static str,
    database: &'static str,
    grafana_secret: &'static str,
    admin_password: (&'static str, &'static str),
    admin_user_secret: Option<&'static str>,
}

const CASES: [Case; 3] = [
    Case {
        config: "config.yaml",
        url: "mysql:3306",
        database: "github",
        grafana_secret: "velodrome-mysql-grafana",
        admin_password: ("velodrome-mysql", "root-password"),
        admin_user_secret: None,
    },
    Case {
        config: "tests/golden/cloudsql/config.yaml",
        url: "cloudsql-proxy:3306",
        database: "github",
        grafana_secret: "velodrome-mysql-grafana",
        admin_password: ("velodrome-mysql-admin", "password"),
        admin_user_secret: Some("velodrome-mysql-admin"),
    },
    Case {
        config: "tests/golden/external/config.yaml",
        url: "mysql.db.example.com:3307",
        database: "velodrome_mirror",
        grafana_secret: "mirror-reader",
        admin_password: ("mirror-admin", "password"),
        admin_user_secret: Some("mirror-admin"),
    },
];

#[test]
fn every_grafana_reads_mysql_through_the_read_only_account_in_every_mode() {
    for case in CASES {
        let path = root().join(case.config);
        let docs = render(&path);
        let valid = velogen::load(&path).expect("valid");
        let grafanas = find(&docs, "ConfigMap", |n| n.starts_with("grafana-"));
        assert_eq!(
            grafanas.len(),
            valid.config.projects.len(),
            "{}",
            case.config
        );
        for (cm, project) in grafanas.iter().zip(&valid.config.projects) {
            let datasources: Value =
                serde_saphyr::from_str(cm["data"]["datasources.yaml"].as_str().expect("text"))
                    .expect("datasources.yaml");
            let mysql: Vec<&Value> = datasources["datasources"]
                .as_array()
                .expect("list")
                .iter()
                .filter(|d| d["type"] == "mysql")
                .collect();
            assert_eq!(mysql.len(), 1, "{}: {datasources}", case.config);
            let ds = mysql[0];
            assert_eq!(ds["uid"], "velodrome-mysql");
            assert_eq!(ds["url"], case.url, "{}", case.config);
            assert_eq!(ds["jsonData"]["database"], case.database);
            assert_eq!(ds["jsonData"]["timezone"], "+00:00", "DATETIMEs are UTC");
            assert_ne!(
                ds["isDefault"], true,
                "InfluxDB stays the default datasource"
            );
            assert_eq!(ds["user"], "$GRAFANA_MYSQL_USER");
            assert_eq!(ds["secureJsonData"]["password"], "$GRAFANA_MYSQL_PASSWORD");

            // Grafana has both variables, from the read-only account's Secret.
            let name = format!("grafana-{}", project.name);
            let deployment = find(&docs, "Deployment", |n| n == name)[0];
            let grafana = &deployment["spec"]["template"]["spec"]["containers"][0];
            for (var, key) in [
                ("GRAFANA_MYSQL_USER", "user"),
                ("GRAFANA_MYSQL_PASSWORD", "password"),
            ] {
                assert_eq!(
                    secret_ref(grafana, var),
                    (case.grafana_secret.to_owned(), key.to_owned()),
                    "{}",
                    case.config
                );
            }

            // The dashboard is provisioned and mounted.
            let people: Value =
                serde_json::from_str(cm["data"]["people.json"].as_str().expect("people.json"))
                    .expect("JSON");
            assert_eq!(people["uid"], "velodrome-people");
            let mounted = deployment["spec"]["template"]["spec"]["volumes"]
                .as_array()
                .expect("volumes")
                .iter()
                .flat_map(|v| v["configMap"]["items"].as_array().into_iter().flatten())
                .any(|i| i["key"] == "people.json");
            assert!(mounted, "{}: people.json is not mounted", case.config);
        }

        // One grants Job, with the admin account of its mode and the SQL velogen generates.
        let jobs = find(&docs, "Job", |n| n.starts_with("mysql-grants-"));
        assert_eq!(jobs.len(), 1, "{}", case.config);
        let container = &jobs[0]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            env(container, "MYSQL_HOST")["value"]
                .as_str()
                .map(|h| format!(
                    "{h}:{}",
                    env(container, "MYSQL_TCP_PORT")["value"]
                        .as_str()
                        .unwrap_or("")
                )),
            Some(case.url.to_owned())
        );
        let (secret, key) = case.admin_password;
        assert_eq!(
            secret_ref(container, "MYSQL_PWD"),
            (secret.to_owned(), key.to_owned())
        );
        match case.admin_user_secret {
            Some(s) => assert_eq!(
                secret_ref(container, "MYSQL_ADMIN_USER"),
                (s.to_owned(), "user".to_owned())
            ),
            None => assert_eq!(env(container, "MYSQL_ADMIN_USER")["value"], "root"),
        }
        for (var, key) in [
            ("GRAFANA_MYSQL_USER", "user"),
            ("GRAFANA_MYSQL_PASSWORD", "password"),
        ] {
            assert_eq!(
                secret_ref(container, var),
                (case.grafana_secret.to_owned(), key.to_owned())
            );
        }
        let grants = find(&docs, "ConfigMap", |n| n == "mysql-grants")[0];
        assert_eq!(
            grants["data"]["grants.sql"],
            velogen::mirror::grant_sql(
                case.database,
                &velogen::mirror::readable_tables(velogen::mirror::REVIEWS_MIRRORED)
            )
        );
        assert!(
            grants["data"]["grants.sh"]
                .as_str()
                .is_some_and(|s| s.contains("cat \"$grants\"")),
            "the script feeds grants.sql to the client"
        );
    }
}

#[test]
fn people_queries_read_the_project_repositories_and_leave_bots_out() {
    let path = root().join("tests/golden/external/config.yaml");
    let docs = render(&path);
    let cm = find(&docs, "ConfigMap", |n| n == "grafana-web")[0];
    let people: Value =
        serde_json::from_str(cm["data"]["people.json"].as_str().expect("text")).expect("JSON");
    let mut sql_panels = 0;
    for panel in people["panels"].as_array().expect("panels") {
        // Rows, and the freshness row every dashboard ends with (InfluxDB).
        if panel["type"] == "row" || panel["datasource"]["type"] == "influxdb" {
            continue;
        }
        sql_panels += 1;
        assert_eq!(panel["datasource"]["uid"], "velodrome-mysql", "{panel}");
        let sql = panel["targets"][0]["rawSql"].as_str().expect("rawSql");
        assert!(
            sql.contains("repository IN ('web-org/docs', 'web-org/site')"),
            "{sql}"
        );
        // This config's bots, as one anchored case-insensitive alternation.
        assert!(
            sql.contains(r"NOT REGEXP '^(?i:(?:.*\\[bot\\])|(?:ci-.*))$'"),
            "{sql}"
        );
        if panel["type"] == "table" && sql.contains(" AS url") {
            let overrides = panel["fieldConfig"]["overrides"].to_string();
            assert!(overrides.contains("${__data.fields.url}"), "{overrides}");
        }
    }
    assert_eq!(sql_panels, 8);
    // Default bots, when a config names none.
    let legacy = render(&root().join("tests/golden/legacy/config.yaml"));
    let cm = find(&legacy, "ConfigMap", |n| n == "grafana-kubernetes")[0];
    let text = cm["data"]["people.json"].as_str().expect("text");
    assert!(text.contains("k8s-merge-robot"), "default bots are applied");
}

#[test]
fn no_password_is_rendered_anywhere() {
    for case in CASES {
        let text = render_text(&root().join(case.config));
        // SQL never carries a password literal: the server quotes a session variable.
        let identified: Vec<&str> = text.split("IDENTIFIED BY ").skip(1).collect();
        assert_eq!(
            identified.len(),
            2,
            "{}: CREATE USER and ALTER USER",
            case.config
        );
        for rest in identified {
            assert!(
                rest.starts_with("', QUOTE(@velodrome_grafana_password))"),
                "{}: {}",
                case.config,
                &rest[..rest.len().min(60)]
            );
        }
        for doc in render(&root().join(case.config)) {
            if doc["kind"] != "ConfigMap" {
                continue;
            }
            let Some(file) = doc["data"]["datasources.yaml"].as_str() else {
                continue;
            };
            let file: Value = serde_saphyr::from_str(file).expect("datasources.yaml");
            for ds in file["datasources"].as_array().expect("list") {
                for (key, value) in ds["secureJsonData"].as_object().into_iter().flatten() {
                    assert!(
                        value.as_str().is_some_and(|v| v.starts_with('$')),
                        "{}: secureJsonData.{key} is not a reference",
                        case.config
                    );
                }
            }
        }
    }
}

#[test]
fn the_grants_job_is_renamed_exactly_when_what_it_runs_changes() {
    let base = "projects:\n  demo:\n    repositories:\n      a/b:\n";
    let job_name = |text: &str| {
        let (_dir, path) = config(text);
        let docs = render(&path);
        find(&docs, "Job", |n| n.starts_with("mysql-grants-"))[0]["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_owned()
    };
    let first = job_name(base);
    assert_eq!(first, job_name(base), "same config, same Job");
    let more_repos = format!("{base}      c/d:\n");
    assert_eq!(
        first,
        job_name(&more_repos),
        "a project change does not touch the grants"
    );
    let other_db = format!("mysql:\n  database: mirror\n{base}");
    assert_ne!(first, job_name(&other_db), "other grants, other Job");
    let other_secret = format!("mysql:\n  grafana-secret: reader\n{base}");
    assert_ne!(first, job_name(&other_secret), "other env, other Job");
}

#[test]
fn rendered_people_dashboards_pass_the_validators() {
    // kubernetes-validate (the Job), the provisioning schema (the mysql datasource) and
    // @grafana/schema (people.json), on a mode no other test renders this way.
    let (_dir, path) = config(
        "mysql:\n  mode: external\n  host: db.internal\n  admin-secret: root-ish\nbots: []\n\
         projects:\n  solo:\n    repositories:\n      o/r:\n",
    );
    let text = render_text(&path);
    assert!(
        !text.contains("NOT REGEXP"),
        "an empty bots list filters nobody"
    );
    if let Err(errors) = validators::validate_rendered(&text) {
        panic!("{}", errors.join("\n"));
    }
}
