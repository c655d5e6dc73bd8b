//! Test helpers: spawn the real `switchboard` binary (server, simulators, call client) as
//! separate processes on loopback, and read what they print.

#![allow(dead_code)]

pub mod hook;
pub mod recorded;
pub mod tenant;
pub mod unit;

use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_switchboard")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn asset(name: &str) -> PathBuf {
    root().join("assets/calls").join(name)
}

pub fn sidecar(name: &str) -> Value {
    let text = std::fs::read_to_string(asset(&format!("{name}.json"))).expect("sidecar");
    serde_json::from_str(&text).expect("sidecar json")
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `switchboard sim` in its own process.
pub struct Sim {
    _proc: Proc,
    pub urls: HashMap<String, String>,
}

impl Sim {
    pub fn start(keys: &[(&str, &str)], extra: &[&str]) -> Sim {
        let mut cmd = Command::new(bin());
        cmd.arg("sim").arg("--calls").arg(root().join("assets/calls"));
        for (p, k) in keys {
            cmd.arg("--key").arg(format!("{p}={k}"));
        }
        cmd.args(extra).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn sim");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("sim prints its urls");
        let urls: HashMap<String, String> = serde_json::from_str(line.trim()).expect("sim url json");
        Sim { _proc: Proc { child }, urls }
    }

    pub fn control(&self, path: &str) -> Value {
        get_json(&format!("{}{path}", self.urls["control"]))
    }

    /// `--provider-url` for every simulated provider; the OpenAI-compatible family is served
    /// by the OpenAI simulator (same protocol), so a family provider's key is an `openai` sim key.
    pub fn provider_args(&self) -> Vec<String> {
        let mut args: Vec<String> = self
            .urls
            .iter()
            .filter(|(k, _)| k.as_str() != "control")
            .flat_map(|(k, u)| ["--provider-url".to_string(), format!("{k}={u}")])
            .collect();
        for p in llm::compat::FAMILY {
            args.extend(["--provider-url".to_string(), format!("llm.{}={}", p.name, self.urls["llm.openai"])]);
        }
        args
    }
}

/// `switchboard serve` in its own process, logging to a file.
pub struct Server {
    _proc: Proc,
    pub url: String,
    pub log: PathBuf,
    pub dir: PathBuf,
}

#[derive(Clone)]
pub struct ServerOpts<'a> {
    pub env: Vec<(&'a str, String)>,
    pub args: Vec<String>,
}

/// A loopback port free right now, for a process that must know its own address before it
/// starts (`--public-url`). Another process could take it first; tests accept that small race.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Server {
    /// Sandbox mode: no provider keys, simulators in-process.
    pub fn sandbox() -> Server {
        Server::start(ServerOpts { env: vec![], args: vec![] })
    }

    pub fn start(opts: ServerOpts<'_>) -> Server {
        Server::start_with_db(opts, None)
    }

    /// Kill the server process at once (SIGKILL): no shutdown, no final flush.
    pub fn kill(&mut self) {
        let _ = self._proc.child.kill();
        let _ = self._proc.child.wait();
    }

    /// Send SIGTERM (graceful drain) without waiting.
    pub fn terminate(&self) {
        let pid = self._proc.child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().map(|s| s.success()).unwrap_or(false);
        assert!(ok, "kill -TERM {pid}");
    }

    /// Wait up to `within` for the server process to exit; its status, or None if it is still up.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self._proc.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Start on a given store (`sqlite:…` or `postgres://…`) instead of a fresh SQLite file.
    pub fn start_with_db(opts: ServerOpts<'_>, database: Option<String>) -> Server {
        Server::try_start(opts, database).unwrap_or_else(|failure| panic!("{failure}"))
    }

    /// A server that must know its own address before it starts (`--public-url`): `port_args`
    /// names the port; one another process took in the meantime is retried with a new one.
    pub fn start_on_free_port(opts: ServerOpts<'_>, port_args: impl Fn(u16) -> Vec<String>) -> Server {
        for _ in 0..5 {
            let mut attempt = opts.clone();
            attempt.args.extend(port_args(free_port()));
            match Server::try_start(attempt, None) {
                Ok(server) => return server,
                Err(failure) if failure.contains("Address already in use") => continue,
                Err(failure) => panic!("{failure}"),
            }
        }
        panic!("no free port in 5 attempts");
    }

    /// The server, or what it printed and logged when it did not come up.
    fn try_start(opts: ServerOpts<'_>, database: Option<String>) -> Result<Server, String> {
        let dir = std::env::temp_dir().join(format!("sb-test-{}", uuid_like()));
        std::fs::create_dir_all(&dir).expect("tempdir");
        let database = database.unwrap_or_else(|| format!("sqlite:{}", dir.join("sb.db").display()));
        let log = dir.join("server.log");
        let mut cmd = Command::new(bin());
        cmd.current_dir(root())
            .arg("serve")
            .args(if opts.args.iter().any(|a| a == "--listen") { &[][..] } else { &["--listen", "127.0.0.1:0"][..] })
            .arg("--database")
            .arg(&database)
            .args(["--checkpoint-secs", "2"])
            .args(&opts.args)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        // Each server its own spool, unless the test names one (it is the working directory's
        // otherwise, shared by every test).
        if !opts.args.iter().any(|a| a == "--spool") {
            cmd.arg("--spool").arg(dir.join("unbilled.jsonl"));
        }
        // No provider key from the environment leaks into a test server: sandbox mode must be
        // exactly what the test asks for.
        for (k, _) in std::env::vars() {
            if k.ends_with("_API_KEY") {
                cmd.env_remove(k);
            }
        }
        cmd.env_remove("SWITCHBOARD_ADMIN_TOKEN");
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        // A server with provider keys is in production mode: the tests act as its operator.
        let admin =
            opts.env.iter().find(|(k, _)| *k == "SWITCHBOARD_ADMIN_TOKEN").map(|(_, v)| v.clone()).or_else(|| {
                opts.env.iter().any(|(k, _)| k.ends_with("_API_KEY")).then(|| format!("admin-{}", uuid_like()))
            });
        if let Some(t) = &admin {
            cmd.env("SWITCHBOARD_ADMIN_TOKEN", t);
        }
        let mut child = cmd.spawn().expect("spawn server");
        let stdout = child.stdout.take().expect("stdout");
        // The first line is the address; the reader then keeps draining stdout so the server
        // never blocks on a full pipe.
        let (first, line_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = first.send(line);
            for _ in reader.lines() {}
        });
        let line = line_rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")).map(str::to_string) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no address in {line:?}; log: {}", std::fs::read_to_string(&log).unwrap_or_default()));
        };
        if let Some(t) = admin {
            operator_tokens().lock().unwrap().push((url.clone(), t));
        }
        Ok(Server { _proc: Proc { child }, url, log, dir })
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> Value {
        get_json(&format!("{}{path}", self.url))
    }

    pub fn metrics(&self) -> String {
        http_get(&format!("{}/metrics", self.url)).1
    }

    /// Wait (up to 30 s) until a line of `/metrics` satisfies `pred`. Tests that act mid-call
    /// wait for the call's state instead of sleeping a fixed time, which races the call's
    /// start on a loaded machine (the test binaries run in parallel).
    pub fn wait_for_metric(&self, what: &str, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.metrics().lines().any(&pred) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}");
    }

    /// Wait until a session is running.
    pub fn wait_for_session(&self) {
        self.wait_for_metric("a running session", |l| l == "switchboard_sessions_active 1");
    }

    /// Poll a call until its session is closed.
    pub fn wait_closed(&self, call_sid: &str) -> Value {
        Server::wait_closed_at(&self.url, call_sid)
    }

    pub fn wait_closed_at(base: &str, call_sid: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = http_get(&format!("{base}/api/calls/{call_sid}"));
            if status == 200 {
                let v: Value = serde_json::from_str(&body).expect("json");
                if v["status"] == "closed" {
                    return v;
                }
            }
            assert!(Instant::now() < deadline, "call {call_sid} never closed");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Admin tokens of the production-mode servers this test started, by server URL: calls and
/// reads made through these helpers act as the operator.
fn operator_tokens() -> &'static std::sync::Mutex<Vec<(String, String)>> {
    static TOKENS: std::sync::OnceLock<std::sync::Mutex<Vec<(String, String)>>> = std::sync::OnceLock::new();
    TOKENS.get_or_init(Default::default)
}

