//! Several nodes behind a load balancer: three real `tenantry serve`
//! processes over one PostgreSQL database and one Redis (`TEST_REDIS_URL`),
//! behind a real nginx upstream with round robin (`TEST_NGINX_BIN`, else
//! `nginx` on PATH or /usr/sbin/nginx), for tests/multinode.rs.
//!
//! `cluster.front` is a [`TestServer`] whose base URL is nginx's, so a test
//! written against one server runs through the balancer unchanged;
//! `cluster.nodes[i]` reaches one node directly. Each node listens on a
//! port of its own, kept across [`Cluster::restart`] so nginx finds it again.
#![allow(dead_code)]

use crate::common::{Backend, ROOT_KEY, TestDb, TestServer};
use crate::process::{Proc, binary, free_port};
use std::collections::HashMap;
use std::time::Duration;
use tokio::process::Command;

/// How many nodes a cluster has.
pub const NODES: usize = 3;

/// The base domain of every node (tenants resolve by `<id>.example.test`).
pub const BASE_DOMAIN: &str = "example.test";

/// Whether the multi-node tests can run: they need PostgreSQL (SQLite is
/// one process by design). Without `TEST_PG_URL` they say so and pass.
pub fn postgres_available(test: &str) -> bool {
    let set = std::env::var("TEST_PG_URL").is_ok_and(|v| !v.is_empty());
    if !set {
        eprintln!("{test}: skipped, TEST_PG_URL is not set (several nodes need PostgreSQL)");
    }
    set
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("TEST_REDIS_URL is not set: run ./scripts/test, which starts redis-server")
    })
}

pub struct Cluster {
    pub db: TestDb,
    /// Through nginx.
    pub front: TestServer,
    /// Each node directly. A killed node is `None` until restarted.
    pub nodes: Vec<Option<TestServer>>,
    /// Each node's `127.0.0.1:port`.
    pub addrs: Vec<String>,
    env: Vec<(String, String)>,
    nginx: Nginx,
}

