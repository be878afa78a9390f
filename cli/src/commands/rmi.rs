//! `docker rmi [-f] IMAGE...` / `docker image rm`: docker's untag-then-
//! delete rules.
//!
//! - By name: the name goes (`Untagged: x:latest`); when it was the image's
//!   last name the image goes too (`Deleted: sha256:…`). A last name that a
//!   container's image needs is refused unless forced; forced, the image
//!   stays as `<none>`.
//! - By ID: an image with names in several repositories is refused unless
//!   forced; otherwise its names go, then the image. A running container's
//!   image is never deleted; a stopped one's only when forced.
//!
//! Everything is decided on one reading of the records and containers
//! before anything is removed. Each argument is handled on its own; the
//! exit status is 1 if any failed, except that with `-f` "No such image"
//! errors alone are printed and do not fail the command (docker's client).

use clap::Args;

use crate::client::Gateway;
use crate::error::Result;
use crate::format::output;
use crate::image::store::{self, short, Catalog, Image, User};
use crate::image::{self, ImageError};
use crate::refs::Reference;

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// What one removal printed (docker's delete response items).
#[derive(Debug, PartialEq)]
pub(crate) enum Line {
    Untagged(String),
    Deleted(String),
}

impl Line {
    fn text(&self) -> String {
        match self {
            Line::Untagged(r) => format!("Untagged: {r}\n"),
            Line::Deleted(id) => format!("Deleted: {id}\n"),
        }
    }
}

/// Why one argument failed; `missing` errors do not fail a forced rmi.
struct Failure {
    message: String,
    missing: bool,
}

pub async fn rmi(gw: &Gateway, a: RmiArgs) -> Result<i32> {
    output::finish(run(gw, a).await)
}

