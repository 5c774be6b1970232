//! The special-token metadata gguf-py's `SpecialVocab` (gguf 0.19.0, as
//! convert_hf_to_gguf.py uses it) derives from tokenizer.json, tokenizer_config.json,
//! config.json and chat_template.jinja: the `tokenizer.ggml.{bos,eos,...}_token_id` keys,
//! `add_bos_token` / `add_eos_token` / `add_sep_token`, the chat template and the normalizer
//! flags. Ported rule for rule, including its quirks: a special token's id is looked up only
//! among tokenizer.json's `added_tokens` (else config.json's `{type}_token_id`), and a
//! tokenizer.json post-processor overrides tokenizer_config.json's `add_*_token`.

use serde_json::{Map, Value};

use crate::meta::MetaEntry;
use crate::repair::RepairError;
use crate::write::gguf::{entry_bool, entry_str, entry_u32};

/// What SpecialVocab found, in the order it found it (which is the order it writes keys).
#[derive(Debug, Default, PartialEq)]
pub(super) struct SpecialVocab {
    pub ids: Vec<(String, u64)>,
    pub add: Vec<(String, bool)>,
    pub chat_template: Option<String>,
    pub lowercase: Option<bool>,
    pub strip_accents: Option<bool>,
}

/// Python truthiness of a JSON value (`if not special_bos and ...`).
pub(super) fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// `processor.get('single')[i].get('SpecialToken', {}).get('id')`.
fn special_id(item: Option<&Value>) -> Option<Value> {
    item?
        .get("SpecialToken")?
        .get("id")
        .filter(|v| truthy(Some(v)))
        .cloned()
}

fn set_add(add: &mut Vec<(String, bool)>, typ: &str, v: bool) {
    match add.iter_mut().find(|(t, _)| t == typ) {
        Some(e) => e.1 = v,
        None => add.push((typ.to_string(), v)),
    }
}

fn add_default(add: &mut Vec<(String, bool)>, typ: &str, v: bool) {
    if !add.iter().any(|(t, _)| t == typ) {
        add.push((typ.to_string(), v));
    }
}

