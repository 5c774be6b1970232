//! Text for the view: sizes, rates, times, metadata values, and the tensor table's
//! filtering and sorting. Pure functions, tested natively.

use quantdoc_core::report::link::collapsed_len;
use quantdoc_core::report::TensorRow;
use serde_json::Value;

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// Parameters as people say them: 6.74 B, 124 M, 3,072.
pub fn count(n: u64) -> String {
    match n {
        0..=99_999 => quantdoc_core::finding::grouped(n),
        100_000..=999_999_999 => format!("{:.1} M", n as f64 / 1e6),
        _ => format!("{:.2} B", n as f64 / 1e9),
    }
}

pub fn rate_mb_s(bytes: u64, millis: f64) -> Option<f64> {
    (millis > 0.0).then(|| bytes as f64 / 1e6 / (millis / 1e3))
}

/// Time left at the rate so far, as "1 min 20 s" / "12 s".
pub fn time_left(done: u64, total: u64, millis: f64) -> Option<String> {
    if done == 0 || millis <= 0.0 || done >= total {
        return None;
    }
    let secs = ((total - done) as f64 * (millis / 1e3) / done as f64).round() as u64;
    Some(duration(secs))
}

pub fn duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

pub fn shape(s: &[u64]) -> String {
    let dims: Vec<String> = s.iter().map(u64::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// A number from a statistics object, short.
pub fn num(v: Option<&Value>) -> String {
    match v.and_then(Value::as_f64) {
        Some(0.0) => "0".into(),
        Some(x) if x.abs() >= 1e4 || x.abs() < 1e-3 => format!("{x:.3e}"),
        Some(x) => format!("{x:.4}"),
        None => "—".into(),
    }
}

/// A metadata value on one line; arrays collapsed by the worker show their length.
pub fn meta_value(v: &Value) -> String {
    if let Some(n) = collapsed_len(v) {
        let head: Vec<String> = v["head"]
            .as_array()
            .map(|a| a.iter().map(meta_value).collect())
            .unwrap_or_default();
        return format!("[{}, …] ({n} items)", head.join(", "));
    }
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Strings shown as a block of plain text rather than in a table cell.
pub fn is_long_text(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() > 120 || s.contains('\n'))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Index,
    Name,
    Type,
    Elements,
    Bytes,
    Std,
    Nan,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableQuery {
    pub name: String,
    pub dtype: String,
    pub sort: SortKey,
    pub descending: bool,
}

impl Default for TableQuery {
    fn default() -> Self {
        TableQuery {
            name: String::new(),
            dtype: String::new(),
            sort: SortKey::Index,
            descending: false,
        }
    }
}

fn stat(stats: &[Option<Value>], i: usize, key: &str) -> f64 {
    stats
        .get(i)
        .and_then(|s| s.as_ref())
        .and_then(|s| s.get(key))
        .and_then(Value::as_f64)
        .unwrap_or(f64::NEG_INFINITY)
}

/// Indices of the rows that pass the filters, in the requested order.
pub fn table_rows(tensors: &[TensorRow], stats: &[Option<Value>], q: &TableQuery) -> Vec<usize> {
    let needle = q.name.to_lowercase();
    let mut rows: Vec<usize> = tensors
        .iter()
        .enumerate()
        .filter(|(_, t)| needle.is_empty() || t.name.to_lowercase().contains(&needle))
        .filter(|(_, t)| q.dtype.is_empty() || t.dtype == q.dtype)
        .map(|(i, _)| i)
        .collect();
    let elements = |i: usize| tensors[i].shape.iter().product::<u64>();
    match q.sort {
        SortKey::Index => {}
        SortKey::Name => rows.sort_by(|&a, &b| tensors[a].name.cmp(&tensors[b].name)),
        SortKey::Type => rows.sort_by(|&a, &b| tensors[a].dtype.cmp(&tensors[b].dtype)),
        SortKey::Elements => rows.sort_by_key(|&i| elements(i)),
        SortKey::Bytes => rows.sort_by_key(|&i| tensors[i].nbytes),
        SortKey::Std => {
            rows.sort_by(|&a, &b| stat(stats, a, "std").total_cmp(&stat(stats, b, "std")))
        }
        SortKey::Nan => rows.sort_by(|&a, &b| {
            (stat(stats, a, "nan") + stat(stats, a, "inf"))
                .total_cmp(&(stat(stats, b, "nan") + stat(stats, b, "inf")))
        }),
    }
    if q.descending {
        rows.reverse();
    }
    rows
}

/// Distinct tensor types, for the type filter.
pub fn dtypes(tensors: &[TensorRow]) -> Vec<String> {
    let mut v: Vec<String> = tensors.iter().map(|t| t.dtype.clone()).collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn row(name: &str, dtype: &str, n: u64) -> TensorRow {
        TensorRow {
            name: name.into(),
            dtype: dtype.into(),
            shape: vec![n],
            offset: 0,
            nbytes: n * 2,
            encoding: dtype.into(),
            parts: vec![],
        }
    }

    #[test]
    fn sizes_rates_and_times_read_naturally() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 30), "3.00 GiB");
        assert_eq!(count(6_738_415_616), "6.74 B");
        assert_eq!(count(3072), "3,072");
        assert_eq!(rate_mb_s(2_000_000, 1000.0), Some(2.0));
        assert_eq!(rate_mb_s(1, 0.0), None);
        assert_eq!(time_left(25, 100, 1000.0).as_deref(), Some("3 s"));
        assert_eq!(time_left(100, 100, 1000.0), None);
        assert_eq!(duration(125), "2 min 5 s");
    }

    #[test]
    fn collapsed_arrays_show_their_length_and_strings_stay_text() {
        let v = json!({"collapsed_array": 32000, "head": ["<s>", "</s>", "<unk>"]});
        assert_eq!(meta_value(&v), "[<s>, </s>, <unk>, …] (32000 items)");
        assert_eq!(
            meta_value(&json!("<script>x</script>")),
            "<script>x</script>"
        );
        assert!(is_long_text(&json!("{% for %}\n{% endfor %}")));
    }

    #[test]
    fn table_filters_by_name_and_type_and_sorts() {
        let t = vec![
            row("blk.0.attn_q", "Q4_K", 10),
            row("blk.0.ffn_up", "Q6_K", 30),
            row("blk.1.attn_q", "Q4_K", 20),
        ];
        let stats = vec![Some(json!({"std": 0.5})), None, Some(json!({"std": 0.1}))];
        let q = TableQuery {
            name: "ATTN".into(),
            ..Default::default()
        };
        assert_eq!(table_rows(&t, &stats, &q), vec![0, 2]);
        let q = TableQuery {
            dtype: "Q6_K".into(),
            ..Default::default()
        };
        assert_eq!(table_rows(&t, &stats, &q), vec![1]);
        let q = TableQuery {
            sort: SortKey::Bytes,
            descending: true,
            ..Default::default()
        };
        assert_eq!(table_rows(&t, &stats, &q), vec![1, 2, 0]);
        let q = TableQuery {
            sort: SortKey::Std,
            ..Default::default()
        };
        assert_eq!(table_rows(&t, &stats, &q), vec![1, 2, 0]);
        assert_eq!(dtypes(&t), vec!["Q4_K", "Q6_K"]);
    }

    #[test]
    fn ten_thousand_rows_filter_and_sort() {
        // The page renders 100 rows at a time (app.rs), so at this size the table's work is
        // this filter and sort; no wall-clock assertion here (tests do not time things).
        let t: Vec<TensorRow> = (0..10_000)
            .map(|i| row(&format!("blk.{i}.w"), "F16", i))
            .collect();
        let stats = vec![None; t.len()];
        let q = TableQuery {
            name: "9".into(),
            sort: SortKey::Name,
            ..Default::default()
        };
        let rows = table_rows(&t, &stats, &q);
        // Numbers below 10,000 without a digit 9: 9^4.
        assert_eq!(rows.len(), 10_000 - 9usize.pow(4));
        assert!(rows.iter().all(|&i| t[i].name.contains('9')));
        assert!(rows.windows(2).all(|w| t[w[0]].name <= t[w[1]].name));
    }
}
