//! The vocabulary llama.cpp's convert_hf_to_gguf.py builds from a SentencePiece
//! `tokenizer.model` (`_create_vocab_sentencepiece`): one entry per id up to config.json's
//! `vocab_size`, filled from the model's pieces, then overridden by added_tokens.json and
//! tokenizer_config.json's `added_tokens_decoder`.

use serde_json::Value;

use super::refused;
use super::sentencepiece::{Piece, PieceType};
use super::special_vocab::truthy;
use super::tokenizer::{BYTE, CONTROL, MAX_VOCAB, NORMAL, UNUSED, USER_DEFINED};
use crate::repair::RepairError;

const UNKNOWN: i32 = 2;

/// Score of ids the model does not fill, and of added tokens.
const PAD_SCORE: f32 = -10000.0;
const ADDED_SCORE: f32 = -1000.0;

#[derive(Debug, PartialEq)]
pub(super) struct SpmVocab {
    pub tokens: Vec<String>,
    pub scores: Vec<f32>,
    pub types: Vec<i32>,
}

/// llama.cpp's token type for a piece. It asks the sentencepiece library IsUnknown,
/// IsControl, IsUnused, IsByte in that order, so USER_DEFINED pieces of the model stay
/// NORMAL.
fn piece_type(kind: PieceType) -> i32 {
    match kind {
        PieceType::Unknown => UNKNOWN,
        PieceType::Control => CONTROL,
        PieceType::Unused => UNUSED,
        PieceType::Byte => BYTE,
        PieceType::Normal | PieceType::UserDefined => NORMAL,
    }
}

/// Added tokens some models do not mark special but that are control tokens
/// (`does_token_look_special`).
pub(super) fn looks_special(t: &str) -> bool {
    matches!(t, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with("<｜") && t.ends_with("｜>"))
        || (t.starts_with("<unused") && t.ends_with('>'))
}

/// An id from a side file: a non-negative integer (Python would index from the end with a
/// negative one, which no real file means).
fn token_id(v: &Value, file: &str, what: &str) -> Result<u64, RepairError> {
    v.as_u64().ok_or_else(|| {
        refused(format!(
            "{file}: {what}: id {v} is not a non-negative integer"
        ))
    })
}