impl SpecialVocab {
    /// `n_vocab`: ids at or above it are skipped, as gguf-py does.
    pub fn load(
        tokenizer: Option<&Value>,
        tokenizer_config: Option<&Value>,
        config: &Value,
        chat_template_jinja: Option<&str>,
        n_vocab: u64,
    ) -> Result<SpecialVocab, RepairError> {
        let mut sv = SpecialVocab::default();
        let mut types: Vec<&str> = vec!["bos", "eos", "unk", "sep", "pad", "cls", "mask"];
        // tokenizer_config is mutated along the way, exactly as SpecialVocab mutates its
        // parsed copy (bos from cls, eos from sep, eot/eom fallbacks).
        let mut tc: Option<Map<String, Value>> =
            tokenizer_config.and_then(Value::as_object).cloned();
        let tc_truthy =
            |tc: &Option<Map<String, Value>>| tc.as_ref().is_some_and(|m| !m.is_empty());
        let get = |tc: &Option<Map<String, Value>>, k: &str| -> Option<Value> {
            tc.as_ref().and_then(|m| m.get(k)).cloned()
        };
        let empty = Vec::new();
        let added_tokens = tokenizer
            .and_then(|t| t.get("added_tokens"))
            .and_then(Value::as_array)
            .unwrap_or(&empty);

        if let Some(tok) = tokenizer {
            if let Some(n) = tok.get("normalizer").filter(|n| truthy(Some(n))) {
                sv.parse_normalizer(n);
            }
            let mut bos = get(&tc, "bos_token");
            let mut cls = get(&tc, "cls_token");
            let mut eos = get(&tc, "eos_token");
            let mut sep = get(&tc, "sep_token");
            if !truthy(bos.as_ref()) && truthy(cls.as_ref()) && tc_truthy(&tc) {
                bos = cls.clone();
                tc.as_mut()
                    .unwrap()
                    .insert("bos_token".into(), bos.clone().unwrap());
            }
            if !truthy(eos.as_ref()) && truthy(sep.as_ref()) && tc_truthy(&tc) {
                eos = sep.clone();
                tc.as_mut()
                    .unwrap()
                    .insert("eos_token".into(), eos.clone().unwrap());
            }
            let post = tok.get("post_processor").filter(|p| truthy(Some(p)));
            let processors: Vec<&Value> = match post {
                None => Vec::new(),
                Some(p) => match p.get("processors").and_then(Value::as_array) {
                    Some(list) => list.iter().collect(),
                    None => vec![p],
                },
            };
            for processor in processors {
                match processor.get("type").and_then(Value::as_str) {
                    Some("ByteLevel") => {
                        add_default(&mut sv.add, "bos", false);
                        add_default(&mut sv.add, "eos", false);
                    }
                    Some("RobertaProcessing") => {
                        for t in ["bos", "eos", "sep"] {
                            set_add(&mut sv.add, t, true);
                        }
                        if !truthy(cls.as_ref()) && tc_truthy(&tc) {
                            cls = processor
                                .get("cls")
                                .and_then(|c| c.get(0))
                                .cloned()
                                .or_else(|| bos.clone());
                            tc.as_mut()
                                .unwrap()
                                .insert("cls_token".into(), cls.clone().unwrap_or(Value::Null));
                        }
                        if !truthy(sep.as_ref()) && tc_truthy(&tc) {
                            sep = processor
                                .get("sep")
                                .and_then(|c| c.get(0))
                                .cloned()
                                .or_else(|| eos.clone());
                            tc.as_mut()
                                .unwrap()
                                .insert("sep_token".into(), sep.clone().unwrap_or(Value::Null));
                        }
                    }
                    Some("TemplateProcessing") => {
                        let single: &[Value] = processor
                            .get("single")
                            .and_then(Value::as_array)
                            .map_or(&[], Vec::as_slice);
                        let pair: &[Value] = processor
                            .get("pair")
                            .and_then(Value::as_array)
                            .map_or(&[], Vec::as_slice);
                        let mut first = None;
                        let mut last = None;
                        if single.len() > 1 {
                            first = special_id(single.first());
                            if let Some(f) = &first {
                                let known = |bos: &Option<Value>, cls: &Option<Value>| {
                                    bos.as_ref() == Some(f) || cls.as_ref() == Some(f)
                                };
                                if !tc_truthy(&tc) {
                                    bos = Some(f.clone());
                                } else if !known(&bos, &cls) {
                                    if !truthy(bos.as_ref()) {
                                        bos = Some(f.clone());
                                        tc.as_mut().unwrap().insert("bos_token".into(), f.clone());
                                    }
                                    if !truthy(cls.as_ref()) {
                                        cls = Some(f.clone());
                                        tc.as_mut().unwrap().insert("cls_token".into(), f.clone());
                                    }
                                }
                                set_add(&mut sv.add, "bos", known(&bos, &cls));
                            }
                            last = special_id(single.last());
                            if let Some(l) = &last {
                                if !tc_truthy(&tc) {
                                    eos = Some(l.clone());
                                } else if eos.as_ref() != Some(l) {
                                    let old = eos.clone().unwrap_or(Value::Null);
                                    let m = tc.as_mut().unwrap();
                                    if !types.contains(&"eot") {
                                        types.push("eot");
                                        m.insert("eot_token".into(), old);
                                    } else if !types.contains(&"eom") {
                                        types.push("eom");
                                        m.insert("eom_token".into(), old);
                                    }
                                    m.insert("eos_token".into(), l.clone());
                                    eos = Some(l.clone());
                                }
                                set_add(&mut sv.add, "eos", eos.as_ref() == Some(l));
                            }
                        }
                        if !pair.is_empty() {
                            let start =
                                usize::from(first.is_some() && special_id(pair.first()) == first);
                            let drop_last = last.is_some() && special_id(pair.last()) == last;
                            let end = if drop_last {
                                pair.len().saturating_sub(1)
                            } else {
                                pair.len()
                            };
                            let mid = if start < end {
                                &pair[start..end]
                            } else {
                                &[][..]
                            };
                            sv.pair_separator(mid, last.is_some(), &sep, &eos, &mut tc);
                        }
                    }
                    _ => {}
                }
            }
        }
        let Some(tc) = tc.filter(|m| !m.is_empty()) else {
            sv.ids_from_config(config, &types, n_vocab)?;
            return Ok(sv);
        };
        sv.chat_template = match tc.get("chat_template") {
            Some(Value::String(s)) => Some(s.clone()),
            // A list of named templates: the one named "default" is tokenizer.chat_template.
            Some(Value::Array(list)) => list
                .iter()
                .find(|c| c.get("name").and_then(Value::as_str) == Some("default"))
                .and_then(|c| c.get("template"))
                .and_then(Value::as_str)
                .map(str::to_string),
            Some(_) => None,
            None => chat_template_jinja.map(str::to_string),
        };
        for typ in &types {
            if let Some(Value::Bool(b)) = tc.get(&format!("add_{typ}_token")) {
                add_default(&mut sv.add, typ, *b);
            }
            let content = match tc.get(&format!("{typ}_token")) {
                Some(Value::String(s)) => s.as_str(),
                Some(Value::Object(o)) => match o.get("content") {
                    Some(Value::String(s)) => s.as_str(),
                    _ => continue,
                },
                _ => continue,
            };
            let id = added_tokens
                .iter()
                .find(|a| a.get("content").and_then(Value::as_str) == Some(content))
                .and_then(|a| a.get("id"));
            sv.set_special(typ, id, n_vocab)?;
        }
        sv.ids_from_config(config, &types, n_vocab)?;
        Ok(sv)
    }

