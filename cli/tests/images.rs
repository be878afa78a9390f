//! `docker load` and `docker images`: the fixture loads and lists as docker
//! shows it, and a bad archive fails with exit 1, a clear message and
//! nothing new in containerd (content, images, snapshots, leases).
//!
//! Loads hold leases while they run, so the tests of this file run one at
//! a time (`serial`).

mod common;

use std::io::Write;

use common::*;

#[test]
fn load_i_loads_the_fixture_and_names_it() {
    stack();
    let _serial = serial();
    let out = docker(&["load", "-i", BUSYBOX_TAR]);
    out.ok();
    assert!(
        out.stdout_lines().contains(&"Loaded image: busybox:latest"),
        "{out}"
    );
    real_ctr(&["images", "ls", "-q"])
        .ok()
        .stdout_has(BUSYBOX_REF);
    // The loader unpacked it: the layer's snapshot is committed.
    let snapshots = real_ctr(&["snapshots", "--snapshotter", "overlayfs", "ls"]);
    snapshots.ok().stdout_has(&busybox_fixture().chain_id);
}

#[test]
fn load_reads_the_archive_from_stdin() {
    stack();
    let _serial = serial();
    let file = std::fs::File::open(BUSYBOX_TAR).expect("the fixture archive");
    let out = docker_with(&["load"], Input::File(file));
    out.ok();
    assert!(
        out.stdout_lines().contains(&"Loaded image: busybox:latest"),
        "{out}"
    );
}

