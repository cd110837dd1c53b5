//! The remote operator CLI and `GET /metrics`: the real `tenantry` binary
//! against a real server, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, ROOT_KEY, TestDb, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;

on_both_backends!(
    tour_of_every_resource,
    exit_codes_and_problem_lines,
    tenant_keys_reach_only_their_tenant,
    profiles_keep_keys_private,
    reveal_needs_confirmation,
    completions_and_help,
    metrics_pass_promtool_and_move,
    metrics_public_and_tenant_labels,
    identity_members_conversations_and_resolve,
    members_and_conversations_stay_in_their_tenant,
    key_on_the_command_line_is_warned_about,
);

/// What one CLI run gave back.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }

    /// A failed run: this exit code, and `error: <code>: …` on stderr.
    #[track_caller]
    fn problem(&self, exit: i32, code: &str) -> &Self {
        assert_eq!(self.code, exit, "{self:?}");
        assert!(
            self.stderr.starts_with(&format!("error: {code}: ")),
            "{code}: {self:?}"
        );
        self
    }

    #[track_caller]
    fn json(&self) -> Value {
        self.ok();
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs the binary with a clean environment: only these variables (and a
/// private configuration directory).
async fn tenantry(
    config_dir: &Path,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: Option<&str>,
) -> Run {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenantry"));
    cmd.env_clear();
    for var in ["PATH", "HOME", "TMPDIR"] {
        if let Ok(value) = std::env::var(var) {
            cmd.env(var, value);
        }
    }
    cmd.env("TENANTRY_CONFIG_DIR", config_dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn tenantry");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        // A command that refuses before reading its input may have exited
        // already: a closed pipe is its answer, judged by the exit code.
        if let Err(err) = input.write_all(text.as_bytes()).await {
            assert_eq!(
                err.kind(),
                std::io::ErrorKind::BrokenPipe,
                "write stdin: {err}"
            );
        }
    }
    drop(input);
    let out = child.wait_with_output().await.expect("run tenantry");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A CLI pointed at one server with one key.
struct Cli {
    dir: tempfile::TempDir,
    url: String,
    key: String,
}

impl Cli {
    fn new(server: &TestServer, key: &str) -> Cli {
        Cli {
            dir: tempfile::tempdir().expect("temp dir"),
            url: server.base.clone(),
            key: key.to_owned(),
        }
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_in(args, None).await
    }

    async fn run_in(&self, args: &[&str], stdin: Option<&str>) -> Run {
        tenantry(
            self.dir.path(),
            &[("TENANTRY_URL", &self.url), ("TENANTRY_KEY", &self.key)],
            args,
            stdin,
        )
        .await
    }

    /// Runs with `--json` and parses the answer.
    async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        self.run(&all).await.json()
    }
}

/// A server (root key, and `env`), a root CLI for it, and tenant acme.
async fn with_acme(db: &TestDb, env: &[(&str, &str)]) -> (TestServer, Cli) {
    let mut all = vec![("TENANTRY_ROOT_KEY", ROOT_KEY)];
    all.extend_from_slice(env);
    let server = TestServer::start_with(db, &all).await;
    let cli = Cli::new(&server, ROOT_KEY);
    cli.json(&["tenants", "create", "acme", "--name", "Acme"])
        .await;
    (server, cli)
}

/// A webhook receiver on 127.0.0.1 that answers 200 to every delivery.
async fn receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn tour_of_every_resource(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_OUTBOUND_ALLOWLIST", "127.0.0.1/32"),
        ],
    )
    .await;
    let hook = receiver().await;
    let cli = Cli::new(&server, ROOT_KEY);

    // Tenants.
    let t = cli
        .json(&[
            "tenants",
            "create",
            "acme",
            "--name",
            "Acme",
            "--plan",
            "professional",
        ])
        .await;
    assert_eq!(t["id"], "acme");
    assert_eq!(t["plan"], "professional");
    let list = cli.json(&["tenants", "list", "--limit", "10"]).await;
    assert_eq!(list["data"][0]["id"], "acme", "{list}");
    let table = cli.run(&["tenants", "list"]).await;
    table.ok();
    assert!(
        table.stdout.contains("acme") && table.stdout.contains("ID"),
        "{table:?}"
    );
    assert_eq!(cli.json(&["tenants", "show", "acme"]).await["name"], "Acme");
    let updated = cli
        .json(&[
            "tenants",
            "update",
            "acme",
            "--name",
            "Acme Inc",
            "--metadata",
            r#"{"tier":"gold"}"#,
        ])
        .await;
    assert_eq!(updated["name"], "Acme Inc");
    assert_eq!(updated["metadata"]["tier"], "gold");
    assert_eq!(
        cli.json(&["tenants", "suspend", "acme"]).await["status"],
        "suspended"
    );
    assert_eq!(
        cli.json(&["tenants", "reactivate", "acme"]).await["status"],
        "active"
    );
    assert_eq!(
        cli.json(&["tenants", "stats", "acme"]).await["tenant_id"],
        "acme"
    );
    assert!(cli.json(&["tenants", "events", "acme", "--all"]).await["data"].is_array());
    cli.json(&["tenants", "create", "gone", "--name", "Gone"])
        .await;
    assert_eq!(
        cli.json(&["tenants", "delete", "gone"]).await["status"],
        "deleted"
    );

    // Domains (with their verification status).
    let d = cli
        .json(&["domains", "add", "acme", "crm.acme-example.com"])
        .await;
    assert_eq!(d["status"], "pending", "{d}");
    let domains = cli.json(&["domains", "list", "acme"]).await;
    assert_eq!(domains["data"][0]["domain"], "crm.acme-example.com");
    let table = cli.run(&["domains", "list", "acme"]).await;
    assert!(table.ok().stdout.contains("pending"), "{table:?}");
    cli.run(&["domains", "remove", "acme", "crm.acme-example.com"])
        .await
        .ok();
    assert_eq!(
        cli.json(&["domains", "list", "acme"]).await["data"],
        json!([])
    );

    // API keys.
    let created = cli
        .json(&[
            "api-keys",
            "create",
            "acme",
            "--name",
            "svc",
            "--scope",
            "tenant:read",
            "--scope",
            "usage:write",
        ])
        .await;
    let secret = created["key"]
        .as_str()
        .expect("secret shown once")
        .to_owned();
    let key_id = created["id"].as_str().expect("id").to_owned();
    let keys = cli.json(&["api-keys", "list", "acme"]).await;
    assert_eq!(keys["data"][0]["id"], key_id.as_str());
    assert!(
        !cli.run(&["api-keys", "list", "acme"])
            .await
            .stdout
            .contains(&secret),
        "a list never shows a secret"
    );
    assert_eq!(
        cli.json(&["api-keys", "show", "acme", &key_id]).await["name"],
        "svc"
    );
    assert_eq!(
        cli.json(&["api-keys", "update", "acme", &key_id, "--name", "svc2"])
            .await["name"],
        "svc2"
    );
    let verdict = cli
        .run_in(&["api-keys", "verify", "--json"], Some(&secret))
        .await
        .json();
    assert_eq!(verdict["code"], "VALID", "{verdict}");
    let rotated = cli
        .json(&[
            "api-keys",
            "rotate",
            "acme",
            &key_id,
            "--overlap-seconds",
            "60",
        ])
        .await;
    let new_id = rotated["id"].as_str().expect("new id").to_owned();
    assert_ne!(new_id, key_id);
    assert!(cli.json(&["api-keys", "revoke", "acme", &new_id]).await["revoked_at"].is_string());

    // Operator keys.
    let op = cli.json(&["operator-keys", "create", "--name", "ci"]).await;
    let op_id = op["id"].as_str().expect("operator key id").to_owned();
    assert!(
        cli.json(&["operator-keys", "list"]).await["data"]
            .as_array()
            .is_some_and(|l| !l.is_empty())
    );
    assert!(cli.json(&["operator-keys", "revoke", &op_id]).await["revoked_at"].is_string());

    // Credentials: masked on read, plaintext only through reveal.
    let cred = cli
        .json(&[
            "credentials",
            "create",
            "acme",
            "--kind",
            "smtp",
            "--name",
            "mail",
            "--data",
            r#"{"host":"smtp.example.com","port":587,"username":"u","password":"hunter2-secret"}"#,
        ])
        .await;
    let cred_id = cred["id"].as_str().expect("credential id").to_owned();
    let listed = cli.run(&["credentials", "list", "acme", "--json"]).await;
    assert!(!listed.ok().stdout.contains("hunter2-secret"), "{listed:?}");
    let shown = cli.run(&["credentials", "show", "acme", &cred_id]).await;
    assert!(!shown.ok().stdout.contains("hunter2-secret"), "{shown:?}");
    assert_eq!(
        cli.json(&["credentials", "update", "acme", &cred_id, "--name", "mail2"])
            .await["name"],
        "mail2"
    );
    let revealed = cli
        .json(&["credentials", "reveal", "acme", &cred_id, "--yes"])
        .await;
    assert_eq!(revealed["data"]["password"], "hunter2-secret");
    let log = cli
        .json(&["credentials", "access-log", "acme", &cred_id])
        .await;
    assert!(
        log["data"].as_array().is_some_and(|l| !l.is_empty()),
        "{log}"
    );
    cli.run(&["credentials", "delete", "acme", &cred_id])
        .await
        .ok();
    assert_eq!(
        cli.run(&["credentials", "show", "acme", &cred_id])
            .await
            .code,
        3
    );

    // Tenant settings.
    let set = cli
        .json(&[
            "tenant-settings",
            "set",
            "acme",
            "crm",
            "--data",
            r#"{"apiKey":"sk-very-secret","region":"eu"}"#,
        ])
        .await;
    assert_eq!(set["category"], "crm");
    let masked = cli
        .run(&["tenant-settings", "show", "acme", "crm", "--json"])
        .await;
    assert!(!masked.ok().stdout.contains("sk-very-secret"), "{masked:?}");
    let plain = cli
        .json(&["tenant-settings", "reveal", "acme", "crm", "--yes"])
        .await;
    assert_eq!(plain["data"]["apiKey"], "sk-very-secret");

    // Configuration, plans, meters, usage, quotas.
    assert!(cli.json(&["config", "show", "acme"]).await.is_object());
    cli.json(&[
        "config",
        "update",
        "acme",
        "--data",
        r#"{"features":{"beta_inbox":true}}"#,
    ])
    .await;
    let versions = cli.json(&["config", "versions", "acme"]).await;
    assert!(
        versions["data"].as_array().is_some_and(|l| !l.is_empty()),
        "{versions}"
    );
    let plans = cli.json(&["plans", "list"]).await;
    assert!(
        plans["data"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == "starter"))
    );
    let plan = cli
        .json(&[
            "plans",
            "set",
            "tiny",
            "--data",
            r#"{"description":"Tiny","quotas":{"messages_outbound":5}}"#,
        ])
        .await;
    assert_eq!(plan["name"], "tiny");
    cli.json(&["meters", "create", "seats", "--aggregation", "last"])
        .await;
    assert!(
        cli.json(&["meters", "list"]).await["data"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["name"] == "seats"))
    );
    let ingest = cli
        .json(&[
            "usage",
            "record",
            "--data",
            r#"{"id":"evt-1","tenant_id":"acme","meter":"messages_outbound","quantity":3}"#,
        ])
        .await;
    assert_eq!(ingest["accepted"], 1);
    let usage = cli
        .json(&["usage", "show", "acme", "--meter", "messages_outbound"])
        .await;
    assert_eq!(usage["total"], 3, "{usage}");
    let quota = cli
        .json(&[
            "quotas",
            "check",
            "--tenant",
            "acme",
            "--meter",
            "messages_outbound",
        ])
        .await;
    assert_eq!(quota["allowed"], true, "{quota}");

    // Webhooks, delivered to a local receiver.
    let ep = cli
        .json(&[
            "webhooks",
            "endpoints",
            "create",
            "--tenant",
            "acme",
            "--endpoint-url",
            &hook,
            "--event-type",
            "tenant.updated",
            "--data",
            r#"{"metadata":{"team":"crm"}}"#,
        ])
        .await;
    let eid = ep["id"].as_str().expect("endpoint id").to_owned();
    assert!(
        ep.to_string().contains("whsec_"),
        "the secret is shown at creation: {ep}"
    );
    let eps = cli
        .json(&["webhooks", "endpoints", "list", "--tenant", "acme"])
        .await;
    assert_eq!(eps["data"][0]["id"], eid.as_str());
    assert!(
        !eps.to_string().contains("whsec_"),
        "lists never show secrets: {eps}"
    );
    cli.json(&["webhooks", "endpoints", "show", "--tenant", "acme", &eid])
        .await;
    cli.json(&[
        "webhooks",
        "endpoints",
        "update",
        "--tenant",
        "acme",
        &eid,
        "--description",
        "crm",
    ])
    .await;
    cli.json(&[
        "webhooks",
        "endpoints",
        "rotate-secret",
        "--tenant",
        "acme",
        &eid,
    ])
    .await;
    cli.json(&["tenants", "update", "acme", "--name", "Acme Two"])
        .await;
    let mut messages = json!(null);
    for _ in 0..100 {
        messages = cli
            .json(&["webhooks", "messages", "list", "--tenant", "acme", &eid])
            .await;
        // Replay takes a message whose delivery has ended.
        if messages["data"][0]["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mid = messages["data"][0]["id"]
        .as_str()
        .expect("a message for tenant.updated")
        .to_owned();
    cli.json(&[
        "webhooks", "messages", "show", "--tenant", "acme", &eid, &mid,
    ])
    .await;
    assert_eq!(
        cli.json(&["webhooks", "replay", "--tenant", "acme", &eid, &mid])
            .await["replayed"],
        1
    );
    let range = cli
        .json(&[
            "webhooks",
            "replay",
            "--tenant",
            "acme",
            &eid,
            "--since",
            "2000-01-01T00:00:00Z",
        ])
        .await;
    assert!(range["replayed"].as_u64().is_some(), "{range}");
    assert!(
        cli.json(&["webhooks", "event-types"]).await["data"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );
    cli.run(&["webhooks", "endpoints", "delete", "--tenant", "acme", &eid])
        .await
        .ok();

    // Widgets.
    let w = cli
        .json(&[
            "widgets",
            "create",
            "acme",
            "--name",
            "chat",
            "--origin",
            "https://shop.example.com",
        ])
        .await;
    let wid = w["id"].as_str().expect("widget id").to_owned();
    assert_eq!(
        cli.json(&["widgets", "list", "acme"]).await["data"][0]["id"],
        wid.as_str()
    );
    assert_eq!(
        cli.json(&["widgets", "update", "acme", &wid, "--name", "chat2"])
            .await["name"],
        "chat2"
    );
    let token = cli
        .json(&[
            "widgets",
            "token",
            "acme",
            &wid,
            "--origin",
            "https://shop.example.com",
        ])
        .await;
    assert!(token["token"].is_string(), "{token}");

    // Provisioning, followed to its end.
    let spec = r#"{"tenant":{"id":"beta","name":"Beta"},"api_keys":[{"name":"svc","scopes":["tenant:read"]}]}"#;
    let started = cli.json(&["provisioning", "start", "--data", spec]).await;
    let wf = started["id"].as_str().expect("workflow id").to_owned();
    let followed = cli.json(&["provisioning", "follow", &wf]).await;
    assert_eq!(followed["status"], "succeeded", "{followed}");
    assert!(followed["steps"].as_array().is_some_and(|s| !s.is_empty()));
    assert_eq!(
        cli.json(&["provisioning", "show", &wf]).await["tenant_id"],
        "beta"
    );
    assert!(
        cli.json(&["provisioning", "list", "--all"]).await["data"]
            .as_array()
            .is_some_and(|l| !l.is_empty())
    );
    // Retrying a finished workflow is a conflict, said so.
    let retry = cli.run(&["provisioning", "retry", &wf]).await;
    assert_eq!(retry.code, 5, "{retry:?}");

    // The vault's keys, over the API.
    let status = cli.json(&["vault", "status"]).await;
    assert!(status["active_kek"].is_string(), "{status}");
    let rotated = cli.json(&["vault", "rotate-tenant", "acme"]).await;
    assert_eq!(rotated["tenant_id"], "acme");
    let after = cli.json(&["vault", "rotate", "--wait"]).await;
    assert_eq!(after["rewrap_pending"], 0, "{after}");
    assert_ne!(after["active_kek"], status["active_kek"]);

    // Audit: query, export, verify, checkpoints, keys.
    let entries = cli
        .json(&["audit", "list", "--tenant", "acme", "--all"])
        .await;
    assert!(
        entries["data"].as_array().is_some_and(|e| e.len() > 5),
        "{entries}"
    );
    assert!(cli.json(&["audit", "list"]).await["data"].is_array());
    let export = cli.dir.path().join("acme.ndjson");
    let out = cli
        .run(&[
            "audit",
            "export",
            "--tenant",
            "acme",
            "-o",
            export.to_str().expect("path"),
        ])
        .await;
    out.ok();
    let text = std::fs::read_to_string(&export).expect("export written");
    assert!(text.lines().count() > 5, "{text}");
    assert!(out.stderr.contains("exported"), "{out:?}");
    let verify = cli.run(&["audit", "verify", "--json"]).await;
    verify.ok();
    let reports: Vec<Value> = verify
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one report per line"))
        .collect();
    assert!(
        reports.len() >= 3,
        "operator, acme, beta (and gone): {reports:?}"
    );
    assert!(reports.iter().all(|r| r["ok"] == true), "{reports:?}");
    assert_eq!(
        cli.json(&["audit", "verify", "--tenant", "acme"]).await["ok"],
        true
    );
    assert!(
        cli.json(&["audit", "checkpoints", "--tenant", "acme"])
            .await["data"]
            .is_array()
    );
    assert!(cli.json(&["audit", "keys"]).await.is_array());
}

async fn exit_codes_and_problem_lines(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (server, cli) = with_acme(&db, &[]).await;

    let missing = cli.run(&["tenants", "show", "nobody"]).await;
    missing.problem(3, "tenant_not_found");

    let invalid = cli
        .run(&["tenants", "create", "Not A Slug", "--name", "x"])
        .await;
    invalid.problem(6, "validation_failed");
    assert!(invalid.stderr.contains("(field id)"), "{invalid:?}");

    let conflict = cli
        .run(&["tenants", "create", "acme", "--name", "Again"])
        .await;
    assert_eq!(conflict.code, 5, "{conflict:?}");
    assert!(conflict.stderr.contains("tenant_exists"), "{conflict:?}");

    let wrong = Cli::new(&server, "not-a-real-key-at-all");
    let denied = wrong.run(&["tenants", "list"]).await;
    assert_eq!(denied.code, 4, "{denied:?}");
    assert!(
        denied.stderr.starts_with("error: unauthorized: "),
        "{denied:?}"
    );
    assert!(
        !denied.stderr.contains("not-a-real-key-at-all"),
        "the key is never printed: {denied:?}"
    );

    let bad_json = cli
        .run(&["config", "update", "acme", "--data", "{not json"])
        .await;
    assert_eq!(bad_json.code, 2, "{bad_json:?}");
    let usage = cli.run(&["tenants", "show"]).await;
    assert_eq!(usage.code, 2, "clap's usage errors: {usage:?}");

    // No server configured at all.
    let dir = tempfile::tempdir().expect("dir");
    let nowhere = tenantry(dir.path(), &[], &["tenants", "list"], None).await;
    assert_eq!(nowhere.code, 2, "{nowhere:?}");
    assert!(nowhere.stderr.contains("no server"), "{nowhere:?}");
    // A server that does not answer: try again later.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let closed = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let down = tenantry(
        dir.path(),
        &[("TENANTRY_URL", &closed), ("TENANTRY_KEY", ROOT_KEY)],
        &["tenants", "list"],
        None,
    )
    .await;
    assert_eq!(down.code, 7, "{down:?}");
    assert!(!down.stderr.contains(ROOT_KEY), "{down:?}");
}

/// A tenant key through the CLI: its own tenant works, another tenant is
/// "not found" (exit 3), operator resources are refused (exit 4).
async fn tenant_keys_reach_only_their_tenant(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let root = Cli::new(&server, ROOT_KEY);
    root.json(&["tenants", "create", "acme", "--name", "Acme"])
        .await;
    root.json(&["tenants", "create", "globex", "--name", "Globex"])
        .await;
    let key = root
        .json(&[
            "api-keys",
            "create",
            "acme",
            "--name",
            "admin",
            "--scope",
            "tenant:admin",
        ])
        .await["key"]
        .as_str()
        .expect("key")
        .to_owned();
    let acme = Cli::new(&server, &key);
    assert_eq!(acme.json(&["tenants", "show", "acme"]).await["id"], "acme");
    assert_eq!(acme.run(&["tenants", "show", "globex"]).await.code, 3);
    assert_eq!(acme.run(&["api-keys", "list", "globex"]).await.code, 3);
    assert_eq!(acme.run(&["credentials", "list", "globex"]).await.code, 3);
    let op = acme.run(&["operator-keys", "list"]).await;
    assert!(op.code == 4 || op.code == 3, "{op:?}");
    assert_eq!(acme.run(&["vault", "status"]).await.code, 4);
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

async fn profiles_keep_keys_private(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("cfg");
    let add = tenantry(
        &config,
        &[],
        &[
            "profile",
            "add",
            "local",
            "--server",
            &server.base,
            "--key-stdin",
        ],
        Some(&format!("{ROOT_KEY}\n")),
    )
    .await;
    add.ok();
    assert!(
        !add.stdout.contains(ROOT_KEY) && !add.stderr.contains(ROOT_KEY),
        "{add:?}"
    );
    let key_file = config.join("keys").join("local.key");
    assert_eq!(
        std::fs::read_to_string(&key_file).expect("key file").trim(),
        ROOT_KEY
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&key_file), 0o600, "the key file is the owner's alone");
        assert_eq!(mode(&config.join("keys")), 0o700);
        assert_eq!(mode(&config), 0o700);
    }
    let profiles = std::fs::read_to_string(config.join("profiles.json")).expect("profiles");
    assert!(!profiles.contains(ROOT_KEY), "{profiles}");

    // Symlinks planted by someone who can write the directory are not
    // followed: not under a temporary file's name, not as the directory.
    #[cfg(unix)]
    {
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "").expect("outside");
        let planted = dir.path().join("cfg-planted");
        std::fs::create_dir_all(planted.join("keys")).expect("keys");
        std::os::unix::fs::symlink(&outside, planted.join("keys").join("planted.key.tmp"))
            .expect("symlink");
        let add = |name: &'static str, config: std::path::PathBuf| {
            let base = server.base.clone();
            async move {
                tenantry(
                    &config,
                    &[],
                    &["profile", "add", name, "--server", &base, "--key-stdin"],
                    Some(&format!("{ROOT_KEY}\n")),
                )
                .await
            }
        };
        add("planted", planted.clone()).await.ok();
        assert_eq!(std::fs::read_to_string(&outside).expect("outside"), "");
        assert_eq!(mode(&planted.join("keys").join("planted.key")), 0o600);
        let linked = dir.path().join("linked");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &linked).expect("symlink");
        std::fs::create_dir(dir.path().join("elsewhere")).expect("elsewhere");
        let refused = add("linked", linked).await;
        assert_ne!(refused.code, 0, "{refused:?}");
        assert!(
            std::fs::read_dir(dir.path().join("elsewhere"))
                .expect("elsewhere")
                .next()
                .is_none(),
            "nothing was written through the link"
        );
    }

    // The current profile is used with no URL or key given.
    let none: &[(&str, &str)] = &[];
    let created = tenantry(
        &config,
        none,
        &["tenants", "create", "acme", "--name", "Acme", "--json"],
        None,
    )
    .await
    .json();
    assert_eq!(created["id"], "acme");
    let list = tenantry(&config, none, &["profile", "list", "--json"], None)
        .await
        .json();
    assert_eq!(
        list,
        json!([{"name": "local", "url": server.base, "key": "stored", "current": true}])
    );
    let table = tenantry(&config, none, &["profile", "list"], None).await;
    assert!(!table.ok().stdout.contains(ROOT_KEY), "{table:?}");

    // --key / TENANTRY_KEY override the profile's key.
    let wrong = tenantry(
        &config,
        &[("TENANTRY_KEY", "wrong-key-for-this-server")],
        &["tenants", "list"],
        None,
    )
    .await;
    assert_eq!(wrong.code, 4, "{wrong:?}");
    let wrong = tenantry(
        &config,
        none,
        &["--key", "another-wrong-key", "tenants", "list"],
        None,
    )
    .await;
    assert_eq!(wrong.code, 4, "{wrong:?}");
    // --url overrides the profile's server.
    let elsewhere = tenantry(
        &config,
        none,
        &["--url", "http://127.0.0.1:9", "tenants", "list"],
        None,
    )
    .await;
    assert_eq!(elsewhere.code, 7, "{elsewhere:?}");

    // A second profile, chosen by name; `use` switches; unknown names are usage errors.
    tenantry(
        &config,
        none,
        &["profile", "add", "other", "--server", "http://127.0.0.1:9"],
        None,
    )
    .await
    .ok();
    assert_eq!(
        tenantry(
            &config,
            none,
            &["--profile", "other", "tenants", "list"],
            None
        )
        .await
        .code,
        7
    );
    tenantry(&config, none, &["profile", "use", "other"], None)
        .await
        .ok();
    assert_eq!(
        tenantry(&config, none, &["tenants", "list"], None)
            .await
            .code,
        7
    );
    assert_eq!(
        tenantry(
            &config,
            none,
            &["--profile", "local", "tenants", "list"],
            None
        )
        .await
        .code,
        0
    );
    assert_eq!(
        tenantry(
            &config,
            none,
            &["--profile", "nope", "tenants", "list"],
            None
        )
        .await
        .code,
        2
    );
    assert_eq!(
        tenantry(
            &config,
            none,
            &["profile", "add", "../evil", "--server", "http://x"],
            None
        )
        .await
        .code,
        2
    );

    tenantry(&config, none, &["profile", "remove", "local"], None)
        .await
        .ok();
    assert!(!key_file.exists(), "removing a profile removes its key");
}