    /// `A [sep] [eos] B` in a TemplateProcessing pair template: whether to add a separator.
    fn pair_separator(
        &mut self,
        mid: &[Value],
        has_last: bool,
        sep: &Option<Value>,
        eos: &Option<Value>,
        tc: &mut Option<Map<String, Value>>,
    ) {
        let seq = |v: Option<&Value>| {
            v.and_then(|x| x.get("Sequence"))
                .and_then(|s| s.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        if mid.is_empty() || seq(mid.first()).as_deref() != Some("A") {
            return;
        }
        if seq(mid.last()).as_deref() != Some("B") {
            return;
        }
        let inner = &mid[1..mid.len() - 1];
        if inner.is_empty() {
            return;
        }
        let is_sep_or_eos = |e: &Value| sep.as_ref() == Some(e) || eos.as_ref() == Some(e);
        let mut add_sep = false;
        if let Some(e) = special_id(inner.first()) {
            if is_sep_or_eos(&e) && !has_last {
                add_sep = true;
            }
        }
        if inner.len() == 2 {
            if let Some(e) = special_id(inner.get(1)) {
                if is_sep_or_eos(&e) {
                    add_sep = true;
                }
            }
        }
        set_add(&mut self.add, "sep", add_sep);
        if add_sep && !truthy(sep.as_ref()) {
            if let Some(m) = tc.as_mut().filter(|m| !m.is_empty()) {
                m.insert("sep_token".into(), eos.clone().unwrap_or(Value::Null));
            }
        }
    }

    fn parse_normalizer(&mut self, n: &Value) {
        match n.get("type").and_then(Value::as_str) {
            Some("Lowercase") => self.lowercase = Some(true),
            Some("StripAccents") => self.strip_accents = Some(true),
            Some("BertNormalizer") => {
                if let Some(v) = n.get("lowercase") {
                    self.lowercase = v.as_bool();
                }
                if let Some(v) = n.get("strip_accents") {
                    self.strip_accents = v.as_bool();
                }
            }
            Some("Sequence") => {
                for inner in n
                    .get("normalizers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    self.parse_normalizer(inner);
                }
            }
            _ => {}
        }
    }

    /// `_set_special_token`: integers only; the first id found for a type wins.
    fn set_special(
        &mut self,
        typ: &str,
        id: Option<&Value>,
        n_vocab: u64,
    ) -> Result<(), RepairError> {
        let Some(id) = id.filter(|v| v.is_i64() || v.is_u64()) else {
            return Ok(());
        };
        let Some(id) = id.as_u64() else {
            return Err(RepairError::Refused(format!(
                "invalid value for special token type {typ}: {id}"
            )));
        };
        if id < n_vocab && !self.ids.iter().any(|(t, _)| t == typ) {
            self.ids.push((typ.to_string(), id));
        }
        Ok(())
    }

    /// `_try_load_from_config_json`: `{type}_token_id` at the top or in `text_config`.
    fn ids_from_config(
        &mut self,
        config: &Value,
        types: &[&str],
        n_vocab: u64,
    ) -> Result<(), RepairError> {
        for typ in types {
            let key = format!("{typ}_token_id");
            let id = config
                .get(&key)
                .filter(|v| !v.is_null())
                .or_else(|| config.get("text_config").and_then(|t| t.get(&key)));
            self.set_special(typ, id, n_vocab)?;
        }
        Ok(())
    }

    /// The GGUF entries `add_to_gguf` writes (types without a GGUF key are skipped, as
    /// gguf-py skips them with a warning).
    pub fn entries(&self) -> Vec<MetaEntry> {
        let mut out = Vec::new();
        for (typ, id) in &self.ids {
            let key = match typ.as_str() {
                "bos" => "bos_token_id",
                "eos" => "eos_token_id",
                "unk" => "unknown_token_id",
                "sep" => "seperator_token_id",
                "pad" => "padding_token_id",
                "mask" => "mask_token_id",
                "eot" => "eot_token_id",
                "eom" => "eom_token_id",
                _ => continue,
            };
            if let Ok(id) = u32::try_from(*id) {
                out.push(entry_u32(&format!("tokenizer.ggml.{key}"), id));
            }
        }
        for (typ, v) in &self.add {
            if matches!(typ.as_str(), "bos" | "eos" | "sep") {
                out.push(entry_bool(&format!("tokenizer.ggml.add_{typ}_token"), *v));
            }
        }
        if let Some(t) = &self.chat_template {
            out.push(entry_str("tokenizer.chat_template", t));
        }
        if let Some(v) = self.lowercase {
            out.push(entry_bool("tokenizer.ggml.normalizer.lowercase", v));
        }
        if let Some(v) = self.strip_accents {
            out.push(entry_bool("tokenizer.ggml.normalizer.strip_accents", v));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids(sv: &SpecialVocab) -> Vec<(&str, u64)> {
        sv.ids.iter().map(|(t, i)| (t.as_str(), *i)).collect()
    }

    fn adds(sv: &SpecialVocab) -> Vec<(&str, bool)> {
        sv.add.iter().map(|(t, b)| (t.as_str(), *b)).collect()
    }

    #[test]
    fn without_tokenizer_json_ids_come_from_config_json_only() {
        // tokenizer_config names "<s>", but with no tokenizer.json there is no added token
        // to find it in: gguf-py takes config.json's ids.
        let tc = json!({"bos_token": "<s>", "eos_token": {"content": "</s>"},
            "add_bos_token": true, "add_eos_token": false, "chat_template": "{{ x }}"});
        let cfg = json!({"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 999});
        let sv = SpecialVocab::load(None, Some(&tc), &cfg, None, 320).unwrap();
        assert_eq!(
            ids(&sv),
            vec![("bos", 1), ("eos", 2)],
            "pad 999 is out of range"
        );
        assert_eq!(adds(&sv), vec![("bos", true), ("eos", false)]);
        assert_eq!(sv.chat_template.as_deref(), Some("{{ x }}"));
    }

    #[test]
    fn template_processing_sets_add_bos_and_overrides_tokenizer_config() {
        let tok = json!({
            "added_tokens": [{"id": 0, "content": "<unk>"}, {"id": 1, "content": "<s>"}, {"id": 2, "content": "</s>"}],
            "normalizer": {"type": "Sequence", "normalizers": [{"type": "Lowercase"}]},
            "post_processor": {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "B"}}]}
        });
        let tc = json!({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
            "add_bos_token": false, "add_eos_token": false});
        let sv = SpecialVocab::load(Some(&tok), Some(&tc), &json!({}), Some("jinja"), 320).unwrap();
        // post_processor's add_bos wins over add_bos_token false; eos is not in the
        // template, so add_eos comes from tokenizer_config.
        // The pair template `<s> A <s> B` has no separator: add_sep_token false.
        assert_eq!(
            adds(&sv),
            vec![("bos", true), ("sep", false), ("eos", false)]
        );
        assert_eq!(ids(&sv), vec![("bos", 1), ("eos", 2), ("unk", 0)]);
        assert_eq!(sv.lowercase, Some(true));
        assert_eq!(sv.chat_template.as_deref(), Some("jinja"));
        let keys: Vec<String> = sv.entries().iter().map(|e| e.key.clone()).collect();
        assert_eq!(
            keys,
            [
                "tokenizer.ggml.bos_token_id",
                "tokenizer.ggml.eos_token_id",
                "tokenizer.ggml.unknown_token_id",
                "tokenizer.ggml.add_bos_token",
                "tokenizer.ggml.add_sep_token",
                "tokenizer.ggml.add_eos_token",
                "tokenizer.chat_template",
                "tokenizer.ggml.normalizer.lowercase"
            ]
        );
    }

    #[test]
    fn a_trailing_special_token_other_than_eos_becomes_eos_and_the_old_one_eot() {
        let tok = json!({
            "added_tokens": [{"id": 5, "content": "<|end|>"}, {"id": 6, "content": "<|eot|>"}],
            "post_processor": {"type": "TemplateProcessing",
                "single": [{"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "<|eot|>"}}]}
        });
        let tc = json!({"eos_token": "<|end|>"});
        let sv = SpecialVocab::load(Some(&tok), Some(&tc), &json!({}), None, 10).unwrap();
        assert_eq!(ids(&sv), vec![("eos", 6), ("eot", 5)]);
        assert_eq!(adds(&sv), vec![("eos", true)]);
    }

    #[test]
    fn byte_level_defaults_and_roberta() {
        let tok =
            json!({"post_processor": {"type": "Sequence", "processors": [{"type": "ByteLevel"}]}});
        let tc = json!({"add_bos_token": true});
        let sv = SpecialVocab::load(Some(&tok), Some(&tc), &json!({}), None, 10).unwrap();
        // The ByteLevel default comes first; tokenizer_config cannot change it.
        assert_eq!(adds(&sv), vec![("bos", false), ("eos", false)]);
        let tok = json!({"post_processor": {"type": "RobertaProcessing", "cls": ["<s>", 0], "sep": ["</s>", 2]},
            "added_tokens": [{"id": 0, "content": "<s>"}, {"id": 2, "content": "</s>"}]});
        let tc = json!({"bos_token": "<s>"});
        let sv = SpecialVocab::load(Some(&tok), Some(&tc), &json!({}), None, 10).unwrap();
        assert_eq!(adds(&sv), vec![("bos", true), ("eos", true), ("sep", true)]);
        assert_eq!(ids(&sv), vec![("bos", 0), ("sep", 2), ("cls", 0)]);
        // cls has no GGUF key: not written.
        assert!(!sv.entries().iter().any(|e| e.key.contains("cls")));
    }

    #[test]
    fn negative_ids_are_refused() {
        let cfg = json!({"bos_token_id": -1});
        assert!(SpecialVocab::load(None, None, &cfg, None, 10).is_err());
    }
}