async fn run(gw: &Gateway, a: RmiArgs) -> Result<i32> {
    let mut failures: Vec<Failure> = Vec::new();
    for arg in &a.images {
        match remove(gw, arg, a.force).await {
            Ok(lines) => {
                let text: String = lines.iter().map(Line::text).collect();
                output::print(&text)?;
            }
            Err(f) => failures.push(f),
        }
    }
    if failures.is_empty() {
        return Ok(0);
    }
    let msg = failures
        .iter()
        .map(|f| f.message.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    eprintln!("{msg}");
    let fatal = failures.iter().any(|f| !f.missing);
    Ok(if !a.force || fatal { 1 } else { 0 })
}

fn failure(message: String) -> Failure {
    Failure {
        message: format!("Error response from daemon: {message}"),
        missing: false,
    }
}

/// Removes one argument's name or image.
async fn remove(gw: &Gateway, arg: &str, force: bool) -> Result<Vec<Line>, Failure> {
    let found = match image::lookup(gw, arg).await {
        Ok(f) => f,
        Err(e @ ImageError::NotFound(_)) => {
            return Err(Failure {
                message: format!("Error response from daemon: {e}"),
                missing: true,
            })
        }
        // A name whose content is gone (or unreadable) can still be removed.
        Err(e @ ImageError::Broken { .. }) => return remove_broken(gw, arg, e).await,
        Err(e) => return Err(failure(e.to_string())),
    };
    let catalog = Catalog::read(gw)
        .await
        .map_err(|e| failure(e.to_string()))?;
    let Some(img) = catalog.by_id(&found.config_digest) else {
        return Err(failure(format!("No such image: {arg}")));
    };
    let users = store::users(gw, &catalog)
        .await
        .map_err(|e| failure(e.message))?;
    let users: Vec<User> = users.into_iter().filter(|u| u.image_id == img.id).collect();
    let by_name = is_name_of(arg, &found.record.name);
    let plan = decide(
        img,
        &users,
        arg,
        by_name.then_some(&found.record.name),
        force,
    )
    .map_err(failure)?;
    carry_out(gw, img, &plan).await.map_err(|s| {
        let e = crate::commands::tag::status_error(&s);
        failure(
            e.message
                .trim_start_matches("Error response from daemon: ")
                .to_string(),
        )
    })?;
    Ok(plan.lines)
}

/// Removes the record `arg` names when its image cannot be read: there is
/// no image to decide about, only a name to drop.
async fn remove_broken(gw: &Gateway, arg: &str, why: ImageError) -> Result<Vec<Line>, Failure> {
    let Ok(r) = Reference::parse_normalized(arg).map(Reference::with_default_tag) else {
        return Err(failure(why.to_string()));
    };
    let name = r.to_string();
    let records = image::list_records(gw)
        .await
        .map_err(|e| failure(e.to_string()))?;
    if !records.iter().any(|rec| rec.name == name) {
        return Err(failure(why.to_string()));
    }
    store::delete(gw, &name, true)
        .await
        .map_err(|s| failure(crate::error::CliError::from_status(&s).message))?;
    Ok(vec![Line::Untagged(r.familiar_string())])
}

/// Whether `arg` named the record (rather than giving an ID that the
/// lookup matched): docker's `isImageIDPrefix` check, made exact. A
/// `name@digest` names the record it was found by, never the whole image.
fn is_name_of(arg: &str, record: &str) -> bool {
    match Reference::parse_normalized(arg) {
        Ok(r) if r.digest.is_some() => true,
        Ok(r) => r.with_default_tag().to_string() == record,
        Err(_) => false,
    }
}

/// What to do to one image, decided before anything is done.
#[derive(Debug, PartialEq)]
pub(crate) struct Plan {
    /// Records to delete, in order.
    pub delete: Vec<String>,
    /// The image loses its last name but must stay: give it a dangling
    /// record first.
    pub keep_dangling: bool,
    pub lines: Vec<Line>,
}

fn conflict(id: &str, forced: bool, why: &str) -> String {
    let how = if forced {
        "cannot be forced"
    } else {
        "must be forced"
    };
    format!("conflict: unable to delete {} ({how}) - {why}", short(id))
}

/// docker's `ImageDelete` on one image. `name`: the record the user named
/// (None when given an ID).
pub(crate) fn decide(
    img: &Image,
    users: &[User],
    arg: &str,
    name: Option<&String>,
    force: bool,
) -> Result<Plan, String> {
    let refs = img.references();
    let parsed: Vec<Reference> = refs.iter().map(|(_, r)| r.clone()).collect();
    let running = users.iter().find(|u| u.running);
    let stopped = users.iter().find(|u| !u.running);
    let mut lines = Vec::new();
    let mut delete = Vec::new();
    if let Some(name) = name {
        if !force && store::is_single_reference(&parsed) {
            if let Some(u) = users.first() {
                return Err(format!(
                    "conflict: unable to remove repository reference {arg:?} (must force) - container {} is using its referenced image {}",
                    short(&u.id),
                    img.short_id()
                ));
            }
        }
        let shown = refs
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| name.clone(), |(_, r)| r.familiar_string());
        lines.push(Line::Untagged(shown));
        delete.push(name.clone());
        if refs.iter().any(|(n, _)| n != name) {
            return Ok(Plan {
                delete,
                keep_dangling: false,
                lines,
            });
        }
        // The last name went. An image a running container uses (or, not
        // forced, a stopped one) stays nameless: docker ignores that
        // conflict after an untag. Forced, a stopped container's image goes.
        if running.is_some() || (!force && stopped.is_some()) {
            return Ok(Plan {
                delete,
                keep_dangling: true,
                lines,
            });
        }
    } else {
        if let Some(u) = running {
            return Err(conflict(
                &img.id,
                true,
                &format!("image is being used by running container {}", short(&u.id)),
            ));
        }
        if !force && !refs.is_empty() && !store::is_single_reference(&parsed) {
            return Err(conflict(
                &img.id,
                false,
                "image is referenced in multiple repositories",
            ));
        }
        if let (false, Some(u)) = (force, stopped) {
            return Err(conflict(
                &img.id,
                false,
                &format!("image is being used by stopped container {}", short(&u.id)),
            ));
        }
        for (n, r) in &refs {
            lines.push(Line::Untagged(r.familiar_string()));
            delete.push(n.clone());
        }
    }
    // The image itself: its dangling records too; the last delete is the
    // one that waits for the content to be collected.
    for r in &img.records {
        if !delete.contains(&r.name) {
            delete.push(r.name.clone());
        }
    }
    lines.push(Line::Deleted(img.id.clone()));
    Ok(Plan {
        delete,
        keep_dangling: false,
        lines,
    })
}

async fn carry_out(gw: &Gateway, img: &Image, plan: &Plan) -> Result<(), tonic::Status> {
    if plan.keep_dangling {
        store::keep_dangling(gw, img).await;
    }
    let last = plan.delete.len().saturating_sub(1);
    for (i, name) in plan.delete.iter().enumerate() {
        store::delete(gw, name, i == last).await?;
    }
    Ok(())
}

