//! `model.safetensors.index.json`: which shard holds which tensor.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::finding::Finding;
use crate::load::Input;
use crate::model::StoredPart;

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Compare an index's `weight_map` with the shards actually given.
pub(super) fn check(
    index_path: &str,
    index: &serde_json::Value,
    inputs: &[Input<'_>],
    stored: &[StoredPart],
) -> Vec<Finding> {
    let index_name = file_name(index_path);
    let mut out = Vec::new();
    let Some(map) = index.get("weight_map").and_then(|m| m.as_object()) else {
        out.push(Finding::error(
            "ST_INDEX_MISMATCH",
            None,
            format!("{index_name} has no \"weight_map\" object"),
            "regenerate the index (save_pretrained writes it)",
        ));
        return out;
    };
    let present: HashSet<&str> = inputs.iter().map(|i| file_name(&i.path)).collect();
    let where_stored: HashMap<&str, &str> = stored
        .iter()
        .map(|p| (p.name.as_str(), file_name(&inputs[p.file].path)))
        .collect();
    let mut missing_shards: BTreeMap<&str, u64> = BTreeMap::new();
    let mut misplaced = Vec::new();
    for (tensor, shard) in map {
        let Some(shard) = shard.as_str() else {
            continue;
        };
        let shard = file_name(shard);
        if !present.contains(shard) {
            *missing_shards.entry(shard).or_default() += 1;
            continue;
        }
        match where_stored.get(tensor.as_str()) {
            Some(actual) if *actual == shard => {}
            Some(actual) => misplaced.push(format!("{tensor} (index: {shard}, found in {actual})")),
            None => misplaced.push(format!("{tensor} (index: {shard}, not in any shard)")),
        }
    }
    for (shard, n) in &missing_shards {
        out.push(Finding::error(
            "ST_SHARD_MISSING",
            None,
            format!(
                "{index_name} names shard {shard} for {n} tensor(s), but that file was not given"
            ),
            format!("download {shard} or pass the whole checkpoint directory"),
        ));
    }
    if !misplaced.is_empty() {
        out.push(Finding::error(
            "ST_INDEX_MISMATCH",
            None,
            format!(
                "{index_name} disagrees with the shards for {} tensor(s): {}",
                misplaced.len(),
                misplaced
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            "loaders look tensors up through the index; regenerate it from the shards",
        ));
    }
    let unlisted: Vec<&str> = stored
        .iter()
        .filter(|p| !map.contains_key(&p.name))
        .map(|p| p.name.as_str())
        .collect();
    if !unlisted.is_empty() {
        out.push(Finding::warning(
            "ST_INDEX_MISMATCH",
            unlisted.first().copied(),
            format!(
                "{} stored tensor(s) are missing from {index_name}, so loaders will not find them: {}",
                unlisted.len(),
                unlisted.iter().take(5).copied().collect::<Vec<_>>().join(", ")
            ),
            "regenerate the index from the shards",
        ));
    }
    out
}
