//! `switchboard serve`: wiring of config, store, providers (or sandbox simulators) and HTTP.

use crate::api::{self, AppState};
use crate::cli::ServeArgs;
use crate::sims::{shutdown_signal, Sims};
use anyhow::Context;
use billing::{ManagedKeys, PlanResolver};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use secrecy::SecretString;
use session::{Providers, SessionDeps, SessionHub};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// The environment variable holding the platform's managed key for `provider`
/// (`DEEPGRAM_API_KEY`, `OPENAI_API_KEY`, `GOOGLE_API_KEY`, …).
pub fn key_env(provider: &str) -> String {
    format!("{}_API_KEY", provider.to_uppercase())
}

/// The providers whose key is AWS credentials (`ACCESS_KEY_ID:SECRET[:TOKEN]`, or the JSON
/// object the credentials API saves), not one opaque string.
pub const AWS_PROVIDERS: [&str; 3] = ["bedrock", "polly", "transcribe"];

/// Every provider this server has an adapter for.
pub fn provider_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> =
        stt::registry::names().chain(tts::registry::names()).chain(llm::registry::names()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Each adapter's public endpoint, keyed `service.provider` like the resolver looks them up.
fn default_urls() -> Vec<(String, &'static str)> {
    let stt = stt::registry::PROVIDERS.iter().map(|e| (format!("stt.{}", e.name), e.default_url));
    let tts = tts::registry::PROVIDERS.iter().map(|e| (format!("tts.{}", e.name), e.default_url));
    let llm = llm::registry::names().filter_map(|n| llm::registry::default_url(n).map(|u| (format!("llm.{n}"), u)));
    stt.chain(tts).chain(llm).collect()
}

pub async fn run(args: ServeArgs) -> anyhow::Result<std::process::ExitCode> {
    let telemetry = crate::telemetry::init(args.log_format, args.otlp_endpoint().as_deref())?;
    let prometheus = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
        )
        .context("configuring metrics")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    session::metrics::describe();

    let (rates, rates_from) = crate::assets::rates(args.rates.as_deref())?;
    let store = open_store(&args.database).await?;
    let node_id = crate::nodes::node_id(args.node_id.as_deref())?;
    if args.lease_secs == 0 {
        anyhow::bail!("--lease-secs must be at least 1");
    }
    let abandoned = store.close_abandoned(&node_id).await.context("closing sessions left open by a previous run")?;
    if abandoned > 0 {
        tracing::warn!(abandoned, "closed sessions a previous run left open, at their last checkpoint");
    }
    let spool = start_spool(&args.spool, store.clone()).await;

    billing::store::seed_plans(store.as_ref()).await.context("seeding the default plans")?;
    // The CSV seeds the store once; after that the store is the source of truth (operator edits
    // survive restarts, new CSV rows are added).
    let added = store.seed_rates(&rates).await.context("seeding the rate table")?;
    if added > 0 {
        tracing::info!(added, "rate table rows seeded from {rates_from}");
    }
    let rates = store.rates().await.context("loading the rate table")?;
    let rates_version = store.rates_version().await.context("reading the rate table version")?;
    let vault = match master_keys()? {
        Some(spec) => Some(Arc::new(billing::vault::Vault::from_spec(&spec).context("master keys")?)),
        None => {
            tracing::info!("no master keys (SWITCHBOARD_MASTER_KEYS or SWITCHBOARD_MASTER_KEYS_FILE): saving org provider keys (BYOK) is off");
            None
        }
    };
    let keys = ManagedKeys::default();
    for provider in provider_names() {
        if let Ok(v) = std::env::var(key_env(provider)) {
            if !v.trim().is_empty() {
                keys.set(provider, SecretString::from(v.trim().to_string()));
            }
        }
    }
    let mut base_urls: HashMap<String, Url> = HashMap::new();
    for (p, u) in default_urls() {
        base_urls.insert(p, Url::parse(u).context("built-in provider URL")?);
    }
    for kv in &args.provider_urls {
        let (p, u) = kv.split_once('=').with_context(|| "--provider-url must be provider=url")?;
        let url = Url::parse(u).with_context(|| format!("--provider-url for {p} is not a URL"))?;
        if p.contains('.') {
            base_urls.insert(p.to_string(), url);
        } else {
            for svc in billing::Service::PROVIDED {
                base_urls.insert(format!("{svc}.{p}"), url.clone());
            }
        }
    }

    let sandbox = keys.is_empty();
    let _sims = if sandbox {
        let mut sim_keys = HashMap::new();
        for p in crate::sims::simulated_providers() {
            let k = crate::sims::key_for(p, &format!("sandbox-{}", uuid::Uuid::new_v4().simple()));
            keys.set(p, SecretString::from(k.clone()));
            sim_keys.insert(p.to_string(), vec![k]);
        }
        // The OpenAI simulator also stands in for the OpenAI-compatible family (Mistral, Groq,
        // xAI, …: the same protocol), so every provider of the rate table is simulated.
        for p in llm::compat::FAMILY {
            let k = format!("sandbox-{}", uuid::Uuid::new_v4().simple());
            keys.set(p.name, SecretString::from(k.clone()));
            sim_keys.entry("openai".to_string()).or_default().push(k);
        }
        let sims = Sims::start(args.calls.as_deref(), &sim_keys, &args.sim).await?;
        base_urls.extend(sims.base_urls());
        if let Some(openai) = sims.base_urls().get("llm.openai").cloned() {
            for p in llm::compat::FAMILY {
                base_urls.insert(format!("llm.{}", p.name), openai.clone());
            }
        }
        tracing::info!(
            simulators = sims.running.len(),
            "sandbox mode: no provider keys configured (DEEPGRAM_API_KEY, OPENAI_API_KEY, …), provider simulators started in-process"
        );
        Some(sims)
    } else {
        tracing::info!(managed = ?keys.providers(), "managed provider keys loaded from the environment");
        None
    };

    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .context("building the HTTP client")?;
    let admin_token = std::env::var("SWITCHBOARD_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()).map(SecretString::from);
    // Sandbox is the demo: nothing to spend and nobody to answer to. Anything else is production.
    let sandbox = sandbox && admin_token.is_none();
    let access = session::AccessConfig {
        sandbox,
        admin_token: admin_token.clone(),
        stream_keys: stream_keys()?,
        carrier_urls: carrier_urls(&args.carrier_urls)?,
        http: http.clone(),
        idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
        jitter: Duration::from_millis(1000),
        public_url: args.public_url.as_deref().map(public_base).transpose()?,
        allow_private_webhooks: args.webhooks_allow_private || sandbox,
    };
    let deps = SessionDeps {
        resolver: PlanResolver::new(rates, keys, base_urls),
        committer: session::Committer::spawn(store.clone()),
        store,
        hub: SessionHub::default(),
        providers: Providers::from_registries(&http),
        agent: billing::AgentSpec::default(),
        org_id: "default".into(),
        checkpoint_every: Duration::from_secs(args.checkpoint_secs.max(1)),
        stt_sample_rate: None,
        tts_sample_rate: None,
        vault,
        rates: Arc::new(session::rates_sync::RatesSync::new(rates_version)),
        node_id,
        access: Arc::new(access),
        drain: Arc::new(session::drain::Drain::default()),
        keep_transcripts: args.transcripts,
        spool: Some(spool),
    };
    if admin_token.is_none() {
        tracing::info!("SWITCHBOARD_ADMIN_TOKEN not set: the admin endpoints are off");
    }
    // The recorder keeps histogram samples until they are folded into buckets; without a
    // periodic upkeep that happens only when /metrics is scraped, so an unscraped server would
    // grow by every sample of every call.
    let upkeep = prometheus.clone();
    // Process metrics (CPU seconds, resident memory, open fds, threads), refreshed with it.
    let process = metrics_process::Collector::default();
    process.describe();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            process.collect();
            upkeep.run_upkeep();
        }
    });
    let deps = Arc::new(deps);
    crate::nodes::start(deps.clone(), Duration::from_secs(args.lease_secs)).await?;
    let state = AppState { deps, prometheus, public_url: args.public_url.clone() };
    let audiosocket = match args.audiosocket_listen {
        Some(a) => {
            if !args.audiosocket_allow_public && !is_private(a.ip()) {
                anyhow::bail!(
                    "--audiosocket-listen {a} is a public address and AudioSocket has no authentication; \
                     use a loopback or private address, or pass --audiosocket-allow-public"
                );
            }
            let l =
                tokio::net::TcpListener::bind(a).await.with_context(|| format!("binding the AudioSocket port {a}"))?;
            Some((l, state.deps.clone()))
        }
        None => None,
    };
    let state_drain = state.deps.drain.clone();
    let app = api::router(state);
    let listener = tokio::net::TcpListener::bind(args.listen.as_str())
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("switchboard listening on http://{addr}{}", if sandbox { " (sandbox)" } else { " (production)" });
    if sandbox {
        tracing::info!(
            "mode: sandbox: no provider keys and no admin token; anonymous calls reach only the default agent"
        );
    } else {
        tracing::info!("mode: production: every media entry point needs a stream token, client token or API key");
    }
    if let Some((l, deps)) = audiosocket {
        let a = l.local_addr()?;
        println!("switchboard audiosocket listening on tcp://{a}");
        tracing::info!(agent = %args.audiosocket_agent, "audiosocket listening on tcp://{a}");
        let config = session::transport::audiosocket::ListenerConfig {
            agent: args.audiosocket_agent.clone(),
            uuid_timeout: Duration::from_millis(args.audiosocket_uuid_timeout_ms.max(1)),
            require_registration: args.audiosocket_require_registration,
        };
        tokio::spawn(session::transport::audiosocket::serve(l, deps, config));
    }
    tracing::info!(%addr, sandbox, "listening");
    // Media goes out in small writes that must not wait for the peer's delayed ACK (Nagle).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let drain = state_drain;
    let drain_for = Duration::from_secs(args.drain_secs);
    let usage_wait = Duration::from_secs(args.usage_wait_secs);
    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown_signal().await;
        drain_calls(&drain, drain_for, usage_wait).await;
        let _ = drained_tx.send(());
    };
    // Once the calls are settled, other open connections (event watchers) get a moment to end.
    let linger = async move {
        let _ = drained_rx.await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    };
    tokio::select! {
        served = std::future::IntoFuture::into_future(axum::serve(listener, app).with_graceful_shutdown(shutdown)) => served.context("serving")?,
        () = linger => tracing::info!("connections still open after the drain are dropped"),
    }
    tracing::info!("shut down");
    telemetry.shutdown().await;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Open the store at `url`; errors name it without its password.
