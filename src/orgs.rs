//! Org creation, shared by the admin API and `switchboard orgs create`.

use billing::store::{hash_api_key, OrgRow, Store};

/// Create an org with a fresh API key; returns the org and the key (shown once, stored hashed).
pub async fn create(
    store: &dyn Store,
    name: &str,
    plan: &str,
    parent: Option<String>,
    wallet_micros: i64,
    negative_limit_micros: i64,
) -> anyhow::Result<(OrgRow, String)> {
    anyhow::ensure!(!name.trim().is_empty(), "name is empty");
    anyhow::ensure!(store.plan(plan).await?.is_some(), "no plan {plan:?}");
    if let Some(p) = &parent {
        anyhow::ensure!(store.org(p).await?.is_some(), "no parent org {p:?}");
    }
    let org = OrgRow {
        id: format!("org_{}", uuid::Uuid::new_v4().simple()),
        name: name.to_string(),
        plan_id: plan.to_string(),
        parent_org_id: parent,
        wallet_micros,
        credits_used_micros: 0,
        credits_period: String::new(),
        use_own_keys: false,
        wallet_deduction: false,
        negative_limit_micros,
    };
    let key = format!("sk_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    store.create_org(&org, &hash_api_key(&key), &key[..7]).await?;
    Ok((org, key))
}
