//! Broken infrastructure, each fault a test: PostgreSQL stopped and
//! restarted under write load, and a SQLite data directory that fills up or
//! turns read-only. Every failure answers a stated problem, never 500, and
//! nothing acknowledged is lost.
//!
//! The SQLite tests mount a small tmpfs over the data directory and the
//! PostgreSQL test runs a throw-away cluster of its own: they need root (CI
//! runs as root) and fail, naming the reason, without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, ROOT_KEY, Reply, TestDb, TestServer};
use reqwest::Method;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BOUND: Duration = Duration::from_secs(30);

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{cmd:?} did not run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A tmpfs of a few MiB mounted over a directory, unmounted when dropped.
struct SmallDisk {
    at: PathBuf,
}

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> SmallDisk {
        assert!(
            is_root(),
            "this test mounts a tmpfs over the SQLite data directory and needs root (CI runs as root)"
        );
        std::fs::create_dir_all(at).unwrap();
        if let Err(why) = run(Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0700"))
            .arg("tmpfs")
            .arg(at))
        {
            panic!(
                "cannot mount a tmpfs for the data directory (the test needs `mount -t tmpfs`, as root): {why}"
            );
        }
        SmallDisk { at: at.to_owned() }
    }

    fn remount(&self, mode: &str) {
        run(Command::new("mount")
            .arg("-o")
            .arg(format!("remount,{mode}"))
            .arg(&self.at))
        .unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = run(Command::new("umount").arg("-l").arg(&self.at));
    }
}

/// Writes a filler file until the file system is full; returns its path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xa5u8; 64 * 1024];
    loop {
        match file.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    // Byte by byte, the last partial chunk too.
    while file.write_all(&[0]).is_ok() {}
    path
}

async fn integrity_check(db: &TestDb) {
    let reader = db.sqlite_reader().await;
    let (verdict,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&reader)
        .await
        .unwrap();
    assert_eq!(verdict, "ok");
    reader.close().await;
}

fn sqlite_env() -> [(&'static str, &'static str); 2] {
    [
        ("TENANTRY_ROOT_KEY", ROOT_KEY),
        ("TENANTRY_DATABASE_TIMEOUT", "2s"),
    ]
}

/// A full disk: writes answer `503 storage_full` with `Retry-After`, never
/// 500; reads go on; once space is freed writes work again without a
/// restart; every acknowledged write is there and the file is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_full_disk_refuses_writes_and_recovers() {
    let db = TestDb::new(Backend::Sqlite).await;
    let disk = SmallDisk::mount(&db.data_dir(), "24m");
    let mut server = TestServer::start_with(&db, &sqlite_env()).await;
    server.expect_warning("database storage refuses writes");
    // Workers writing in the background meet the full disk too.
    server.expect_warning("database or disk is full");
    server.expect_warning("Status code: 503");
    server.create_tenant("acme").await;

    let filler = fill(&disk.at);
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for i in 0..2000 {
        let id = format!("t-{i}");
        let reply = server
            .post(
                "/v1/tenants",
                json!({"id": id, "name": "x".repeat(200), "metadata": {"pad": "y".repeat(2000)}}),
            )
            .await;
        match reply.status.as_u16() {
            201 => acknowledged.push(id),
            _ => {
                reply.assert_retry_later("storage_full");
                refused = Some(reply);
                break;
            }
        }
    }
    assert!(refused.is_some(), "a write met the full disk");
    // Refused again, never 500, and reads go on.
    let again = server
        .patch("/v1/tenants/acme", json!({"name": "Renamed"}))
        .await;
    again.assert_retry_later("storage_full");
    let read = server.get("/v1/tenants/acme").await;
    assert_eq!(read.status.as_u16(), 200, "reads go on: {read:?}");

    std::fs::remove_file(filler).unwrap();
    within!(
        BOUND,
        "a write after space was freed",
        server
            .post("/v1/tenants", json!({"id": "after", "name": "After"}))
            .await
            .status
            .as_u16()
            == 201
    );
    for id in &acknowledged {
        let got = server.get(&format!("/v1/tenants/{id}")).await;
        assert_eq!(got.status.as_u16(), 200, "acknowledged {id}: {got:?}");
    }
    assert!(
        !server.logs().contains("\"status\":500"),
        "no request answered 500:\n{}",
        server.logs()
    );
    assert_eq!(server.stop().await, Some(0), "{}", server.logs());
    integrity_check(&db).await;
}

