//! One configuration file, `switchboard.toml`: its keys are the `serve` flags' names
//! (`listen`, `database`, `drain_secs`, …) and the secrets' (`admin_token`, `master_keys_file`,
//! `stream_keys_file`). Layered defaults → file → environment → flags: the file fills in
//! the environment variable of each key the environment does not already set, and clap does the
//! rest. `switchboard config` prints the result, secrets redacted.

use crate::cli::ServeArgs;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// Keys read by the server from the environment itself (secrets and process settings).
const EXTRA_KEYS: [&str; 5] = ["admin_token", "master_keys", "master_keys_file", "stream_keys", "stream_keys_file"];

/// The config file to read: `--config`/`SWITCHBOARD_CONFIG`, else `./switchboard.toml` if
/// present. Looked up before clap runs, since the file feeds clap's environment.
fn path(argv: &[String]) -> Option<PathBuf> {
    let flag = argv.iter().enumerate().find_map(|(i, a)| match a.strip_prefix("--config=") {
        Some(p) => Some(p.to_string()),
        None if a == "--config" => argv.get(i + 1).cloned(),
        None => None,
    });
    let chosen = flag.or_else(|| std::env::var("SWITCHBOARD_CONFIG").ok()).map(PathBuf::from);
    chosen.or_else(|| Some(PathBuf::from("switchboard.toml")).filter(|p| p.is_file()))
}

/// The environment variable a key stands for.
fn env_name(key: &str) -> String {
    format!("SWITCHBOARD_{}", key.to_uppercase().replace('-', "_"))
}

/// Every key the file may set: the `serve` flags that read an environment variable, and the
/// server's own variables.
fn known_keys() -> Vec<String> {
    use clap::CommandFactory;
    let cmd = crate::cli::Cli::command();
    let serve = cmd.find_subcommand("serve");
    let mut keys: Vec<String> = serve
        .into_iter()
        .flat_map(|s| s.get_arguments())
        .filter_map(|a| a.get_env()?.to_str()?.strip_prefix("SWITCHBOARD_").map(str::to_lowercase))
        .collect();
    keys.extend(EXTRA_KEYS.iter().map(|k| k.to_string()));
    keys.sort();
    keys.dedup();
    keys
}

/// Read the config file (if any) into the environment, under what is already set there.
/// Runs before the async runtime starts, while the process has one thread.
pub fn load(argv: &[String]) -> anyhow::Result<Option<PathBuf>> {
    let Some(path) = path(argv) else { return Ok(None) };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading the config file {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let known = known_keys();
    for (key, value) in table {
        let key = key.replace('-', "_");
        if !known.contains(&key) {
            bail!("{}: unknown key {key:?} (known: {})", path.display(), known.join(", "));
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                .collect::<Vec<_>>()
                .join(","),
            other => {
                bail!("{}: {key} must be a string, number, boolean or list, not {}", path.display(), other.type_str())
            }
        };
        let var = env_name(&key);
        if std::env::var_os(&var).is_none() {
            std::env::set_var(var, value);
        }
    }
    Ok(Some(path))
}

/// `switchboard config`: the effective configuration of `serve`, secrets redacted.
pub fn print(args: &ServeArgs, file: Option<&Path>) -> std::process::ExitCode {
    println!("# config file: {}", file.map(|p| p.display().to_string()).unwrap_or_else(|| "none".into()));
    let secret = |var: &str| if std::env::var_os(var).is_some() { "(set)" } else { "(unset)" };
    let lines = [
        ("listen", format!("{:?}", args.listen)),
        ("database", format!("{:?}", crate::server::redact_password(&args.database))),
        (
            "rates",
            format!(
                "{:?}",
                args.rates.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "(built in)".into())
            ),
        ),
        (
            "calls",
            format!(
                "{:?}",
                args.calls.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "(built in)".into())
            ),
        ),
        ("public_url", format!("{:?}", args.public_url.clone().unwrap_or_default())),
        ("provider_urls", format!("{:?}", args.provider_urls)),
        ("carrier_urls", format!("{:?}", args.carrier_urls)),
        ("checkpoint_secs", args.checkpoint_secs.to_string()),
        ("transcripts", args.transcripts.to_string()),
        ("drain_secs", args.drain_secs.to_string()),
        ("usage_wait_secs", args.usage_wait_secs.to_string()),
        ("spool", format!("{:?}", args.spool.display().to_string())),
        ("node_id", format!("{:?}", args.node_id.clone().unwrap_or_else(|| "(random per process)".into()))),
        ("lease_secs", args.lease_secs.to_string()),
        ("idle_timeout_secs", args.idle_timeout_secs.to_string()),
        ("log_format", format!("{:?}", args.log_format).to_lowercase()),
        (
            "otlp_endpoint",
            format!("{:?}", args.otlp_endpoint().map(|u| crate::server::redact_password(&u)).unwrap_or_default()),
        ),
        ("audiosocket_listen", format!("{:?}", args.audiosocket_listen.map(|a| a.to_string()).unwrap_or_default())),
        ("audiosocket_agent", format!("{:?}", args.audiosocket_agent)),
        ("audiosocket_require_registration", args.audiosocket_require_registration.to_string()),
        ("audiosocket_allow_public", args.audiosocket_allow_public.to_string()),
        ("webhooks_allow_private", args.webhooks_allow_private.to_string()),
        ("admin_token", secret("SWITCHBOARD_ADMIN_TOKEN").to_string()),
        ("master_keys", secret("SWITCHBOARD_MASTER_KEYS").to_string()),
        ("master_keys_file", format!("{:?}", std::env::var("SWITCHBOARD_MASTER_KEYS_FILE").unwrap_or_default())),
        ("stream_keys", secret("SWITCHBOARD_STREAM_KEYS").to_string()),
        ("stream_keys_file", format!("{:?}", std::env::var("SWITCHBOARD_STREAM_KEYS_FILE").unwrap_or_default())),
    ];
    for (k, v) in lines {
        println!("{k} = {v}");
    }
    let providers: Vec<String> = crate::server::provider_names()
        .into_iter()
        .filter(|p| std::env::var_os(crate::server::key_env(p)).is_some())
        .map(|p| p.to_string())
        .collect();
    println!("# platform keys set (values not shown): {providers:?}");
    std::process::ExitCode::SUCCESS
}
