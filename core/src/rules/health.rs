//! Health rules over scan statistics (non-finite values, collapsed norms, outliers, ...).