/// A read-only file system. Linux will not remount it read-only while the
/// server holds the database open for writing, so this is the case of a
/// data directory that is read-only when the server starts: the server
/// refuses to start, saying why, rather than run half-broken; remounted
/// read-write it starts with every write there and the file intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_read_only_disk_is_refused_at_start() {
    let db = TestDb::new(Backend::Sqlite).await;
    let disk = SmallDisk::mount(&db.data_dir(), "24m");
    let mut server = TestServer::start_with(&db, &sqlite_env()).await;
    server.create_tenant("acme").await;
    assert_eq!(server.stop().await, Some(0), "{}", server.logs());
    drop(server);

    disk.remount("ro");
    let refused = match TestServer::try_start(&db, &sqlite_env()).await {
        Ok(server) => panic!("started on a read-only data directory:\n{}", server.logs()),
        Err(output) => output,
    };
    assert!(
        refused.contains("Read-only file system"),
        "the reason is named:\n{refused}"
    );
    integrity_check(&db).await;

    disk.remount("rw");
    let server = TestServer::start_with(&db, &sqlite_env()).await;
    server.create_tenant("after").await;
    let read = server.get("/v1/tenants/acme").await;
    assert_eq!(read.body["name"], "Tenant acme", "{read:?}");
    drop(server);
    integrity_check(&db).await;
}

/// `/readyz` of a server, as status code.
async fn ready(server: &TestServer) -> u16 {
    server
        .call_as(None, Method::GET, "/readyz", None)
        .await
        .status
        .as_u16()
}