impl Cluster {
    /// Three nodes with the root key, Redis and the base domain, plus `extra`
    /// (which overrides those), behind nginx.
    pub async fn start(extra: &[(&str, &str)]) -> Cluster {
        let db = TestDb::new(Backend::Postgres).await;
        let redis = redis_url();
        let mut env: Vec<(String, String)> = vec![
            ("TENANTRY_ROOT_KEY".into(), ROOT_KEY.into()),
            ("TENANTRY_REDIS_URL".into(), redis),
            ("TENANTRY_BASE_DOMAIN".into(), BASE_DOMAIN.into()),
        ];
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push(((*k).into(), (*v).into()));
        }
        // The first node migrates the database; the others start after it
        // (at once they would race each other's migrations).
        let mut nodes = Vec::new();
        let mut addrs = Vec::new();
        for _ in 0..NODES {
            let (server, addr) = start_node(&db, &env, None).await;
            nodes.push(Some(server));
            addrs.push(addr);
        }
        let nginx = Nginx::start(&addrs).await;
        let front = TestServer::remote(&nginx.base);
        Cluster {
            db,
            front,
            nodes,
            addrs,
            env,
            nginx,
        }
    }

    /// Node `i`, which must be running.
    pub fn node(&self, i: usize) -> &TestServer {
        self.nodes[i].as_ref().expect("the node is running")
    }

    pub fn running(&self) -> impl Iterator<Item = &TestServer> {
        self.nodes.iter().flatten()
    }

    /// Kills node `i` with SIGKILL.
    pub async fn kill9(&mut self, i: usize) {
        if let Some(mut node) = self.nodes[i].take() {
            node.kill9().await;
        }
    }

    /// Starts node `i` again, on its own port.
    pub async fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} is still running");
        let (server, _) = start_node(&self.db, &self.env, Some(&self.addrs[i])).await;
        self.nodes[i] = Some(server);
    }

    /// How many requests nginx sent to each node, by node index, from its
    /// access log.
    pub fn requests_per_node(&self) -> Vec<usize> {
        let mut per: HashMap<&str, usize> = HashMap::new();
        let lines = self.nginx.proc.output.lock().expect("lock").clone();
        for line in &lines {
            if let Some(rest) = line.strip_prefix("upstream=") {
                // `$upstream_addr` lists every node tried: "a, b".
                for addr in rest.split_whitespace().next().unwrap_or("").split(',') {
                    if let Some(i) = self.addrs.iter().position(|a| a == addr.trim()) {
                        *per.entry(self.addrs[i].as_str()).or_default() += 1;
                    }
                }
            }
        }
        self.addrs
            .iter()
            .map(|a| per.get(a.as_str()).copied().unwrap_or(0))
            .collect()
    }

    pub fn nginx_logs(&self) -> String {
        self.nginx.proc.output.lock().expect("lock").join("\n")
    }

    /// A variable of the nodes' environment, as the cluster set it.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Polls until `check` holds on every running node; panics after 10 s
    /// (a bound for a broken propagation, not a timing assertion).
    pub async fn on_every_node<'a, F, Fut>(&'a self, what: &str, check: F)
    where
        F: Fn(&'a TestServer) -> Fut,
        Fut: std::future::Future<Output = bool> + 'a,
    {
        for (i, node) in self.nodes.iter().enumerate() {
            let Some(node) = node else { continue };
            let mut held = false;
            for _ in 0..500 {
                if check(node).await {
                    held = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(held, "node {i} never honoured {what}");
        }
    }
}

/// Starts one node on `addr` (or a fresh port), retrying on another fresh
/// port if the one picked was taken meanwhile.
async fn start_node(
    db: &TestDb,
    env: &[(String, String)],
    addr: Option<&str>,
) -> (TestServer, String) {
    let mut last = String::new();
    for _ in 0..3 {
        let listen = addr.map_or_else(|| format!("127.0.0.1:{}", free_port()), str::to_owned);
        let mut env: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.push(("TENANTRY_LISTEN", &listen));
        match TestServer::try_start(db, &env).await {
            Ok(server) => return (server, listen),
            Err(output) => last = output,
        }
    }
    panic!("a node did not start:\n{last}")
}

/// nginx balancing over the nodes, round robin, from a temporary prefix.
struct Nginx {
    base: String,
    proc: Proc,
    _dir: tempfile::TempDir,
}

impl Nginx {
    async fn start(nodes: &[String]) -> Nginx {
        let mut failure = String::new();
        for _ in 0..3 {
            match Self::try_start(nodes, free_port()).await {
                Ok(nginx) => return nginx,
                Err(output) if output.contains("Address already in use") => failure = output,
                Err(output) => panic!("nginx did not start:\n{output}"),
            }
        }
        panic!("nginx did not start:\n{failure}")
    }

    async fn try_start(nodes: &[String], port: u16) -> Result<Nginx, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().display();
        let servers: String = nodes
            .iter()
            // A node that refuses connections (killed) is skipped for 1 s;
            // a request already sent to one is never re-sent (nginx does
            // not retry a POST it has passed on: `non_idempotent` is off).
            .map(|addr| format!("        server {addr} max_fails=1 fail_timeout=1s;\n"))
            .collect();
        // One process (no master and workers): killing it leaves nothing
        // behind; every path inside the prefix.
        let conf = format!(
            r#"master_process off;
events {{ worker_connections 2048; }}
http {{
    log_format upstream 'upstream=$upstream_addr status=$status $request_method $uri';
    access_log /dev/stderr upstream;
    client_body_temp_path "{p}/client_body";
    proxy_temp_path "{p}/proxy";
    fastcgi_temp_path "{p}/fastcgi";
    uwsgi_temp_path "{p}/uwsgi";
    scgi_temp_path "{p}/scgi";
    upstream tenantry {{
{servers}        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://tenantry;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_next_upstream error timeout;
            proxy_read_timeout 60s;
        }}
    }}
}}
"#
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let bin = binary(
            "TEST_NGINX_BIN",
            "nginx",
            "/usr/sbin/nginx",
            "run ./scripts/test, install the nginx-light or nginx package, or set TEST_NGINX_BIN",
        );
        let mut cmd = Command::new(bin);
        cmd.arg("-p")
            .arg(dir.path())
            .args(["-e", "stderr", "-c"])
            .arg(&conf_path)
            .arg("-g")
            .arg(format!(
                "daemon off; pid {}; error_log stderr warn;",
                dir.path().join("nginx.pid").display()
            ));
        let mut proc = Proc::spawn(cmd);
        proc.listening(port).await?;
        Ok(Nginx {
            base: format!("http://127.0.0.1:{port}"),
            proc,
            _dir: dir,
        })
    }
}