/// The admin token of the server `url` belongs to, if it runs in production mode.
pub fn operator_token(url: &str) -> Option<String> {
    let tokens = operator_tokens().lock().unwrap();
    tokens.iter().find(|(base, _)| url.starts_with(base.as_str())).map(|(_, t)| t.clone())
}

fn uuid_like() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{t:x}-{}", std::process::id())
}

/// A blocking HTTP GET returning status and body.
pub fn http_get(url: &str) -> (u16, String) {
    http("GET", url, None, operator_token(url).as_deref())
}

/// Blocking HTTP on its own thread, so it works from sync and async tests alike.
pub fn http(method: &str, url: &str, body: Option<&str>, bearer: Option<&str>) -> (u16, String) {
    let (method, url) = (method.to_string(), url.to_string());
    let (body, bearer) = (body.map(str::to_string), bearer.map(str::to_string));
    std::thread::spawn(move || http_inner(&method, &url, body.as_deref(), bearer.as_deref()))
        .join()
        .expect("http thread")
}

fn http_inner(method: &str, url: &str, body: Option<&str>, bearer: Option<&str>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let mut req = c.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("http request");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    })
}

pub fn get_json(url: &str) -> Value {
    let (status, body) = http_get(url);
    assert_eq!(status, 200, "GET {url}: {body}");
    serde_json::from_str(&body).expect("json body")
}

