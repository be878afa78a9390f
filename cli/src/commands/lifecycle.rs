//! PLACEHOLDER: to be written by its owner (see architecture/work-split.md).
#![allow(dead_code, unused_imports, unused_variables)]
use crate::{client::Gateway, cli::*, error::{CliError, Result}};
pub async fn stop(gw: &Gateway, a: StopArgs) -> Result<i32> { Err(CliError::daemon("stop not written yet")) }
pub async fn kill(gw: &Gateway, a: KillArgs) -> Result<i32> { Err(CliError::daemon("kill not written yet")) }
pub async fn rm(gw: &Gateway, a: RmArgs) -> Result<i32> { Err(CliError::daemon("rm not written yet")) }
pub async fn wait(gw: &Gateway, a: WaitArgs) -> Result<i32> { Err(CliError::daemon("wait not written yet")) }
