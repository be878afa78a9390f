//! PLACEHOLDER: to be written by its owner (see architecture/work-split.md).
#![allow(dead_code, unused_imports, unused_variables)]
use crate::{client::Gateway, cli::{RunArgs, StartArgs}, error::{CliError, Result}};
pub async fn run(gw: &Gateway, a: RunArgs) -> Result<i32> { Err(CliError::daemon("run not written yet")) }
pub async fn create(gw: &Gateway, a: RunArgs) -> Result<i32> { Err(CliError::daemon("create not written yet")) }
pub async fn start(gw: &Gateway, a: StartArgs) -> Result<i32> { Err(CliError::daemon("start not written yet")) }