pub async fn open_store(url: &str) -> anyhow::Result<Arc<dyn billing::store::Store>> {
    billing::store::connect(url).await.with_context(|| format!("opening the store {}", redact_password(url)))
}

/// `url` with any password replaced by `***`, for messages and logs.
pub fn redact_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Graceful drain: refuse new calls (`/healthz` 503), let live calls finish for up to
/// `drain_for`, then ask the rest to say a closing line and hang up, wait for every session
/// to settle (final usage written, hold released), and then for usage the store had not taken.
async fn drain_calls(drain: &session::drain::Drain, drain_for: Duration, usage_wait: Duration) {
    drain.begin();
    tracing::info!(
        live = drain.live(),
        drain_secs = drain_for.as_secs(),
        "draining: no new calls; waiting for live calls to finish"
    );
    if drain.wait_idle(drain_for).await {
        tracing::info!("drained: every call finished");
    } else {
        tracing::warn!(live = drain.live(), "drain time is up: ending the remaining calls with a closing line");
        drain.end_calls();
        if !drain.wait_idle(Duration::from_secs(30)).await {
            tracing::error!(live = drain.live(), "calls still running after the closing line; exiting anyway");
        }
    }
    write_usage(drain, usage_wait).await;
}

/// Wait for ended sessions' ledger tasks still trying to write their usage: exiting drops them,
/// and what they hold goes to the spool.
async fn write_usage(drain: &session::drain::Drain, wait: Duration) {
    let sessions = drain.unwritten();
    if sessions == 0 {
        return;
    }
    tracing::warn!(sessions, wait_secs = wait.as_secs(), "waiting for usage the store has not taken yet");
    if drain.wait_written(wait).await {
        tracing::info!("every session's usage is written");
    } else {
        tracing::error!(sessions = drain.unwritten(), "usage still unwritten; exiting (it goes to the spool)");
    }
}

