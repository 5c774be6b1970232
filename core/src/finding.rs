//! Findings: what a rule says about a model, with the evidence and a fix hint.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One diagnosis. `code` is stable across releases (documented in docs/rules.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub code: String,
    pub severity: Severity,
    /// The tensor concerned, when the finding is about one.
    pub tensor: Option<String>,
    /// What is wrong, with the numbers that prove it.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl Finding {
    pub fn new(
        code: &str,
        severity: Severity,
        tensor: Option<&str>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Finding {
            code: code.to_string(),
            severity,
            tensor: tensor.map(str::to_string),
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn error(
        code: &str,
        tensor: Option<&str>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(code, Severity::Error, tensor, message, hint)
    }

    pub fn warning(
        code: &str,
        tensor: Option<&str>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(code, Severity::Warning, tensor, message, hint)
    }

    pub fn info(
        code: &str,
        tensor: Option<&str>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(code, Severity::Info, tensor, message, hint)
    }
}

/// Sort findings most severe first, then by code and tensor, for stable output.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.code.cmp(&b.code))
            .then_with(|| a.tensor.cmp(&b.tensor))
    });
}

/// Format a byte or element count with thousands separators: 36864000 -> "36,864,000".
pub fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_numbers() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(36_864_000), "36,864,000");
    }

    #[test]
    fn severity_orders_and_serializes() {
        assert!(Severity::Error > Severity::Warning);
        assert_eq!(
            serde_json::to_string(&Severity::Warning).unwrap(),
            "\"warning\""
        );
    }
}