async fn reveal_needs_confirmation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (_server, cli) = with_acme(&db, &[]).await;
    let cred = cli
        .json(&[
            "credentials",
            "create",
            "acme",
            "--kind",
            "smtp",
            "--name",
            "mail",
            "--data",
            r#"{"host":"smtp.example.com","port":587,"username":"u","password":"hunter2-secret"}"#,
        ])
        .await;
    let id = cred["id"].as_str().expect("id").to_owned();
    // No terminal (stdin is a pipe), no --yes: refused before any request.
    let refused = cli
        .run_in(&["credentials", "reveal", "acme", &id], Some("yes\n"))
        .await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("--yes"), "{refused:?}");
    assert!(!refused.stdout.contains("hunter2-secret"));
    let settings = cli
        .run_in(&["tenant-settings", "reveal", "acme", "crm"], None)
        .await;
    assert_eq!(settings.code, 2, "{settings:?}");
    // Nothing was revealed: the credential's access log is empty.
    let shown = cli.json(&["credentials", "show", "acme", &id]).await;
    assert!(shown["last_revealed_at"].is_null(), "{shown}");
    let log = cli.json(&["credentials", "access-log", "acme", &id]).await;
    assert_eq!(log["data"], json!([]), "{log}");
}

async fn completions_and_help(_backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    for shell in ["bash", "zsh", "fish"] {
        let out = tenantry(dir.path(), &[], &["completions", shell], None).await;
        out.ok();
        assert!(
            out.stdout.len() > 1000 && out.stdout.contains("tenantry"),
            "{shell}: {}",
            out.stdout.len()
        );
        assert!(out.stdout.contains("api-keys"), "{shell}");
    }
    let help = tenantry(dir.path(), &[], &["--help"], None).await;
    help.ok();
    let server_at = help.stdout.find("Server commands").expect("server heading");
    let remote_at = help.stdout.find("Remote commands").expect("remote heading");
    let section = |name: &str| help.stdout.find(&format!("\n  {name} ")).expect(name);
    assert!(
        section("keyring") > server_at && section("keyring") < remote_at,
        "{}",
        help.stdout
    );
    assert!(section("tenants") > remote_at, "{}", help.stdout);
    assert!(help.stdout.contains("Exit codes"), "{}", help.stdout);
    // `keys` still works (hidden alias of keyring).
    tenantry(dir.path(), &[], &["keys", "--help"], None)
        .await
        .ok();
}

