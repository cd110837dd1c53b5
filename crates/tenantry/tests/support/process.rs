//! Child processes of the tests (gateways, apps): output collected, killed
//! when dropped; and where their binaries are found.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A child process whose output is collected.
pub struct Proc {
    pub child: Child,
    pub output: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let program = format!("{cmd:?}");
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().expect("stdout"))
                as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let output = output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    output.lock().expect("lock").push(line);
                }
            });
        }
        Proc { child, output }
    }

    pub fn logs(&self) -> String {
        self.output.lock().expect("lock").join("\n")
    }

    /// Waits until it accepts connections on `port`; Err(logs) if it exits.
    pub async fn listening(&mut self, port: u16) -> Result<(), String> {
        let started = std::time::Instant::now();
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                return Err(self.logs());
            }
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(format!("not listening after 30s\n{}", self.logs()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A binary from an env variable, else PATH, else a usual place.
pub fn binary(var: &str, name: &str, fallback: &str, hint: &str) -> PathBuf {
    if let Some(bin) = std::env::var_os(var).filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .chain([PathBuf::from(fallback)])
        .find(|c| c.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed and this test needs it: {hint}"))
}
