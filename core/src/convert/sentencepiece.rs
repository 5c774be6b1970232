//! A reader for SentencePiece's `tokenizer.model`: the protobuf `ModelProto`, decoded by
//! hand because only its vocabulary is needed. Field 1 of the model is the repeated
//! `SentencePiece {1: piece (string), 2: score (float), 3: type (enum)}`; every other field
//! (trainer and normalizer specs, self-test data, extensions) is skipped by its wire type.
//!
//! The file is untrusted: every length is checked against the bytes that remain before it is
//! used, nothing is allocated by a length read from the file, and every error names the byte
//! offset and the field where decoding stopped.

use std::fmt;

/// `SentencePiece.Type`, as sentencepiece_model.proto numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceType {
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

impl PieceType {
    /// proto2 enums are closed: a value outside the enum leaves the field unset, and an
    /// unset type reads as its default, NORMAL (what the sentencepiece library then sees).
    fn from_wire(v: u64) -> PieceType {
        match v {
            2 => PieceType::Unknown,
            3 => PieceType::Control,
            4 => PieceType::UserDefined,
            5 => PieceType::Unused,
            6 => PieceType::Byte,
            _ => PieceType::Normal,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    pub kind: PieceType,
}

/// Why `tokenizer.model` could not be read: where (byte offset in the file), in which field
/// (a path such as `pieces[3].piece`), and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpmError {
    pub offset: usize,
    pub field: String,
    pub what: String,
}

impl fmt::Display for SpmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tokenizer.model: byte {}: {}: {}",
            self.offset, self.field, self.what
        )
    }
}

impl std::error::Error for SpmError {}

// Protobuf wire types.
const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