fn promtool() -> String {
    if let Ok(bin) = std::env::var("TEST_PROMTOOL_BIN")
        && !bin.is_empty()
    {
        return bin;
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("promtool"))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => p.display().to_string(),
        None => panic!(
            "promtool not found: install Debian's prometheus package (./scripts/test does) or set TEST_PROMTOOL_BIN"
        ),
    }
}

async fn check_with_promtool(text: &str) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(text.as_bytes()).await.expect("write");
    drop(stdin);
    let out = child.wait_with_output().await.expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn scrape(server: &TestServer, key: Option<&str>) -> (StatusCode, String) {
    let mut req = server.client.get(server.url("/metrics"));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.expect("scrape");
    let status = resp.status();
    (status, resp.text().await.unwrap_or_default())
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
}

async fn metrics_pass_promtool_and_move(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;

    // Not without an operator key.
    let (status, body) = scrape(&server, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    server.create_tenant("acme").await;
    let key = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "svc", "scopes": ["tenant:read"]}),
        )
        .await
        .body["key"]
        .as_str()
        .expect("key")
        .to_owned();
    let (status, _) = scrape(&server, Some(&key)).await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
        "a tenant key is not an operator: {status}"
    );

    let (status, before) = scrape(&server, Some(ROOT_KEY)).await;
    assert_eq!(status, StatusCode::OK);
    check_with_promtool(&before).await;

    let show =
        "tenantry_http_requests_total{method=\"GET\",route=\"/v1/tenants/{id}\",status=\"200\"}";
    let missing =
        "tenantry_http_requests_total{method=\"GET\",route=\"/v1/tenants/{id}\",status=\"404\"}";
    let n = |text: &str, s: &str| sample(text, s).unwrap_or(0.0);
    for _ in 0..3 {
        assert_eq!(server.get("/v1/tenants/acme").await.status, StatusCode::OK);
    }
    assert_eq!(
        server.get("/v1/tenants/some-random-tenant-x1").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.get("/no/such/route/abc123").await.status,
        StatusCode::NOT_FOUND
    );
    let verdict = server.post("/v1/keys/verify", json!({"key": key})).await;
    assert_eq!(verdict.body["code"], "VALID", "{verdict:?}");
    server
        .post("/v1/keys/verify", json!({"key": "tk_live_nothing"}))
        .await;
    let quota = server
        .post(
            "/v1/quotas/check",
            json!({"tenant_id": "acme", "meter": "messages_outbound", "consume": true}),
        )
        .await;
    assert_eq!(quota.status, StatusCode::OK, "{quota:?}");
    // A tenant key's calls pass the rate limiter and the key cache.
    for _ in 0..2 {
        let r = server
            .call_as(Some(&key), reqwest::Method::GET, "/v1/tenants/acme", None)
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }

    let (_, after) = scrape(&server, Some(ROOT_KEY)).await;
    check_with_promtool(&after).await;
    assert!(n(&after, show) >= n(&before, show) + 3.0, "{after}");
    assert!(n(&after, missing) >= n(&before, missing) + 1.0, "{after}");
    assert!(
        sample(&after, "tenantry_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/tenants/{id}\",status=\"200\"}")
            .is_some_and(|c| c >= 3.0),
        "{after}"
    );
    // Route templates only: no raw path becomes a label.
    assert!(
        !after.contains("some-random-tenant-x1") && !after.contains("abc123"),
        "{after}"
    );
    assert!(
        sample(
            &after,
            "tenantry_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"
        )
        .is_some(),
        "{after}"
    );
    assert!(
        n(
            &after,
            "tenantry_http_problems_total{code=\"tenant_not_found\"}"
        ) >= 1.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, "tenantry_key_verifications_total{code=\"VALID\"}"),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "tenantry_key_verifications_total{code=\"NOT_FOUND\"}"
        ),
        Some(1.0),
        "{after}"
    );
    assert!(
        n(
            &after,
            "tenantry_quota_decisions_total{meter=\"messages_outbound\",decision=\"allowed\"}"
        ) >= 1.0,
        "{after}"
    );
    assert!(
        n(
            &after,
            "tenantry_ratelimit_decisions_total{decision=\"allowed\"}"
        ) >= 2.0,
        "{after}"
    );
    let hits = "tenantry_cache_lookups_total{cache=\"api_keys\",result=\"hit\"}";
    assert!(n(&after, hits) > n(&before, hits), "{after}");
    let misses = "tenantry_cache_lookups_total{cache=\"tenants\",result=\"miss\"}";
    assert!(n(&after, misses) >= 1.0, "{after}");
    assert_eq!(
        sample(&after, "tenantry_background_up"),
        Some(1.0),
        "{after}"
    );
    assert!(
        after.contains("tenantry_db_pool_connections{pool="),
        "{after}"
    );
    assert!(
        sample(&after, "tenantry_audit_uncheckpointed_entries").is_some(),
        "{after}"
    );
    assert_eq!(
        sample(&after, "tenantry_provisioning_workflows{state=\"running\"}"),
        Some(0.0),
        "{after}"
    );
    assert!(
        sample(&after, "tenantry_rewrap_backlog").is_some(),
        "{after}"
    );
    assert!(
        sample(&after, "tenantry_webhook_pending_messages").is_some(),
        "{after}"
    );
    // No per-tenant series unless configured.
    assert!(!after.contains("tenant=\""), "{after}");
}

