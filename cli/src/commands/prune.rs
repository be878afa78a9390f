//! `docker image prune [-a] [-f] [--filter label=…]`: removes the dangling
//! images (with `-a`, every image no container uses), after asking unless
//! `-f`, and reports what went and the space it freed, as docker does.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};

use clap::Args;
use containerd_client::services::v1 as api;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;

use crate::client::Gateway;
use crate::commands::rmi::{self, Line, Plan};
use crate::containers;
use crate::error::{CliError, Result};
use crate::format::{output, units};
use crate::image::store::{self, Catalog, Image};

const DANGLING_WARNING: &str =
    "WARNING! This will remove all dangling images.\nAre you sure you want to continue?";
const ALL_WARNING: &str = "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?";

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long)]
    pub filter: Vec<String>,
}

/// `label=k`, `label=k=v`, `label!=…`: the filters berth supports.
#[derive(Debug, Default, PartialEq)]
struct Filters {
    /// (key, value, wanted)
    labels: Vec<(String, Option<String>, bool)>,
}

fn parse_filters(raw: &[String]) -> Result<Filters> {
    let mut f = Filters::default();
    for item in raw {
        let Some((key, value)) = item.split_once('=') else {
            return Err(CliError::general(format!(
                "invalid argument {item:?} for \"--filter\" flag: bad format of filter (expected name=value)"
            )));
        };
        let (key, wanted) = match key.strip_suffix('!') {
            Some(k) => (k, false),
            None => (key, true),
        };
        match key {
            "label" => {
                let (k, v) = match value.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (value.to_string(), None),
                };
                f.labels.push((k, v, wanted));
            }
            "until" => {
                return Err(CliError::general(
                    "the image prune filter 'until' is not supported by berth",
                ))
            }
            _ => {
                return Err(CliError::general(format!(
                    "Error response from daemon: invalid filter '{key}'"
                )))
            }
        }
    }
    Ok(f)
}

fn labels_match(img: &Image, f: &Filters) -> bool {
    let labels = img
        .resolved
        .config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default();
    f.labels.iter().all(|(k, v, wanted)| {
        let has = match v {
            Some(v) => labels.get(k) == Some(v),
            None => labels.contains_key(k),
        };
        has == *wanted
    })
}

pub async fn prune(gw: &Gateway, a: PruneArgs) -> Result<i32> {
    output::finish(run(gw, a).await)
}

/// docker's confirmation: `[y/N] ` on stdout, one line of stdin, only
/// `y`/`Y` agrees (an empty or closed stdin declines).
fn confirm(warning: &str) -> Result<bool> {
    output::print(&format!("{warning} [y/N] "))?;
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y"))
}

async fn run(gw: &Gateway, a: PruneArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter)?;
    if !a.force && !confirm(if a.all { ALL_WARNING } else { DANGLING_WARNING })? {
        // docker 26: a declined prune is cancelled quietly.
        return Ok(0);
    }
    let catalog = Catalog::read(gw).await.map_err(CliError::from)?;
    let users = store::users(gw, &catalog).await?;
    let used: BTreeSet<&str> = users.iter().map(|u| u.image_id.as_str()).collect();
    let chosen: Vec<&Image> = catalog
        .images
        .iter()
        .filter(|i| !used.contains(i.id.as_str()))
        .filter(|i| a.all || i.is_dangling())
        .filter(|i| labels_match(i, &filters))
        .collect();
    let kept_chains: BTreeSet<&str> = catalog
        .images
        .iter()
        .filter(|i| !chosen.iter().any(|c| c.id == i.id))
        .flat_map(|i| i.resolved.chain_ids.iter().map(String::as_str))
        .collect();
    let freed_chains: BTreeSet<&str> = chosen
        .iter()
        .flat_map(|i| i.resolved.chain_ids.iter().map(String::as_str))
        .filter(|c| !kept_chains.contains(c))
        .collect();
    let reclaimed = usage(gw, &freed_chains).await;

    let mut report = String::new();
    let mut failed = None;
    for img in chosen {
        let plan = plan_of(img);
        if let Err(e) = rmi::apply(gw, img, &plan).await {
            failed = Some(e);
            break;
        }
        for line in &plan.lines {
            report.push_str(&match line {
                Line::Untagged(r) => format!("untagged: {r}\n"),
                Line::Deleted(id) => format!("deleted: {id}\n"),
            });
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if !report.is_empty() {
        output::print(&format!("Deleted Images:\n{report}\n"))?;
    }
    output::print(&format!(
        "Total reclaimed space: {}\n",
        units::human_size(reclaimed as f64)
    ))?;
    Ok(0)
}

/// Every record of an unused image goes; the names are reported as untagged.
fn plan_of(img: &Image) -> Plan {
    let mut lines: Vec<Line> = img
        .references()
        .into_iter()
        .map(|(_, r)| Line::Untagged(r.familiar_string()))
        .collect();
    lines.push(Line::Deleted(img.id.clone()));
    Plan {
        delete: img.records.iter().map(|r| r.name.clone()).collect(),
        keep_dangling: false,
        lines,
    }
}

/// What the layers' snapshots use on disk, counted once each.
async fn usage(gw: &Gateway, chains: &BTreeSet<&str>) -> i64 {
    let mut c = SnapshotsClient::new(gw.channel.clone());
    let mut total = 0;
    for key in chains {
        let req = api::snapshots::UsageRequest {
            snapshotter: containers::SNAPSHOTTER.to_string(),
            key: key.to_string(),
        };
        if let Ok(u) = c.usage(req).await {
            total += u.into_inner().size;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let f = parse_filters(&["label=a=1".into(), "label!=b".into()]).unwrap();
        assert_eq!(
            f.labels,
            vec![
                ("a".into(), Some("1".into()), true),
                ("b".into(), None, false)
            ]
        );
        assert_eq!(
            parse_filters(&["x=1".into()]).unwrap_err().message,
            "Error response from daemon: invalid filter 'x'"
        );
        let img = store::test_image("sha256:1", &["moby-dangling@sha256:1"]);
        assert!(labels_match(
            &img,
            &parse_filters(&["label!=a".into()]).unwrap()
        ));
        assert!(!labels_match(
            &img,
            &parse_filters(&["label=a".into()]).unwrap()
        ));
    }

    #[test]
    fn pruning_reports_names_then_the_image() {
        let img = store::test_image(
            "sha256:1",
            &["docker.io/library/app:v1", "moby-dangling@sha256:1"],
        );
        let p = plan_of(&img);
        assert_eq!(p.delete.len(), 2);
        assert_eq!(
            p.lines,
            vec![
                Line::Untagged("app:v1".into()),
                Line::Deleted("sha256:1".into())
            ]
        );
    }
}
