//! `switchboard`: the voice session orchestrator's server, its call client and its simulators.

#![forbid(unsafe_code)]

mod answer;
mod api;
mod api_access;
mod api_admin;
mod api_agents;
mod api_auth;
mod api_calls;
mod api_media;
mod api_models;
mod api_org;
mod assets;
mod bench;
mod bench_auth;
mod call;
mod cli;
mod config;
mod gateways;
mod nodes;
mod openai_api;
mod openapi;
mod operator;
mod orgs;
mod server;
mod sims;
mod telemetry;
mod validate;
mod web;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // The config file feeds clap's environment, so it is read first (one thread so far).
    let argv: Vec<String> = std::env::args().collect();
    let config_file = match config::load(&argv) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            return std::process::ExitCode::FAILURE;
        }
    };
    let cli = cli::Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            cli::Command::Serve(args) => server::run(args).await,
            cli::Command::Config(args) => Ok(config::print(&args, config_file.as_deref())),
            cli::Command::Call(args) => call::run(args).await,
            cli::Command::Sim(args) => sims::run(args).await,
            cli::Command::Bench(args) => bench::run(args).await,
            cli::Command::Orgs(cmd) => operator::orgs(cmd).await,
            cli::Command::Rates(cmd) => operator::rates(cmd).await,
            cli::Command::Keys(cmd) => operator::keys(cmd).await,
            cli::Command::Openapi => {
                println!("{}", openapi::to_json(&api::document()));
                Ok(std::process::ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once: a cause whose text the message already carries
/// (an error that prints its source and also exposes it) is not repeated.
fn describe(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