/// Output of one `switchboard call --json` run.
pub struct CallOut {
    pub ok: bool,
    pub lines: Vec<Value>,
    pub stdout: String,
    pub stderr: String,
}

impl CallOut {
    pub fn of(&self, ty: &str) -> Vec<&Value> {
        self.lines.iter().filter(|l| l["type"] == ty).collect()
    }

    pub fn texts(&self, ty: &str) -> Vec<String> {
        self.of(ty).iter().map(|l| l["text"].as_str().unwrap_or("").to_string()).collect()
    }

    /// Agent text per turn, chunks joined.
    pub fn agent_turns(&self) -> Vec<String> {
        let mut turns: Vec<(u64, String)> = Vec::new();
        for l in self.of("agent") {
            let t = l["turn"].as_u64().unwrap_or(0);
            match turns.iter_mut().find(|(id, _)| *id == t) {
                Some((_, s)) => s.push_str(l["text"].as_str().unwrap_or("")),
                None => turns.push((t, l["text"].as_str().unwrap_or("").to_string())),
            }
        }
        turns.into_iter().map(|(_, s)| s.trim().to_string()).collect()
    }

    /// Sum of usage quantities and amounts for one line (e.g. `stt`, `llm.output`).
    pub fn usage_sum(&self, line: &str) -> (f64, i64) {
        self.of("usage").iter().filter(|u| u["line"] == line).fold((0.0, 0), |(q, a), u| {
            (q + u["quantity"].as_f64().unwrap_or(0.0), a + u["amount_micros"].as_i64().unwrap_or(0))
        })
    }

    pub fn call_sid(&self) -> String {
        self.of("end").first().and_then(|e| e["call_sid"].as_str()).unwrap_or("").to_string()
    }
}

pub fn call(server: &str, file: &Path, extra: &[&str]) -> CallOut {
    let mut cmd = Command::new(bin());
    cmd.arg("call").arg(file).args(["--server", server, "--json"]).args(extra);
    // The recordings carry their own trailing silence; tests that want more ask for it.
    if !extra.contains(&"--tail") {
        cmd.args(["--tail", "0"]);
    }
    let own_credential = extra.iter().any(|a| *a == "--token" || *a == "--client-token");
    if let (false, Some(t)) = (own_credential, operator_token(server)) {
        cmd.args(["--token", &t]);
    }
    let out = cmd.output().expect("run switchboard call");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let lines = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    CallOut { ok: out.status.success(), lines, stdout, stderr: String::from_utf8_lossy(&out.stderr).to_string() }
}

/// Duration of a WAV asset in seconds, from its sidecar.
pub fn duration_s(name: &str) -> f64 {
    sidecar(name)["duration_s"].as_f64().expect("duration_s")
}

/// A fresh Postgres database for one test, dropped afterwards. Fails loudly when Postgres is
/// not reachable: these tests never skip.
pub struct PgDb {
    pub url: String,
    name: String,
}

/// The server Postgres tests create their databases on.
pub fn pg_admin_url() -> String {
    std::env::var("SWITCHBOARD_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn psql(sql: &str, db_url: &str) -> String {
    let out = Command::new("psql")
        .args(["-At", "-v", "ON_ERROR_STOP=1", db_url, "-c", sql])
        .output()
        .unwrap_or_else(|e| panic!("psql is required for the Postgres tests (apt-get install postgresql-client): {e}"));
    assert!(
        out.status.success(),
        "Postgres is required at {db_url} (start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

impl PgDb {
    pub fn create() -> PgDb {
        let admin = pg_admin_url();
        let name = format!("switchboard_e2e_{}", uuid_like().replace('-', "_"));
        psql(&format!("CREATE DATABASE {name}"), &admin);
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin);
        PgDb { url: format!("{base}/{name}"), name }
    }

    /// One query's rows, as `psql -At` prints them.
    pub fn query(&self, sql: &str) -> String {
        psql(sql, &self.url)
    }

    /// Every row of every table, as text.
    pub fn dump(&self) -> String {
        let tables = psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", &self.url);
        tables.lines().map(|t| psql(&format!("SELECT * FROM {t}"), &self.url)).collect::<Vec<_>>().join("\n")
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([&pg_admin_url(), "-c", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .output();
    }
}