/// A cursor over a slice of the file, which knows where the slice starts in the file so
/// errors carry file offsets.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], base: usize) -> Self {
        Reader {
            bytes,
            pos: 0,
            base,
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn err(&self, field: &str, what: impl Into<String>) -> SpmError {
        SpmError {
            offset: self.offset(),
            field: field.to_string(),
            what: what.into(),
        }
    }

    /// A base-128 varint of at most 10 bytes (the most a u64 takes).
    fn varint(&mut self, field: &str) -> Result<u64, SpmError> {
        let start = self.offset();
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(SpmError {
                    offset: start,
                    field: field.to_string(),
                    what: "varint cut off by the end of the data".into(),
                });
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(SpmError {
            offset: start,
            field: field.to_string(),
            what: "varint longer than 10 bytes".into(),
        })
    }

    fn take(&mut self, n: u64, field: &str) -> Result<&'a [u8], SpmError> {
        let left = self.bytes.len() - self.pos;
        if n > left as u64 {
            return Err(self.err(
                field,
                format!("length {n} runs past the end of the data ({left} bytes left)"),
            ));
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    /// A field key: (field number, wire type).
    fn key(&mut self, field: &str) -> Result<(u64, u64), SpmError> {
        let at = self.offset();
        let k = self.varint(field)?;
        let number = k >> 3;
        if number == 0 {
            return Err(SpmError {
                offset: at,
                field: field.to_string(),
                what: "field number 0 is not valid protobuf".into(),
            });
        }
        Ok((number, k & 7))
    }

    /// Skip a field of an unneeded number by its wire type.
    fn skip(&mut self, wire: u64, field: &str) -> Result<(), SpmError> {
        match wire {
            VARINT => self.varint(field).map(|_| ()),
            FIXED64 => self.take(8, field).map(|_| ()),
            LEN => {
                let n = self.varint(field)?;
                self.take(n, field).map(|_| ())
            }
            FIXED32 => self.take(4, field).map(|_| ()),
            other => Err(self.err(
                field,
                format!("wire type {other} (groups or invalid) is not used by sentencepiece"),
            )),
        }
    }

    /// The bytes of a length-delimited field, with their offset in the file.
    fn delimited(&mut self, field: &str) -> Result<(&'a [u8], usize), SpmError> {
        let n = self.varint(field)?;
        let at = self.offset();
        Ok((self.take(n, field)?, at))
    }
}

fn expect_wire(r: &Reader<'_>, wire: u64, want: u64, field: &str) -> Result<(), SpmError> {
    if wire == want {
        Ok(())
    } else {
        Err(r.err(field, format!("wire type {wire}, expected {want}")))
    }
}

fn parse_piece(bytes: &[u8], base: usize, index: usize) -> Result<Piece, SpmError> {
    let mut r = Reader::new(bytes, base);
    let mut piece = Piece {
        piece: String::new(),
        score: 0.0,
        kind: PieceType::Normal,
    };
    // Like protobuf, a repeated scalar field keeps its last value.
    while !r.at_end() {
        let (number, wire) = r.key(&format!("pieces[{index}]"))?;
        match number {
            1 => {
                let field = format!("pieces[{index}].piece");
                expect_wire(&r, wire, LEN, &field)?;
                let (text, at) = r.delimited(&field)?;
                piece.piece = std::str::from_utf8(text)
                    .map_err(|e| SpmError {
                        offset: at + e.valid_up_to(),
                        field,
                        what: "piece is not valid UTF-8".into(),
                    })?
                    .to_string();
            }
            2 => {
                let field = format!("pieces[{index}].score");
                expect_wire(&r, wire, FIXED32, &field)?;
                let b = r.take(4, &field)?;
                piece.score = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            3 => {
                let field = format!("pieces[{index}].type");
                expect_wire(&r, wire, VARINT, &field)?;
                piece.kind = PieceType::from_wire(r.varint(&field)?);
            }
            n => r.skip(wire, &format!("pieces[{index}] field {n}"))?,
        }
    }
    Ok(piece)
}

/// The vocabulary of a SentencePiece `ModelProto`, in id order.
pub fn parse_model(bytes: &[u8]) -> Result<Vec<Piece>, SpmError> {
    let mut r = Reader::new(bytes, 0);
    let mut pieces = Vec::new();
    while !r.at_end() {
        let (number, wire) = r.key("model")?;
        if number == 1 {
            let field = format!("pieces[{}]", pieces.len());
            expect_wire(&r, wire, LEN, &field)?;
            let (body, at) = r.delimited(&field)?;
            pieces.push(parse_piece(body, at, pieces.len())?);
        } else {
            r.skip(wire, &format!("model field {number}"))?;
        }
    }
    if pieces.is_empty() {
        return Err(SpmError {
            offset: 0,
            field: "pieces".into(),
            what: "the model holds no pieces (is this a SentencePiece model?)".into(),
        });
    }
    Ok(pieces)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A `ModelProto` holding `pieces` as (piece, score, type number).
    pub(crate) fn model_bytes(pieces: &[(&str, f32, u64)]) -> Vec<u8> {
        model(
            &pieces
                .iter()
                .map(|&(t, s, k)| piece(t, Some(s), Some(k)))
                .collect::<Vec<_>>(),
        )
    }

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn field_len(number: u64, body: &[u8], out: &mut Vec<u8>) {
        varint(number << 3 | LEN, out);
        varint(body.len() as u64, out);
        out.extend_from_slice(body);
    }

    fn piece(text: &str, score: Option<f32>, kind: Option<u64>) -> Vec<u8> {
        let mut p = Vec::new();
        field_len(1, text.as_bytes(), &mut p);
        if let Some(s) = score {
            varint(2 << 3 | FIXED32, &mut p);
            p.extend_from_slice(&s.to_le_bytes());
        }
        if let Some(k) = kind {
            varint(3 << 3 | VARINT, &mut p);
            varint(k, &mut p);
        }
        p
    }

    fn model(pieces: &[Vec<u8>]) -> Vec<u8> {
        let mut m = Vec::new();
        for p in pieces {
            field_len(1, p, &mut m);
        }
        m
    }

    #[test]
    fn reads_pieces_scores_and_types_and_skips_other_fields() {
        let mut m = model(&[
            piece("<unk>", Some(0.0), Some(2)),
            piece("<s>", None, Some(3)),
            piece("▁the", Some(-1.5), None),
            piece("<0x0A>", Some(0.0), Some(6)),
            piece("<mask>", Some(0.0), Some(4)),
            piece("old", Some(0.0), Some(5)),
        ]);
        // A trainer spec (field 2) with nested fields, a fixed64, a varint and a fixed32 at
        // the top level: all skipped.
        let mut spec = Vec::new();
        field_len(1, b"input.txt", &mut spec);
        varint(3 << 3 | VARINT, &mut spec);
        varint(320, &mut spec);
        field_len(2, &spec, &mut m);
        varint(9 << 3 | FIXED64, &mut m);
        m.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        varint(10 << 3 | VARINT, &mut m);
        varint(u64::MAX, &mut m);
        varint(11 << 3 | FIXED32, &mut m);
        m.extend_from_slice(&[0; 4]);
        let p = parse_model(&m).unwrap();
        let kinds: Vec<PieceType> = p.iter().map(|p| p.kind).collect();
        use PieceType::*;
        assert_eq!(
            kinds,
            vec![Unknown, Control, Normal, Byte, UserDefined, Unused]
        );
        assert_eq!(p[2].piece, "▁the");
        assert_eq!(p[2].score, -1.5);
        assert_eq!(p[1].score, 0.0, "absent score reads as the default 0");
    }

    /// A model trained by the sentencepiece library (scripts/llama-cpp-check.py
    /// --spm-fixture: BPE, byte fallback, a user-defined and a control symbol) and its pieces
    /// as protobuf's own decoder reads them.
    const REAL_MODEL: &[u8] = include_bytes!("testdata/llama-bpe.model");
    const REAL_PIECES: &str = include_str!("testdata/llama-bpe.pieces.json");

    #[test]
    fn reads_a_model_written_by_the_sentencepiece_library() {
        let want: Vec<(String, f64, u64)> = serde_json::from_str(REAL_PIECES).unwrap();
        let got = parse_model(REAL_MODEL).unwrap();
        assert_eq!(got.len(), want.len());
        for (i, (g, (piece, score, kind))) in got.iter().zip(&want).enumerate() {
            assert_eq!(&g.piece, piece, "piece {i}");
            assert_eq!(g.score.to_bits(), (*score as f32).to_bits(), "score {i}");
            assert_eq!(g.kind as u64, *kind, "type {i}");
        }
        let kinds: std::collections::BTreeSet<u64> = got.iter().map(|p| p.kind as u64).collect();
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), vec![1, 2, 3, 4, 6]);
        // Every prefix of the real file is a model with the first pieces (the specs follow
        // the pieces) or an error, never a panic.
        for cut in 0..REAL_MODEL.len() {
            if let Ok(p) = parse_model(&REAL_MODEL[..cut]) {
                assert!(got.starts_with(&p), "cut {cut}");
            }
        }
    }

    #[test]
    fn unknown_enum_values_read_as_normal_and_later_values_win() {
        let mut p = piece("a", Some(1.0), Some(99));
        p.extend(piece("b", Some(2.0), None));
        let got = parse_model(&model(&[p])).unwrap();
        assert_eq!(
            got,
            vec![Piece {
                piece: "b".into(),
                score: 2.0,
                kind: PieceType::Normal
            }]
        );
    }

    #[test]
    fn every_truncation_is_an_error_with_an_offset_never_a_panic() {
        let m = model(&[
            piece("<unk>", Some(0.0), Some(2)),
            piece("▁hello", Some(-3.25), Some(1)),
        ]);
        assert!(parse_model(&m).is_ok());
        for cut in 1..m.len() {
            let Err(e) = parse_model(&m[..cut]) else {
                // Cutting between two whole pieces leaves a valid shorter model.
                assert_eq!(parse_model(&m[..cut]).unwrap().len(), 1, "cut {cut}");
                continue;
            };
            assert!(e.offset <= cut, "cut {cut}: {e}");
            assert!(e.to_string().starts_with("tokenizer.model: byte "), "{e}");
        }
    }

    #[test]
    fn hostile_lengths_and_varints_are_refused() {
        // A piece claiming 2^62 bytes.
        let mut m = Vec::new();
        varint(1 << 3 | LEN, &mut m);
        varint(1 << 62, &mut m);
        m.extend_from_slice(b"abc");
        let e = parse_model(&m).unwrap_err();
        assert_eq!(e.field, "pieces[0]");
        assert!(e.what.contains("runs past the end"), "{e}");
        assert_eq!(e.offset, m.len() - 3);

        // An 11-byte varint.
        let mut m = vec![1 << 3 | LEN as u8];
        m.extend_from_slice(&[0xff; 10]);
        m.push(0);
        let e = parse_model(&m).unwrap_err();
        assert!(e.what.contains("longer than 10 bytes"), "{e}");
        assert_eq!(e.offset, 1);

        // A varint cut off.
        let e = parse_model(&[0x0a, 0x80]).unwrap_err();
        assert!(e.what.contains("cut off"), "{e}");

        // A piece string of the wrong wire type, a score that is not fixed32.
        let mut bad = Vec::new();
        varint(1 << 3 | VARINT, &mut bad);
        varint(5, &mut bad);
        let e = parse_model(&model(&[bad])).unwrap_err();
        assert_eq!(e.field, "pieces[0].piece");
        let mut bad = piece("x", None, None);
        varint(2 << 3 | VARINT, &mut bad);
        varint(5, &mut bad);
        let e = parse_model(&model(&[bad])).unwrap_err();
        assert_eq!(e.field, "pieces[0].score");

        // Groups, field number 0, invalid UTF-8, no pieces at all.
        assert!(parse_model(&[2 << 3 | 3])
            .unwrap_err()
            .what
            .contains("wire type 3"));
        assert!(parse_model(&[0x02, 0x00])
            .unwrap_err()
            .what
            .contains("field number 0"));
        let mut bad = Vec::new();
        field_len(1, &[b'a', 0xff], &mut bad);
        let e = parse_model(&model(&[bad])).unwrap_err();
        assert!(e.what.contains("UTF-8"), "{e}");
        assert_eq!(e.offset, 5, "offset of the bad byte in the file");
        assert!(parse_model(&[]).unwrap_err().what.contains("no pieces"));
        let mut only_spec = Vec::new();
        field_len(2, b"", &mut only_spec);
        assert!(parse_model(&only_spec).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        // A fixed-seed xorshift: a few thousand garbage inputs, some starting with a valid
        // model prefix.
        let valid = model(&[
            piece("<unk>", Some(0.0), Some(2)),
            piece("a", Some(-1.0), None),
        ]);
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for i in 0..4000 {
            let len = (next() % 64) as usize;
            let mut b: Vec<u8> = if i % 2 == 0 {
                valid[..(next() as usize % valid.len())].to_vec()
            } else {
                Vec::new()
            };
            b.extend((0..len).map(|_| next() as u8));
            let _ = parse_model(&b);
        }
    }
}