/// A throw-away PostgreSQL cluster of this test's own, stopped and started
/// at will (started like `scripts/test` does: as `postgres` when root).
struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl OwnPostgres {
    fn start() -> OwnPostgres {
        let bin = PathBuf::from(
            std::env::var("TEST_PG_BIN_DIR")
                .or_else(|_| std::env::var("TEST_PG_BIN"))
                .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()),
        );
        assert!(
            bin.join("initdb").exists(),
            "PostgreSQL server binaries not found in {} (set TEST_PG_BIN_DIR)",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = OwnPostgres { dir, bin, port };
        if is_root() {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(pg.dir.path()))
            .unwrap();
        }
        run(pg.as_pg("initdb").arg("-D").arg(pg.data()).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        ]))
        .unwrap();
        pg.start_again();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_pg(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        }
    }

    fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        run(self
            .as_pg("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]))
        .unwrap();
    }

    /// Stops at once, as a crash would (crash recovery on the next start).
    fn stop_now(&self) {
        run(self.as_pg("pg_ctl").arg("-D").arg(self.data()).args([
            "-m",
            "immediate",
            "-w",
            "stop",
        ]))
        .unwrap();
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A [`TestDb`] pointing the server at this cluster.
    fn test_db(&self) -> TestDb {
        TestDb {
            backend: Backend::Postgres,
            dir: tempfile::tempdir().unwrap(),
            pg_database: Some("postgres".into()),
            url: Some(self.url()),
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ =
            run(self
                .as_pg("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "stop"]));
    }
}

/// What one writer saw: each write's id and whether it was acknowledged.
#[derive(Default)]
struct Seen {
    tenants: Vec<String>,
    keys: Vec<(String, String)>,
    events: Vec<String>,
    statuses: std::collections::BTreeSet<u16>,
    /// 503 answers without Retry-After, or with a code other than
    /// `database_unavailable`.
    bad_503: Vec<String>,
}

impl Seen {
    fn note(&mut self, reply: &Reply) -> bool {
        let status = reply.status.as_u16();
        self.statuses.insert(status);
        if status == 503
            && (reply.body["code"] != "database_unavailable"
                || !reply.headers.contains_key("retry-after"))
        {
            self.bad_503.push(format!("{reply:?}"));
        }
        reply.status.is_success()
    }
}

/// One writer: creates tenants, keys and usage events until told to stop.
async fn writer(
    server: std::sync::Arc<TestServer>,
    n: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen::default();
    let mut i = 0;
    while !*stop.borrow() {
        i += 1;
        let tenant = format!("w{n}-{i}");
        let made = server
            .post("/v1/tenants", json!({"id": tenant, "name": "Written"}))
            .await;
        if seen.note(&made) {
            seen.tenants.push(tenant.clone());
        } else {
            continue;
        }
        let key = server
            .post(
                &format!("/v1/tenants/{tenant}/api-keys"),
                json!({"name": "svc", "scopes": []}),
            )
            .await;
        if seen.note(&key) {
            seen.keys
                .push((tenant.clone(), key.body["id"].as_str().unwrap().to_owned()));
        }
        let event = format!("e-{tenant}");
        let usage = server
            .post(
                "/v1/usage/events",
                json!({"id": event, "tenant_id": tenant, "meter": "messages_outbound", "quantity": 1}),
            )
            .await;
        if seen.note(&usage) && usage.body["accepted"] == 1 {
            seen.events.push(event);
        }
    }
    seen
}

/// PostgreSQL stopped (as a crash would) under write load and started
/// again: requests meanwhile answer `503 database_unavailable` with
/// `Retry-After`, never 500; `/readyz` turns 503 before the restart; the
/// server recovers by itself; every acknowledged write is there; and the
/// cache-invalidation listener resubscribes: a key revoked through another
/// server process is refused by this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_write_load() {
    let pg = OwnPostgres::start();
    let db = pg.test_db();
    let env = [
        ("TENANTRY_ROOT_KEY", ROOT_KEY),
        ("TENANTRY_DATABASE_TIMEOUT", "1s"),
    ];
    let a = std::sync::Arc::new(TestServer::start_with(&db, &env).await);
    let b = TestServer::start_with(&db, &env).await;
    for server in [&*a, &b] {
        let extra = [
            "terminating connection due to immediate shutdown",
            "a shared usage round found the database unavailable",
            // Background passes (purge, pruning, key usage) meeting the
            // outage, each saying it tries again.
            "; will retry",
        ];
        for line in common::DATABASE_OUTAGE_WARNINGS.iter().chain(&extra) {
            server.expect_warning(line);
        }
    }
    a.create_tenant("acme").await;
    let key = a
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "k", "scopes": []}),
        )
        .await;
    assert_eq!(key.status.as_u16(), 201, "{key:?}");
    let (secret, key_id) = (
        key.body["key"].as_str().unwrap().to_owned(),
        key.body["id"].as_str().unwrap().to_owned(),
    );
    let valid = |reply: Reply| reply.body["valid"] == true;
    assert!(valid(
        a.post("/v1/keys/verify", json!({"key": secret})).await
    ));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let writers: Vec<_> = (0..4)
        .map(|n| tokio::spawn(writer(a.clone(), n, stop_rx.clone())))
        .collect();
    // Load before the outage.
    within!(BOUND, "writes before the outage", {
        a.get("/v1/tenants?limit=10").await.body["data"]
            .as_array()
            .is_some_and(|d| d.len() >= 5)
    });

    pg.stop_now();
    within!(
        BOUND,
        "/readyz answering 503 during the outage",
        ready(&a).await == 503
    );
    // The outage lasts while the writers keep writing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.start_again();
    within!(
        BOUND,
        "/readyz answering 200 after the restart",
        ready(&a).await == 200
    );
    // Writes go on after recovery, then the writers stop.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop_tx.send(true).unwrap();
    let mut all = Seen::default();
    for w in writers {
        let seen = w.await.unwrap();
        all.tenants.extend(seen.tenants);
        all.keys.extend(seen.keys);
        all.events.extend(seen.events);
        all.statuses.extend(seen.statuses);
        all.bad_503.extend(seen.bad_503);
    }
    eprintln!(
        "acknowledged: {} tenants, {} keys, {} usage events; statuses seen: {:?}",
        all.tenants.len(),
        all.keys.len(),
        all.events.len(),
        all.statuses
    );
    assert!(
        all.statuses
            .iter()
            .all(|s| (200..300).contains(s) || *s == 503),
        "only 2xx and 503 answers: {:?}\n{}",
        all.statuses,
        a.logs()
    );
    assert!(
        all.statuses.contains(&503),
        "the outage was seen: {:?}",
        all.statuses
    );
    assert!(all.bad_503.is_empty(), "{:#?}", all.bad_503);

    // Every acknowledged write is there.
    for tenant in &all.tenants {
        let got = a.get(&format!("/v1/tenants/{tenant}")).await;
        assert_eq!(
            got.status.as_u16(),
            200,
            "acknowledged tenant {tenant}: {got:?}"
        );
    }
    for (tenant, key) in &all.keys {
        let got = a.get(&format!("/v1/tenants/{tenant}/api-keys/{key}")).await;
        assert_eq!(got.status.as_u16(), 200, "acknowledged key {key}: {got:?}");
    }
    for event in &all.events {
        let tenant = event.trim_start_matches("e-");
        let again = a
            .post(
                "/v1/usage/events",
                json!({"id": event, "tenant_id": tenant, "meter": "messages_outbound", "quantity": 1}),
            )
            .await;
        assert_eq!(
            again.body["results"][0]["status"], "duplicate",
            "acknowledged event {event}: {again:?}"
        );
    }

    // LISTEN/NOTIFY resubscribed: a revocation through B reaches A's cache.
    assert!(valid(
        a.post("/v1/keys/verify", json!({"key": secret})).await
    ));
    let revoked = b
        .post(
            &format!("/v1/tenants/acme/api-keys/{key_id}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(revoked.status.as_u16(), 200, "{revoked:?}");
    within!(
        BOUND,
        "A refusing the key revoked through B",
        !valid(a.post("/v1/keys/verify", json!({"key": secret})).await)
    );
    assert!(
        a.logs().contains("invalidation listener reconnected"),
        "{}",
        a.logs()
    );
    assert!(
        !a.logs().contains("\"status\":500"),
        "no request answered 500:\n{}",
        a.logs()
    );
}
