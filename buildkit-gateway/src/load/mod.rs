//! PLACEHOLDER interface, owned by the image-load helper.
#![allow(dead_code, unused_variables)]