/// `vocab_size`: config.json's (`vocab_size_per_layer_input` or `vocab_size`; only this
/// SentencePiece path reads `vocab_size_per_layer_input`), or the number of pieces when it
/// is absent or 0.
pub(super) fn build(
    mut pieces: Vec<Piece>,
    vocab_size: Option<u64>,
    added_tokens: Option<&Value>,
    tokenizer_config: Option<&Value>,
) -> Result<SpmVocab, RepairError> {
    let n = vocab_size.filter(|&n| n > 0).unwrap_or(pieces.len() as u64);
    if n > MAX_VOCAB {
        return Err(refused(format!(
            "vocabulary of {n} tokens is implausibly large"
        )));
    }
    let n = n as usize;
    // Ids the model does not fill are `[PADn]`, UNUSED, PAD_SCORE; pieces past vocab_size
    // are ignored, as llama.cpp ignores them (with a warning).
    pieces.truncate(n);
    let filled = pieces.len();
    let mut tokens = Vec::with_capacity(n);
    let mut scores = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    for p in pieces {
        tokens.push(p.piece);
        scores.push(p.score);
        types.push(piece_type(p.kind));
    }
    tokens.extend((filled..n).map(|i| format!("[PAD{i}]")));
    scores.resize(n, PAD_SCORE);
    types.resize(n, UNUSED);
    let mut v = SpmVocab {
        tokens,
        scores,
        types,
    };
    if let Some(added) = added_tokens {
        let map = added
            .as_object()
            .ok_or_else(|| refused("added_tokens.json is not a JSON object"))?;
        for (text, id) in map {
            let id = token_id(id, "added_tokens.json", text)?;
            if id < n as u64 {
                let i = id as usize;
                v.tokens[i] = text.clone();
                v.scores[i] = ADDED_SCORE;
                v.types[i] = USER_DEFINED;
            }
        }
    }
    let decoder = tokenizer_config
        .and_then(|c| c.get("added_tokens_decoder"))
        .filter(|d| !d.is_null());
    if let Some(decoder) = decoder {
        let map = decoder.as_object().ok_or_else(|| {
            refused("tokenizer_config.json: added_tokens_decoder is not a JSON object")
        })?;
        for (key, data) in map {
            let what = format!("added_tokens_decoder[{key:?}]");
            let id: u64 = key.trim().parse().map_err(|_| {
                refused(format!(
                    "tokenizer_config.json: {what}: the key is not a non-negative integer"
                ))
            })?;
            let content = data.get("content").and_then(Value::as_str).ok_or_else(|| {
                refused(format!(
                    "tokenizer_config.json: {what} has no string content"
                ))
            })?;
            if id >= n as u64 {
                continue;
            }
            let i = id as usize;
            if truthy(data.get("special")) || looks_special(content) {
                v.types[i] = CONTROL;
                v.tokens[i] = content.to_string();
            } else {
                // llama.cpp pre-normalizes the spaces of user-defined tokens.
                v.types[i] = USER_DEFINED;
                v.tokens[i] = content.replace('\u{2581}', " ");
            }
            v.scores[i] = ADDED_SCORE;
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(piece: &str, score: f32, kind: PieceType) -> Piece {
        Piece {
            piece: piece.into(),
            score,
            kind,
        }
    }

    fn pieces() -> Vec<Piece> {
        use PieceType::*;
        vec![
            p("<unk>", 0.0, Unknown),
            p("<s>", 0.0, Control),
            p("</s>", 0.0, Control),
            p("<0x0A>", 0.0, Byte),
            p("▁the", -2.5, Normal),
            p("<sep>", 0.0, UserDefined),
            p("old", 0.0, Unused),
        ]
    }

    #[test]
    fn types_scores_and_padding_follow_llama_cpp() {
        let v = build(pieces(), Some(9), None, None).unwrap();
        assert_eq!(v.types, vec![2, 3, 3, 6, 1, 1, 5, 5, 5]);
        assert_eq!(v.tokens[4], "▁the");
        assert_eq!(v.tokens[7], "[PAD7]");
        assert_eq!(v.scores[4], -2.5);
        assert_eq!(v.scores[8], -10000.0);
        // vocab_size 0 or absent: the model's own size; smaller: the rest is dropped.
        assert_eq!(
            build(pieces(), Some(0), None, None).unwrap().tokens.len(),
            7
        );
        assert_eq!(build(pieces(), None, None, None).unwrap().tokens.len(), 7);
        let v = build(pieces(), Some(3), None, None).unwrap();
        assert_eq!(v.tokens, vec!["<unk>", "<s>", "</s>"]);
    }

    #[test]
    fn added_tokens_override_the_model() {
        let added = json!({"<extra>": 7, "<late>": 50});
        let tc = json!({"added_tokens_decoder": {
            "1": {"content": "<s>", "special": true},
            "6": {"content": "▁hi▁there", "special": false},
            "8": {"content": "<|im_end|>", "special": false}
        }});
        let v = build(pieces(), Some(9), Some(&added), Some(&tc)).unwrap();
        assert_eq!(v.tokens[7], "<extra>");
        assert_eq!((v.types[7], v.scores[7]), (USER_DEFINED, -1000.0));
        assert_eq!((v.types[1], v.scores[1]), (CONTROL, -1000.0));
        assert_eq!(v.tokens[6], " hi there");
        assert_eq!(v.types[6], USER_DEFINED);
        assert_eq!(v.tokens[8], "<|im_end|>");
        assert_eq!(v.types[8], CONTROL, "looks special");
    }

    #[test]
    fn bad_side_files_are_refused() {
        let bad = json!({"<x>": -1});
        assert!(build(pieces(), None, Some(&bad), None).is_err());
        let bad = json!(["<x>"]);
        assert!(build(pieces(), None, Some(&bad), None).is_err());
        let tc = json!({"added_tokens_decoder": {"one": {"content": "x"}}});
        assert!(build(pieces(), None, None, Some(&tc)).is_err());
        let tc = json!({"added_tokens_decoder": {"1": {"special": true}}});
        assert!(build(pieces(), None, None, Some(&tc)).is_err());
        assert!(build(pieces(), Some(1 << 40), None, None).is_err());
    }
}
