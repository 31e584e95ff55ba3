//! Reading a droplet's ledger (`ledger.json`) in tests.

/// Every ledger entry as (release, outcome), oldest first.
pub fn outcomes(l: &serde_json::Value) -> Vec<(u64, String)> {
    l["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["number"].as_u64().unwrap(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}
