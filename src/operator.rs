//! Operator commands that work on the same store and rate table as the server.

use crate::cli::{OrgsCommand, RatesCommand};
use anyhow::Context;
use std::process::ExitCode;

pub async fn orgs(cmd: OrgsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        OrgsCommand::Create { name, plan, parent, wallet_micros, database } => {
            let store =
                billing::store::connect(&database).await.with_context(|| format!("opening the store {database}"))?;
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

pub fn rates(cmd: RatesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RatesCommand::List { rates, service, provider } => {
            let text = std::fs::read_to_string(&rates).with_context(|| format!("reading {}", rates.display()))?;
            let table = billing::RateTable::from_csv(&text).with_context(|| format!("parsing {}", rates.display()))?;
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
    }
}
