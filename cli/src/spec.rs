//! PLACEHOLDER: to be written by its owner (see architecture/work-split.md).
#![allow(dead_code, unused_imports, unused_variables)]

