//! gguf-split sets: `NAME-00001-of-00003.gguf` … read as one model.

/// If `path` names a shard (`…-0000N-of-0000M.gguf`), the paths of all M shards in order.
pub fn shard_paths(path: &str) -> Option<Vec<String>> {
    let stem = path.strip_suffix(".gguf")?;
    // …-NNNNN-of-MMMMM
    let (head, count) = stem.rsplit_once("-of-")?;
    let (prefix, no) = head.rsplit_once('-')?;
    if no.len() != 5 || count.len() != 5 {
        return None;
    }
    let count: u32 = count.parse().ok()?;
    let _no: u32 = no.parse().ok()?;
    if count == 0 || count > 9999 {
        return None;
    }
    Some(
        (1..=count)
            .map(|i| format!("{prefix}-{i:05}-of-{count:05}.gguf"))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names() {
        assert_eq!(
            shard_paths("/m/llama-00002-of-00003.gguf").unwrap(),
            vec![
                "/m/llama-00001-of-00003.gguf",
                "/m/llama-00002-of-00003.gguf",
                "/m/llama-00003-of-00003.gguf"
            ]
        );
        assert_eq!(shard_paths("/m/llama.gguf"), None);
        assert_eq!(shard_paths("/m/x-1-of-3.gguf"), None);
    }
}
