//! Admission table tests.