async fn metrics_public_and_tenant_labels(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_METRICS_PUBLIC", "true"),
            ("TENANTRY_METRICS_TENANT_LABELS", "true"),
            // The remote CLI's variables in the environment do not stop a
            // server from starting (they are not its settings).
            ("TENANTRY_URL", "http://127.0.0.1:9"),
            ("TENANTRY_KEY", "some-cli-key"),
            ("TENANTRY_PROFILE", "prod"),
            ("TENANTRY_CONFIG_DIR", "/nonexistent"),
        ],
    )
    .await;
    server.create_tenant("acme").await;
    let key = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "svc", "scopes": ["tenant:read"]}),
        )
        .await
        .body["key"]
        .as_str()
        .expect("key")
        .to_owned();
    server.post("/v1/keys/verify", json!({"key": key})).await;
    server
        .post(
            "/v1/quotas/check",
            json!({"tenant_id": "acme", "meter": "messages_outbound"}),
        )
        .await;
    let (status, text) = scrape(&server, None).await;
    assert_eq!(status, StatusCode::OK, "public: {text}");
    check_with_promtool(&text).await;
    assert_eq!(
        sample(
            &text,
            "tenantry_tenant_key_verifications_total{code=\"VALID\",tenant=\"acme\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, "tenantry_tenant_quota_decisions_total{meter=\"messages_outbound\",decision=\"allowed\",tenant=\"acme\"}").is_some(),
        "{text}"
    );
    // An invalid setting is refused at start-up.
    let bad = TestServer::try_start(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_METRICS_PUBLIC", "maybe"),
        ],
    )
    .await;
    assert!(bad.is_err_and(|out| out.contains("metrics_public")));
}

