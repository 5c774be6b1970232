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

#[cfg(test)]
mod load_tests {
    use crate::gguf::rawbuilder::{RawGgufBuilder, RawValue};
    use crate::load::{load, Input};
    use crate::source::SliceSource;

    fn shard(no: u16, names: &[&str]) -> Vec<u8> {
        let mut b = RawGgufBuilder::new()
            .kv("split.no", RawValue::U16(no))
            .kv("split.count", RawValue::U16(3))
            .kv("split.tensors.count", RawValue::I32(3));
        if no == 0 {
            b = b.kv("general.architecture", RawValue::Str("llama".into()));
        }
        for n in names {
            b = b.tensor(n, &[8], 0, vec![0; 32]);
        }
        b.build()
    }

    #[test]
    fn a_complete_set_reads_as_one_model() {
        let files = [shard(0, &["a"]), shard(1, &["b"]), shard(2, &["c"])];
        let srcs: Vec<SliceSource<Vec<u8>>> = files.iter().cloned().map(SliceSource::new).collect();
        let inputs: Vec<Input<'_>> = srcs
            .iter()
            .enumerate()
            .map(|(i, s)| Input {
                path: format!("/m/x-{:05}-of-00003.gguf", i + 1),
                source: s,
            })
            .collect();
        let m = load(&inputs).unwrap();
        assert_eq!(m.architecture(), Some("llama"));
        let names: Vec<(&str, usize)> = m
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), t.primary().file))
            .collect();
        assert_eq!(names, vec![("a", 0), ("b", 1), ("c", 2)]);
        assert!(m.findings.is_empty(), "{:?}", m.findings);
    }

    #[test]
    fn missing_shards_are_named() {
        let files = [shard(0, &["a"]), shard(2, &["c"])];
        let srcs: Vec<SliceSource<Vec<u8>>> = files.iter().cloned().map(SliceSource::new).collect();
        let inputs: Vec<Input<'_>> = srcs
            .iter()
            .zip(["/m/x-00001-of-00003.gguf", "/m/x-00003-of-00003.gguf"])
            .map(|(s, p)| Input {
                path: p.into(),
                source: s,
            })
            .collect();
        let m = load(&inputs).unwrap();
        let f = m
            .findings
            .iter()
            .find(|f| f.code == "GGUF_SPLIT_MISSING")
            .expect("missing shard");
        assert!(f.message.contains("x-00002-of-00003.gguf"), "{}", f.message);
        assert!(!m
            .findings
            .iter()
            .any(|f| f.code == "GGUF_SPLIT_TENSOR_COUNT"));
    }
}
