//! Operator commands that work on the same store and rate table as the server.

use crate::cli::{KeysCommand, OrgsCommand, RatesCommand};
use anyhow::Context;
use secrecy::ExposeSecret;
use std::process::ExitCode;

pub async fn orgs(cmd: OrgsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        OrgsCommand::Create { name, plan, parent, wallet_micros, database } => {
            let store = crate::server::open_store(&database).await?;
            billing::store::seed_plans(store.as_ref()).await?;
            let (org, key) = crate::orgs::create(store.as_ref(), &name, &plan, parent, wallet_micros, 0).await?;
            println!("org:     {}", org.id);
            println!("plan:    {}", org.plan_id);
            println!("api key: {key}");
            println!("(the key is shown once; only its hash is stored)");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Open the store and make sure its rate table is seeded from the CSV.
async fn rate_store(
    database: &str,
    csv: Option<&std::path::Path>,
) -> anyhow::Result<std::sync::Arc<dyn billing::store::Store>> {
    let store = crate::server::open_store(database).await?;
    let (seed, _) = crate::assets::rates(csv)?;
    store.seed_rates(&seed).await?;
    Ok(store)
}

pub async fn rates(cmd: RatesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RatesCommand::List { rates, database, service, provider } => {
            let table = rate_store(&database, rates.as_deref()).await?.rates().await?;
            println!(
                "{:<10} {:<12} {:<48} {:<20} {:>14} {:<8}",
                "service", "provider", "model", "unit", "price µ$/unit", "managed"
            );
            let mut n = 0;
            for r in table.iter() {
                if service.as_deref().is_some_and(|s| s != r.service)
                    || provider.as_deref().is_some_and(|p| p != r.provider)
                {
                    continue;
                }
                n += 1;
                println!(
                    "{:<10} {:<12} {:<48} {:<20} {:>14} {:<8}{}",
                    r.service,
                    r.provider,
                    r.model,
                    r.unit.as_str(),
                    r.price.0,
                    r.managed,
                    if r.unverified { "  UNVERIFIED: operator must confirm" } else { "" }
                );
            }
            println!("{n} rows");
            Ok(ExitCode::SUCCESS)
        }
        RatesCommand::SetManaged { provider, managed, service, rates, database } => {
            let var = crate::server::key_env(&provider);
            if managed && std::env::var(&var).map_or(true, |v| v.trim().is_empty()) {
                eprintln!("refused: no platform key for {provider} is configured ({var} is not set); sessions could not be served");
                return Ok(ExitCode::FAILURE);
            }
            let store = rate_store(&database, rates.as_deref()).await?;
            let rows = store.set_managed(&provider, service.as_deref(), managed).await?;
            if rows == 0 {
                eprintln!(
                    "no rate rows for provider {provider:?}{}",
                    service.map(|s| format!(" and service {s:?}")).unwrap_or_default()
                );
                return Ok(ExitCode::FAILURE);
            }
            println!("{provider}: managed = {managed} on {rows} rows; servers use it from their next session");
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn keys(cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::GenerateMaster { id } => {
            println!("{}", billing::vault::Vault::generate_key_spec(&id).expose_secret());
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::RotateMaster { database } => {
            let spec = crate::server::master_keys()?.context(
                "set SWITCHBOARD_MASTER_KEYS or SWITCHBOARD_MASTER_KEYS_FILE (old keys first, the new one last)",
            )?;
            let vault = billing::vault::Vault::from_spec(&spec).context("master keys")?;
            let store = crate::server::open_store(&database).await?;
            let (mut moved, mut failed) = (0, 0);
            let creds = store.all_credentials().await?;
            for c in &creds {
                if !vault.is_stale(&c.sealed) {
                    continue;
                }
                match vault.open(&c.org_id, &c.provider, &c.sealed).and_then(|k| vault.seal(&c.org_id, &c.provider, &k))
                {
                    Ok(sealed) => {
                        store.reseal_credential(&c.id, &sealed).await?;
                        moved += 1;
                    }
                    Err(e) => {
                        eprintln!("{} ({}): {e}", c.id, c.provider);
                        failed += 1;
                    }
                }
            }
            println!(
                "{moved} of {} credentials re-encrypted with master key {:?}; {failed} failed",
                creds.len(),
                vault.current_key_id()
            );
            Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}
