//! Runs a process the way systemd would start an instance of a template unit: the unit's
//! `Environment=`, `EnvironmentFile=` and `ExecStart=` lines with `%i` set, so the unit file in
//! `deploy/` is what the tests exercise (systemd itself does not run in the test container).
//! Paths under `/etc/switchboard` are read from a test directory instead, and the installed
//! binary's path is the one cargo built.

use super::{bin, Proc};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a template unit's `[Service]` section says to run.
pub struct Unit {
    environment: Vec<String>,
    environment_files: Vec<String>,
    exec_start: Vec<String>,
}

/// A node started from the unit: its process, printed address and log file.
pub struct UnitProc {
    pub proc: Proc,
    pub url: String,
    pub log: PathBuf,
}

impl Unit {
    pub fn read(path: &Path) -> Unit {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let mut unit = Unit { environment: vec![], environment_files: vec![], exec_start: vec![] };
        for line in text.lines().map(str::trim) {
            if let Some(v) = line.strip_prefix("Environment=") {
                unit.environment.extend(split_words(v));
            } else if let Some(v) = line.strip_prefix("EnvironmentFile=") {
                unit.environment_files.push(v.to_string());
            } else if let Some(v) = line.strip_prefix("ExecStart=") {
                unit.exec_start = split_words(v);
            }
        }
        assert!(!unit.exec_start.is_empty(), "{} has no ExecStart=", path.display());
        unit
    }

    /// The environment of instance `instance`: `Environment=` first, then each
    /// `EnvironmentFile=` in order (later settings win, as in systemd); `-` files may be absent.
    pub fn env(&self, instance: &str, etc: &Path) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for kv in &self.environment {
            let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("Environment= entry {kv:?}"));
            env.insert(k.to_string(), v.replace("%i", instance));
        }
        for f in &self.environment_files {
            let (optional, f) = f.strip_prefix('-').map(|f| (true, f)).unwrap_or((false, f.as_str()));
            let path = local(&f.replace("%i", instance), etc);
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(_) if optional => continue,
                Err(e) => panic!("EnvironmentFile {}: {e}", path.display()),
            };
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
                let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("{}: {line:?}", path.display()));
                env.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
            }
        }
        env
    }

    /// Start instance `instance` with its config files in `etc`; waits for its address.
    pub fn start(&self, instance: &str, etc: &Path) -> UnitProc {
        let program = &self.exec_start[0];
        assert!(program.ends_with("/switchboard"), "ExecStart= runs {program}, not the switchboard binary");
        let log = etc.join(format!("{instance}.log"));
        let mut cmd = Command::new(bin());
        cmd.args(self.exec_start[1..].iter().map(|a| a.replace("%i", instance)))
            .current_dir(etc)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env(instance, etc))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        let mut child = cmd.spawn().expect("spawn the unit's ExecStart");
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        reader.read_line(&mut line).expect("the node prints its address");
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).map(str::to_string);
        let url = url.unwrap_or_else(|| {
            panic!(
                "node {instance}: no address in {line:?}; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        std::thread::spawn(move || for _ in reader.lines() {});
        UnitProc { proc: Proc { child }, url, log }
    }
}

/// `/etc/switchboard/…` read from the test's own directory.
fn local(path: &str, etc: &Path) -> PathBuf {
    match path.strip_prefix("/etc/switchboard/") {
        Some(rest) => etc.join(rest),
        None => PathBuf::from(path),
    }
}

/// systemd's word splitting, as far as these lines use it: spaces, and double quotes.
fn split_words(s: &str) -> Vec<String> {
    let mut words = vec![];
    let (mut cur, mut quoted) = (String::new(), false);
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}