/// How often a running server writes what its spool holds (usage kept while the store was down).
const SPOOL_EVERY: Duration = Duration::from_secs(60);

/// Write what the spool kept from earlier runs before taking calls, then every [`SPOOL_EVERY`]:
/// what the store still refuses stays spooled for the next round.
async fn start_spool(path: &std::path::Path, store: Arc<dyn billing::store::Store>) -> Arc<session::spool::Spool> {
    let spool = Arc::new(session::spool::Spool::new(path));
    replay_spool(&spool, store.as_ref()).await;
    let every = spool.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + SPOOL_EVERY, SPOOL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            replay_spool(&every, store.as_ref()).await;
        }
    });
    spool
}

async fn replay_spool(spool: &session::spool::Spool, store: &dyn billing::store::Store) {
    let path = spool.path().display();
    match spool.replay(store, session::STORE_WAIT).await {
        Ok(r) if r.sessions + r.kept == 0 => {}
        Ok(r) => tracing::warn!(
            sessions = r.sessions, records = r.records, kept = r.kept, spool = %path,
            "spooled usage written to the store"
        ),
        Err(e) => tracing::error!(error = %e, spool = %path, "cannot read the spool; its usage is not billed yet"),
    }
}

/// Loopback, private (RFC 1918, unique-local) and link-local addresses: where an
/// unauthenticated listener may sit.
fn is_private(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// Keys that sign stream and client tokens: `SWITCHBOARD_STREAM_KEYS` or the file named by
/// `SWITCHBOARD_STREAM_KEYS_FILE` (`1:base64,2:base64`, newest last). Nodes sharing a store
/// must share them; without any, one random key serves this process only.
fn stream_keys() -> anyhow::Result<gwauth::stream_token::KeyRing> {
    let spec = match std::env::var("SWITCHBOARD_STREAM_KEYS") {
        Ok(s) if !s.trim().is_empty() => Some(s),
        _ => match std::env::var("SWITCHBOARD_STREAM_KEYS_FILE") {
            Ok(path) => Some(
                std::fs::read_to_string(&path)
                    .with_context(|| format!("reading SWITCHBOARD_STREAM_KEYS_FILE {path}"))?,
            ),
            Err(_) => None,
        },
    };
    match spec {
        Some(spec) => gwauth::stream_token::KeyRing::from_spec(spec.trim())
            .map_err(|e| anyhow::anyhow!("SWITCHBOARD_STREAM_KEYS: {e}")),
        None => {
            tracing::info!("no SWITCHBOARD_STREAM_KEYS: stream tokens are signed with a random key of this process");
            Ok(gwauth::stream_token::KeyRing::random())
        }
    }
}

/// Each carrier's REST API base: the public one, unless `--carrier-url` points elsewhere.
fn carrier_urls(overrides: &[String]) -> anyhow::Result<HashMap<String, Url>> {
    let mut urls = HashMap::new();
    for c in crate::gateways::carriers() {
        if let Some(u) = carrier::default_base(c) {
            urls.insert(c.to_string(), Url::parse(u).context("built-in carrier URL")?);
        }
    }
    for kv in overrides {
        let (c, u) = kv.split_once('=').context("--carrier-url must be carrier=url")?;
        if !crate::gateways::is_carrier(c) {
            let known: Vec<&str> = crate::gateways::carriers().collect();
            anyhow::bail!("--carrier-url: unknown carrier {c:?} ({})", known.join(", "));
        }
        urls.insert(c.to_string(), Url::parse(u).with_context(|| format!("--carrier-url for {c} is not a URL"))?);
    }
    Ok(urls)
}

/// The vault's master keys, from `SWITCHBOARD_MASTER_KEYS` or the file named by
/// `SWITCHBOARD_MASTER_KEYS_FILE` (same `id:base64,…` format). Never part of the config.
pub fn master_keys() -> anyhow::Result<Option<SecretString>> {
    if let Ok(spec) = std::env::var("SWITCHBOARD_MASTER_KEYS") {
        if !spec.trim().is_empty() {
            return Ok(Some(SecretString::from(spec)));
        }
    }
    if let Ok(path) = std::env::var("SWITCHBOARD_MASTER_KEYS_FILE") {
        let spec =
            std::fs::read_to_string(&path).with_context(|| format!("reading SWITCHBOARD_MASTER_KEYS_FILE {path}"))?;
        return Ok(Some(SecretString::from(spec.trim().to_string())));
    }
    Ok(None)
}

/// `--public-url` as a base other paths join onto (a trailing `/` added).
fn public_base(text: &str) -> anyhow::Result<url::Url> {
    let with_slash = if text.ends_with('/') { text.to_string() } else { format!("{text}/") };
    url::Url::parse(&with_slash).with_context(|| format!("--public-url {text:?} is not an absolute URL"))
}

#[cfg(test)]
mod tests {
    use super::default_urls;

    /// Where the three registries meet: every name builds its adapter, once per service, and
    /// has a public endpoint that parses.
    #[test]
    fn every_registered_adapter_builds_once_at_a_valid_endpoint() {
        let http = reqwest::Client::new();
        let stt = stt::registry::names().map(|n| ("stt", n, stt::registry::build(n).is_some()));
        let tts = tts::registry::names().map(|n| ("tts", n, tts::registry::build(n).is_some()));
        let llm = llm::registry::names().map(|n| ("llm", n, llm::registry::build(n, &http).is_some()));
        let all: Vec<_> = stt.chain(tts).chain(llm).collect();
        let urls = default_urls();
        for (service, name, built) in &all {
            assert!(built, "{service}.{name} builds");
            let key = format!("{service}.{name}");
            let url = urls.iter().find(|(k, _)| *k == key).unwrap_or_else(|| panic!("{key} has an endpoint")).1;
            url::Url::parse(url).unwrap_or_else(|e| panic!("{key}: {url}: {e}"));
        }
        let mut keys: Vec<_> = all.iter().map(|(s, n, _)| (*s, *n)).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), all.len(), "no name registered twice in a service");
        assert!(stt::registry::build("nope").is_none() && tts::registry::build("nope").is_none());
        assert!(llm::registry::build("nope", &http).is_none());
    }
}