/// `CliError` for callers that remove images outside rmi (prune).
pub(crate) async fn apply(gw: &Gateway, img: &Image, plan: &Plan) -> Result<()> {
    carry_out(gw, img, plan)
        .await
        .map_err(|s| crate::commands::tag::status_error(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "sha256:fdc310b9719da606b2b8ae773ef8e3ffc5eba7e10019233f09f0694003ed090d";

    fn image(names: &[&str]) -> Image {
        store::test_image(ID, names)
    }

    fn user(running: bool) -> User {
        User {
            id: "c0ffee0123456789".into(),
            image_id: ID.into(),
            running,
        }
    }

    const BB: &str = "docker.io/library/busybox:latest";
    const APP: &str = "docker.io/library/app:v1";

    #[test]
    fn untag_keeps_an_image_with_other_names() {
        let img = image(&[BB, APP]);
        let p = decide(&img, &[], "app:v1", Some(&APP.to_string()), false).unwrap();
        assert_eq!(p.delete, vec![APP.to_string()]);
        assert_eq!(p.lines, vec![Line::Untagged("app:v1".into())]);
    }

    #[test]
    fn last_name_deletes_the_image_and_its_dangling_records() {
        let img = image(&[BB, "moby-dangling@sha256:x"]);
        let p = decide(&img, &[], "busybox", Some(&BB.to_string()), false).unwrap();
        assert_eq!(
            p.delete,
            vec![BB.to_string(), "moby-dangling@sha256:x".into()]
        );
        assert_eq!(
            p.lines,
            vec![
                Line::Untagged("busybox:latest".into()),
                Line::Deleted(ID.into())
            ]
        );
    }

    #[test]
    fn a_containers_last_name_needs_force_and_then_stays_dangling() {
        let img = image(&[BB]);
        let e = decide(
            &img,
            &[user(false)],
            "busybox",
            Some(&BB.to_string()),
            false,
        )
        .unwrap_err();
        assert_eq!(e, "conflict: unable to remove repository reference \"busybox\" (must force) - container c0ffee012345 is using its referenced image fdc310b9719d");
        let p = decide(&img, &[user(true)], "busybox", Some(&BB.to_string()), true).unwrap();
        assert!(p.keep_dangling);
        assert_eq!(p.delete, vec![BB.to_string()]);
        assert_eq!(p.lines, vec![Line::Untagged("busybox:latest".into())]);
    }

    #[test]
    fn forced_last_name_of_a_stopped_containers_image_deletes_it() {
        let img = image(&[BB]);
        let p = decide(&img, &[user(false)], "busybox", Some(&BB.to_string()), true).unwrap();
        assert!(!p.keep_dangling);
        assert_eq!(
            p.lines,
            vec![
                Line::Untagged("busybox:latest".into()),
                Line::Deleted(ID.into())
            ]
        );
    }

    #[test]
    fn by_id_with_several_repositories_needs_force() {
        let img = image(&[BB, APP]);
        let e = decide(&img, &[], "fdc310b9719d", None, false).unwrap_err();
        assert_eq!(e, "conflict: unable to delete fdc310b9719d (must be forced) - image is referenced in multiple repositories");
        let p = decide(&img, &[], "fdc310b9719d", None, true).unwrap();
        assert_eq!(p.delete, vec![BB.to_string(), APP.to_string()]);
        assert_eq!(
            p.lines,
            vec![
                Line::Untagged("busybox:latest".into()),
                Line::Untagged("app:v1".into()),
                Line::Deleted(ID.into())
            ]
        );
    }

    #[test]
    fn by_id_and_containers() {
        let img = image(&[BB]);
        let e = decide(&img, &[user(true)], "fdc3", None, true).unwrap_err();
        assert_eq!(e, "conflict: unable to delete fdc310b9719d (cannot be forced) - image is being used by running container c0ffee012345");
        let e = decide(&img, &[user(false)], "fdc3", None, false).unwrap_err();
        assert_eq!(e, "conflict: unable to delete fdc310b9719d (must be forced) - image is being used by stopped container c0ffee012345");
        let p = decide(&img, &[user(false)], "fdc3", None, true).unwrap();
        assert_eq!(p.lines.last(), Some(&Line::Deleted(ID.into())));
        let dangling = image(&["moby-dangling@sha256:x"]);
        let p = decide(&dangling, &[], "fdc3", None, false).unwrap();
        assert_eq!(p.lines, vec![Line::Deleted(ID.into())]);
    }

    #[test]
    fn names_versus_ids() {
        assert!(is_name_of("busybox", BB));
        assert!(is_name_of("docker.io/library/busybox:latest", BB));
        assert!(!is_name_of("fdc310b9719d", BB));
        assert!(!is_name_of(&"a".repeat(64), BB));
        assert!(is_name_of(
            &format!("busybox@sha256:{}", "a".repeat(64)),
            BB
        ));
    }
}
