//! Golden policy cases.
