//! `--json` output: pretty JSON byte for byte as `serde_json::to_string_pretty` writes it
//! (two-space indent), but with each line break and its indentation written in one call
//! instead of one per level. A 262,144-token vocabulary is 262,144 lines at depth 3.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::Formatter;

/// Indentation written in one piece up to this depth; deeper levels add two spaces a call.
const MAX_DEPTH: usize = 32;

/// `",\n"` followed by `2 * MAX_DEPTH` spaces.
const BREAK: [u8; 2 + 2 * MAX_DEPTH] = {
    let mut b = [b' '; 2 + 2 * MAX_DEPTH];
    b[0] = b',';
    b[1] = b'\n';
    b
};

/// serde_json's `PrettyFormatter` with fewer writes.
#[derive(Default)]
pub struct Pretty {
    depth: usize,
    has_value: bool,
}

impl Pretty {
    fn line_break<W: ?Sized + Write>(&self, w: &mut W, comma: bool) -> io::Result<()> {
        let from = if comma { 0 } else { 1 };
        if self.depth <= MAX_DEPTH {
            return w.write_all(&BREAK[from..2 + 2 * self.depth]);
        }
        w.write_all(&BREAK[from..])?;
        for _ in MAX_DEPTH..self.depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.line_break(w, false)?;
        }
        w.write_all(bracket)
    }
}

impl Formatter for Pretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.line_break(w, !first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.line_break(w, !first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Write `value` as pretty JSON followed by a newline, to stdout, buffered.
pub fn print_pretty<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    write_pretty(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

pub fn write_pretty<W: Write, T: Serialize + ?Sized>(w: W, value: &T) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(w, Pretty::default());
    value.serialize(&mut ser)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_what_serde_json_pretty_writes() {
        let mut deep = json!("leaf");
        for i in 0..40 {
            deep = if i % 2 == 0 {
                json!([deep, i, []])
            } else {
                json!({"k": deep, "e": {}, "n": null})
            };
        }
        let values = [
            json!(null),
            json!([]),
            json!({}),
            json!([1, 2.5, "a\"\n\u{1}é", true]),
            json!({"a": [], "b": {"c": [{}, [[]]], "d": -0.0}, "tokens": ["<s>", "", "▁x"]}),
            deep,
        ];
        for v in &values {
            let mut got = Vec::new();
            write_pretty(&mut got, v).unwrap();
            assert_eq!(
                String::from_utf8(got).unwrap(),
                serde_json::to_string_pretty(v).unwrap()
            );
        }
    }
}