#[test]
fn load_accepts_a_gzip_compressed_archive() {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let dir = agent_dir(&mut cleanup, "gz");
    let path = format!("{dir}/busybox.tar.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&std::fs::read(BUSYBOX_TAR).expect("the fixture archive"))
        .expect("gzip");
    std::fs::write(&path, gz.finish().expect("gzip")).expect("writing the archive");
    let out = docker(&["load", "-i", &path]);
    out.ok();
    assert!(
        out.stdout_lines().contains(&"Loaded image: busybox:latest"),
        "{out}"
    );
}

#[test]
fn images_lists_busybox_with_dockers_columns() {
    stack();
    let _serial = serial();
    let image_id = &busybox_fixture().config_digest["sha256:".len()..][..12];
    let out = docker(&["images"]);
    out.ok();
    let table = Table::parse(&out.stdout, IMAGES_TITLES);
    let row = table
        .row("REPOSITORY", "busybox")
        .unwrap_or_else(|| panic!("images does not list busybox:\n{out}"));
    assert_eq!(table.cell(row, "TAG"), "latest", "{out}");
    assert_eq!(table.cell(row, "IMAGE ID"), image_id, "{out}");
    assert!(
        !table.cell(row, "CREATED").is_empty() && !table.cell(row, "SIZE").is_empty(),
        "{out}"
    );

    let quiet = docker(&["images", "-q"]);
    quiet.ok();
    assert!(quiet.stdout_lines().contains(&image_id), "{quiet}");
}

#[test]
fn image_inspect_shows_the_image_id_and_tag() {
    stack();
    let _serial = serial();
    let out = docker(&["image", "inspect", "busybox"]);
    out.ok();
    let json: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{out}"));
    let image = &json[0];
    assert_eq!(
        image["Id"],
        busybox_fixture().config_digest.as_str(),
        "{out}"
    );
    let tags = image["RepoTags"]
        .as_array()
        .unwrap_or_else(|| panic!("RepoTags:\n{out}"));
    assert!(tags.iter().any(|t| t == "busybox:latest"), "{out}");
    assert_eq!(image["Config"]["Cmd"], serde_json::json!(["sh"]), "{out}");
}

// --- bad archives ------------------------------------------------------------------

const ARCHIVE_WORDS: &[&str] = &[
    "archive",
    "tar",
    "invalid",
    "truncated",
    "unexpected end",
    "eof",
    "load",
];

#[test]
fn load_of_a_truncated_archive_fails_cleanly() {
    let full = std::fs::read(BUSYBOX_TAR).expect("the fixture archive");
    // Cut inside the layer blob, the largest entry.
    load_refused("truncated", &full[..full.len() / 2], ARCHIVE_WORDS);
}

#[test]
fn load_of_random_bytes_fails_cleanly() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..262_144)
        .map(|_| {
            // xorshift64: reproducible noise.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    load_refused("random", &bytes, ARCHIVE_WORDS);
}

/// Rebuilds the fixture archive with its entries as given by `edit`, which
/// may change bytes or add entries; names are written verbatim into the
/// header (the tar crate refuses `..` on purpose, so it is bypassed here).
fn rebuild(edit: impl Fn(&mut Vec<(String, Vec<u8>)>)) -> Vec<u8> {
    let mut entries = archive_entries(BUSYBOX_TAR);
    edit(&mut entries);
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in &entries {
        let mut header = tar::Header::new_gnu();
        let raw = &mut header.as_gnu_mut().expect("gnu header").name;
        assert!(
            name.len() < raw.len(),
            "entry name too long for a plain header: {name}"
        );
        raw[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder
            .append(&header, bytes.as_slice())
            .expect("appending an entry");
    }
    builder.into_inner().expect("finishing the archive")
}

#[test]
fn load_of_an_archive_with_dotdot_entries_fails_and_writes_nothing_outside() {
    let escape = unique("evil");
    let deep = format!("../../../../../../../../tmp/{escape}");
    let shallow = format!("../{escape}");
    let bytes = rebuild(|entries| {
        entries.push((shallow.clone(), b"escaped\n".to_vec()));
        entries.push((deep.clone(), b"escaped\n".to_vec()));
    });
    load_refused("dotdot", &bytes, &["..", "path", "entry"]);
    let landed = format!("/tmp/{escape}");
    assert!(
        !std::path::Path::new(&landed).exists(),
        "the archive wrote {landed}"
    );
    for dir in [
        GATEWAY_PRIVATE,
        "/var/lib/berth-stack",
        "/run/berth-stack",
        WORKSPACE,
    ] {
        let hits: Vec<String> = walk(dir)
            .into_iter()
            .filter(|p| p.contains(&escape))
            .collect();
        assert!(hits.is_empty(), "the archive wrote {hits:?}");
    }
}

/// The fixture under a new name with its config changed (so its config and
/// manifest are blobs containerd does not hold yet); with `corrupt`, the
/// config entry's bytes no longer match the digest the manifest names.
fn renamed_fixture(name: &str, corrupt: bool) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let digest = |b: &[u8]| format!("sha256:{}", hex::encode(Sha256::digest(b)));
    let fixture = busybox_fixture();
    let entries = archive_entries(BUSYBOX_TAR);
    let json = |n: &str| -> serde_json::Value {
        serde_json::from_slice(
            &entries
                .iter()
                .find(|(e, _)| e == n)
                .expect("fixture entry")
                .1,
        )
        .expect("JSON")
    };

    let mut config = json(&blob(&fixture.config_digest));
    config["author"] = serde_json::json!(name);
    let config_bytes = serde_json::to_vec(&config).expect("config");
    let config_digest = digest(&config_bytes);
    let mut manifest = json(&blob(&fixture.manifest_digest));
    manifest["config"]["digest"] = serde_json::json!(config_digest);
    manifest["config"]["size"] = serde_json::json!(config_bytes.len());
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest");
    let manifest_digest = digest(&manifest_bytes);
    let mut index = json("index.json");
    index["manifests"][0]["digest"] = serde_json::json!(manifest_digest);
    index["manifests"][0]["size"] = serde_json::json!(manifest_bytes.len());
    index["manifests"][0]["annotations"] = serde_json::json!({
        "io.containerd.image.name": format!("docker.io/library/{name}:latest"),
        "org.opencontainers.image.ref.name": "latest",
    });

    let mut stored_config = config_bytes.clone();
    if corrupt {
        // Same length, one bit different.
        let at = stored_config.len() / 2;
        stored_config[at] ^= 0x01;
    }
    let index_bytes = serde_json::to_vec(&index).expect("index");
    rebuild(|entries| {
        entries.retain(|(n, _)| n != "index.json");
        entries.push(("index.json".to_string(), index_bytes.clone()));
        entries.push((blob(&config_digest), stored_config.clone()));
        entries.push((blob(&manifest_digest), manifest_bytes.clone()));
    })
}

#[test]
fn load_of_a_blob_that_does_not_match_its_digest_fails_cleanly() {
    let name = unique("digest");
    load_refused(
        "digest",
        &renamed_fixture(&name, true),
        &["digest", "mismatch", "sha256", "verif"],
    );
    let images = real_ctr(&["images", "ls", "-q"]);
    assert!(
        !images.ok().stdout.contains(&name),
        "a corrupt image was recorded:\n{images}"
    );
}

#[test]
fn load_of_an_image_with_a_new_name_prints_that_name() {
    // The control for the test above: the same archive, uncorrupted, loads.
    stack();
    let _serial = serial();
    let name = unique("renamed");
    let mut cleanup = Cleanup::new();
    let dir = agent_dir(&mut cleanup, "renamed");
    let path = format!("{dir}/archive.tar");
    std::fs::write(&path, renamed_fixture(&name, false)).expect("writing the archive");
    let out = docker(&["load", "-i", &path]);
    // Removed through the real containerd: berth has no `rmi` yet.
    let full = format!("docker.io/library/{name}:latest");
    let listed = real_ctr(&["images", "ls", "-q"]);
    let _ = real_ctr(&["images", "rm", &full]);
    out.ok();
    assert!(
        out.stdout_lines()
            .contains(&format!("Loaded image: {name}:latest").as_str()),
        "{out}"
    );
    assert!(listed.stdout.contains(&full), "{listed}");
}