/// An identity provider registered through the CLI, as `seed_every_tenant_table` does.
fn provider_json(issuer: &str) -> String {
    json!({"issuer": issuer, "audiences": ["app"], "algorithms": ["EdDSA"],
        "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "cli",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}})
    .to_string()
}

/// Registers an identity provider through the CLI; answers its id.
async fn create_provider(cli: &Cli, issuer: &str) -> String {
    let provider = cli
        .json(&[
            "identity-providers",
            "create",
            "--data",
            &provider_json(issuer),
        ])
        .await;
    assert_eq!(provider["issuer"], issuer, "{provider}");
    provider["id"].as_str().expect("provider id").to_owned()
}

/// A tenant key with these scopes, made through the CLI.
async fn cli_tenant_key(root: &Cli, tenant: &str, scope: &str) -> String {
    root.json(&[
        "api-keys", "create", tenant, "--name", "cli", "--scope", scope,
    ])
    .await["key"]
        .as_str()
        .expect("key")
        .to_owned()
}

/// The new commands end to end: identity providers, members, conversations
/// (with their messages) and resolution by host, key and token.
async fn identity_members_conversations_and_resolve(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (server, cli) = with_acme(&db, &[("TENANTRY_BASE_DOMAIN", "example.test")]).await;

    // Identity providers: create, list, show, update, delete.
    let pid = create_provider(&cli, "https://login.acme-example.com/").await;
    let listed = cli.json(&["identity-providers", "list"]).await;
    assert!(
        listed["data"]
            .as_array()
            .is_some_and(|l| l.iter().any(|p| p["id"] == pid.as_str())),
        "{listed}"
    );
    let table = cli.run(&["identity-providers", "list"]).await;
    assert!(table.ok().stdout.contains(&pid), "{table:?}");
    let updated = cli
        .json(&[
            "identity-providers",
            "update",
            &pid,
            "--data",
            &provider_json("https://login2.acme-example.com/"),
        ])
        .await;
    assert_eq!(updated["issuer"], "https://login2.acme-example.com/");
    assert_eq!(
        cli.json(&["identity-providers", "show", &pid]).await["issuer"],
        "https://login2.acme-example.com/"
    );

    // Members of acme: add, list, show, update (roles kept or replaced), tenants, remove.
    let subject = format!("{pid}:user-1");
    let added = cli
        .json(&[
            "members",
            "add",
            "acme",
            &subject,
            "--role",
            "member",
            "--metadata",
            r#"{"team":"sales"}"#,
        ])
        .await;
    assert_eq!(added["subject"], subject.as_str());
    assert_eq!(added["roles"], json!(["member"]));
    let members = cli.json(&["members", "list", "acme"]).await;
    assert_eq!(
        members["data"].as_array().map(Vec::len),
        Some(1),
        "{members}"
    );
    assert_eq!(members["has_more"], false);
    let table = cli.run(&["members", "list", "acme"]).await;
    assert!(table.ok().stdout.contains("user-1"), "{table:?}");
    let changed = cli
        .json(&["members", "update", "acme", &subject, "--role", "admin"])
        .await;
    assert_eq!(changed["roles"], json!(["admin"]));
    assert_eq!(
        changed["metadata"],
        json!({"team": "sales"}),
        "update keeps what it was not told to change"
    );
    assert_eq!(
        cli.json(&["members", "show", "acme", &subject]).await["roles"],
        json!(["admin"])
    );
    let of_user = cli.json(&["members", "tenants", &subject]).await;
    assert_eq!(of_user["data"][0]["tenant_id"], "acme", "{of_user}");
    // One page, and a word on stderr when the list goes on; --all reads on.
    cli.json(&[
        "members",
        "add",
        "acme",
        &format!("{pid}:user-2"),
        "--role",
        "member",
    ])
    .await;
    let first = cli.json(&["members", "list", "acme", "--limit", "1"]).await;
    assert_eq!(first["data"].as_array().map(Vec::len), Some(1), "{first}");
    assert_eq!(first["has_more"], true, "{first}");
    let hinted = cli.run(&["members", "list", "acme", "--limit", "1"]).await;
    assert!(
        hinted.ok().stderr.contains("more: pass --all"),
        "{hinted:?}"
    );
    let every = cli
        .json(&["members", "list", "acme", "--limit", "1", "--all"])
        .await;
    assert_eq!(every["data"].as_array().map(Vec::len), Some(2), "{every}");
    assert_eq!(every["has_more"], false);
    cli.run(&["members", "remove", "acme", &format!("{pid}:user-2")])
        .await
        .ok();
    let nothing = cli.run(&["members", "update", "acme", &subject]).await;
    assert_eq!(nothing.code, 2, "{nothing:?}");

    // Bad input reaches the server's validation: exit 6 and its problem code.
    let bad_role = cli
        .run(&["members", "add", "acme", &subject, "--role", "wizard"])
        .await;
    bad_role.problem(6, "validation_failed");
    assert!(bad_role.stderr.contains("(field roles)"), "{bad_role:?}");
    let bad_provider = cli
        .run(&[
            "identity-providers",
            "create",
            "--data",
            r#"{"issuer":"not a url","audiences":["app"],"algorithms":["EdDSA"],"jwks":{"keys":[]}}"#,
        ])
        .await;
    bad_provider.problem(6, "validation_failed");

    let removed = cli.run(&["members", "remove", "acme", &subject]).await;
    assert!(removed.ok().stdout.contains("removed"), "{removed:?}");
    let gone = cli.run(&["members", "show", "acme", &subject]).await;
    assert_eq!(gone.code, 3, "{gone:?}");
    cli.run(&["identity-providers", "delete", &pid]).await.ok();
    assert_eq!(cli.run(&["identity-providers", "show", &pid]).await.code, 3);

    // Conversations: the WhatsApp delivery the seed makes.
    server.seed_inbound("acme").await;
    let conversations = cli.json(&["conversations", "list", "acme"]).await;
    let first = &conversations["data"][0];
    let cid = first["id"].as_str().expect("conversation id").to_owned();
    assert_eq!(first["channel"], "whatsapp", "{conversations}");
    let shown = cli.json(&["conversations", "show", "acme", &cid]).await;
    assert_eq!(shown["conversation"]["id"], cid.as_str());
    let messages = shown["messages"]["data"].as_array().expect("messages");
    assert!(
        messages
            .iter()
            .any(|m| m["provider_message_id"] == "wamid.seed-in" && m["direction"] == "inbound"),
        "{shown}"
    );
    let table = cli.run(&["conversations", "show", "acme", &cid]).await;
    assert!(
        table.ok().stdout.contains("wamid") || table.stdout.contains("inbound"),
        "{table:?}"
    );
    let unknown = cli
        .run(&["conversations", "show", "acme", "conv_missing"])
        .await;
    unknown.problem(3, "conversation_not_found");

    // Resolution: by host (subdomain), by key and by token (both on stdin).
    let by_host = cli.json(&["resolve", "host", "acme.example.test"]).await;
    assert_eq!(by_host["tenant"]["id"], "acme");
    assert_eq!(by_host["matched_by"], "subdomain");
    let key = cli_tenant_key(&cli, "acme", "tenant:read").await;
    let by_key = cli
        .run_in(&["resolve", "key", "--json"], Some(&key))
        .await
        .json();
    assert_eq!(by_key["tenant"]["id"], "acme");
    assert_eq!(by_key["matched_by"], "api_key");
    let token = server
        .call_as(
            Some(&key),
            reqwest::Method::POST,
            "/v1/tokens",
            Some(json!({})),
        )
        .await;
    let token = token.body["token"].as_str().expect("token").to_owned();
    let by_token = cli
        .run_in(&["resolve", "token", "--json"], Some(&token))
        .await
        .json();
    assert_eq!(by_token["tenant"]["id"], "acme");
    assert_eq!(by_token["matched_by"], "token");
    let table = cli.run(&["resolve", "host", "acme.example.test"]).await;
    assert!(
        table.ok().stdout.contains("matched_by") && table.stdout.contains("subdomain"),
        "{table:?}"
    );
    let nowhere = cli.run(&["resolve", "host", "nobody.example.test"]).await;
    assert_eq!(nowhere.code, 3, "{nowhere:?}");
    let no_key = cli.run_in(&["resolve", "key"], Some("")).await;
    assert_eq!(no_key.code, 2, "{no_key:?}");
}

/// Tenant B's key cannot read tenant A's members or conversations: "not
/// found" (exit 3), exactly as for a tenant that does not exist.
async fn members_and_conversations_stay_in_their_tenant(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (server, root) = with_acme(&db, &[]).await;
    root.json(&["tenants", "create", "globex", "--name", "Globex"])
        .await;
    let pid = create_provider(&root, "https://login.acme-example.com/").await;
    let subject = format!("{pid}:user-1");
    root.json(&["members", "add", "acme", &subject, "--role", "member"])
        .await;
    server.seed_inbound("acme").await;
    let cid = root.json(&["conversations", "list", "acme"]).await["data"][0]["id"]
        .as_str()
        .expect("conversation")
        .to_owned();

    let globex = Cli::new(
        &server,
        &cli_tenant_key(&root, "globex", "tenant:admin").await,
    );
    for args in [
        vec!["members", "list", "acme"],
        vec!["members", "show", "acme", &subject],
        vec!["members", "add", "acme", &subject, "--role", "admin"],
        vec!["members", "remove", "acme", &subject],
        vec!["conversations", "list", "acme"],
        vec!["conversations", "show", "acme", &cid],
    ] {
        let run = globex.run(&args).await;
        run.problem(3, "tenant_not_found");
        assert!(!run.stdout.contains("user-1") && !run.stdout.contains(&cid));
    }
    // Its own tenant works, and A's member is untouched.
    assert_eq!(
        globex.json(&["members", "list", "globex"]).await["data"],
        json!([])
    );
    assert_eq!(
        root.json(&["members", "show", "acme", &subject]).await["roles"],
        json!(["member"])
    );
    // Operator resources are refused to a tenant key.
    assert_eq!(globex.run(&["identity-providers", "list"]).await.code, 4);
    // Anonymous: unauthorised.
    let anonymous = tenantry(
        globex.dir.path(),
        &[("TENANTRY_URL", &server.base)],
        &["members", "list", "acme"],
        None,
    )
    .await;
    assert_eq!(anonymous.code, 4, "{anonymous:?}");
}

/// `--key` on the command line works but says it is visible in the process
/// list; the same key from TENANTRY_KEY says nothing.
async fn key_on_the_command_line_is_warned_about(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let dir = tempfile::tempdir().expect("dir");
    let url = [("TENANTRY_URL", server.base.as_str())];
    let flagged = tenantry(
        dir.path(),
        &url,
        &["tenants", "list", "--key", ROOT_KEY],
        None,
    )
    .await;
    flagged.ok();
    assert!(
        flagged.stderr.contains("warning: --key is visible")
            && flagged.stderr.contains("TENANTRY_KEY"),
        "{flagged:?}"
    );
    assert!(!flagged.stderr.contains(ROOT_KEY), "{flagged:?}");
    let joined = format!("--key={ROOT_KEY}");
    let flagged = tenantry(dir.path(), &url, &["tenants", "list", &joined], None).await;
    assert!(
        flagged.ok().stderr.contains("warning: --key"),
        "{flagged:?}"
    );
    let quiet = tenantry(
        dir.path(),
        &[("TENANTRY_URL", &server.base), ("TENANTRY_KEY", ROOT_KEY)],
        &["tenants", "list"],
        None,
    )
    .await;
    assert!(!quiet.ok().stderr.contains("warning"), "{quiet:?}");
}
