//! Logs and traces of `switchboard serve`.
//!
//! Logs go to stderr: readable text on a terminal, one JSON object per line otherwise (files,
//! journald, collectors), or as `--log-format` says. With an OTLP endpoint configured, the
//! same `tracing` spans (a `session` per call, its `turn`s and provider requests, see the
//! session crate's `trace` module) are also exported as OpenTelemetry traces over OTLP/HTTP
//! (protobuf), batched off the async runtime; [`Telemetry::shutdown`] flushes what is left.

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::time::Duration;
use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Text on a terminal, JSON lines otherwise.
    #[default]
    Auto,
    Text,
    Json,
}

/// The crates whose spans and events make up a trace. Everything else (the HTTP stack the
/// exporter itself uses above all) stays out, so exporting never traces itself.
const TRACED_CRATES: [&str; 11] =
    ["switchboard", "session", "stt", "llm", "tts", "billing", "carrier", "gwauth", "media", "usp", "aws"];

/// How long one export may take, and how long shutdown waits for the last batch.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// The installed logging and tracing; keep it until shutdown.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

/// The OTLP/HTTP traces URL for a collector's base URL (`http://collector:4318` →
/// `http://collector:4318/v1/traces`), as OTLP's `OTEL_EXPORTER_OTLP_ENDPOINT` means it.
pub fn traces_url(base: &str) -> anyhow::Result<url::Url> {
    let base = url::Url::parse(base.trim()).with_context(|| format!("the OTLP endpoint {base:?} is not a URL"))?;
    if !matches!(base.scheme(), "http" | "https") {
        anyhow::bail!("the OTLP endpoint must be an http:// or https:// URL (OTLP/HTTP), not {}", base.scheme());
    }
    let path = format!("{}/v1/traces", base.path().trim_end_matches('/'));
    let mut url = base;
    url.set_path(&path);
    Ok(url)
}

/// Install the log writer and, with `otlp` (a collector's base URL), the trace exporter.
pub fn init(format: LogFormat, otlp: Option<&str>) -> anyhow::Result<Telemetry> {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let terminal = std::io::stderr().is_terminal();
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !terminal,
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(terminal && !json);
    let fmt = if json { fmt.json().boxed() } else { fmt.boxed() };
    let traces = otlp.map(tracer_provider).transpose()?;
    let otel = traces.as_ref().map(|p| {
        let targets = Targets::new().with_targets(TRACED_CRATES.map(|c| (c, Level::INFO)));
        tracing_opentelemetry::layer().with_tracer(p.tracer("switchboard")).with_filter(targets)
    });
    // A second `init` in one process (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(fmt.with_filter(filter)).with(otel).try_init();
    if let Some(url) = otlp {
        tracing::info!(endpoint = %crate::server::redact_password(url), "exporting traces over OTLP/HTTP");
    }
    Ok(Telemetry { traces })
}

/// An OTLP/HTTP (protobuf) exporter to `base`, batched, with service name `switchboard`.
fn tracer_provider(base: &str) -> anyhow::Result<SdkTracerProvider> {
    let url = traces_url(base)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url.as_str())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .context("building the OTLP trace exporter")?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name("switchboard").build();
    Ok(SdkTracerProvider::builder().with_resource(resource).with_batch_exporter(exporter).build())
}

impl Telemetry {
    /// Export the spans still buffered and stop the exporter (graceful shutdown). The flush
    /// blocks on the exporter's thread, so it runs off the async workers.
    pub async fn shutdown(self) {
        let Some(provider) = self.traces else { return };
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(FLUSH_TIMEOUT)).await;
        match flushed {
            Ok(Ok(())) => tracing::info!("traces flushed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "flushing the traces failed"),
            Err(e) => tracing::warn!(error = %e, "flushing the traces failed"),
        }
    }
}
