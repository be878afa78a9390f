//! Where a build's result goes and how the build is given: `--output`
//! types, `-q`, `--iidfile`, a Dockerfile on stdin (`-f -`, `-`), the
//! platform, and the incremental send of a large context.

use std::collections::BTreeMap;

use crate::common::*;

// --- --output --------------------------------------------------------------------------

#[test]
fn output_local_writes_the_files_of_the_result() {
    stack();
    let mut cleanup = Cleanup::new();
    let ctx = Context::new(&mut cleanup, "outputs");
    let dest = ctx.beside("out");
    build(&["--output", &format!("type=local,dest={dest}"), &ctx.dir]).ok();
    assert_eq!(
        std::fs::read_to_string(format!("{dest}/hello.txt")).expect("hello.txt"),
        "hello from the build context\n"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{dest}/nested/deeper/file.txt")).expect("nested file"),
        "a nested file\n"
    );
    let mut found: Vec<String> = walk(&dest)
        .iter()
        .map(|p| p[dest.len() + 1..].to_string())
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            "hello.txt",
            "nested",
            "nested/deeper",
            "nested/deeper/file.txt"
        ]
    );
}

#[test]
fn output_tar_writes_a_tar_of_the_result() {
    stack();
    let mut cleanup = Cleanup::new();
    let ctx = Context::new(&mut cleanup, "outputs");
    let dest = ctx.beside("out.tar");
    build(&["--output", &format!("type=tar,dest={dest}"), &ctx.dir]).ok();
    let file = std::fs::File::open(&dest).unwrap_or_else(|e| panic!("{dest}: {e}"));
    let entries = tar_entries(file, &dest);
    let files: BTreeMap<&str, &[u8]> = entries
        .iter()
        .filter(|e| e.kind == 'f')
        .map(|e| (e.path.as_str(), e.content.as_slice()))
        .collect();
    assert_eq!(
        files,
        BTreeMap::from([
            ("hello.txt", b"hello from the build context\n".as_slice()),
            ("nested/deeper/file.txt", b"a nested file\n".as_slice()),
        ])
    );
}

#[test]
fn output_oci_writes_an_oci_layout_archive() {
    stack();
    let mut cleanup = Cleanup::new();
    let ctx = Context::new(&mut cleanup, "outputs");
    let dest = ctx.beside("oci.tar");
    build(&["-o", &format!("type=oci,dest={dest}"), &ctx.dir]).ok();
    let image = OciImage::read(&dest);
    let paths: Vec<&str> = image
        .layers
        .iter()
        .flatten()
        .filter(|e| e.kind == 'f')
        .map(|e| e.path.as_str())
        .collect();
    assert!(paths.contains(&"hello.txt"), "{paths:?}");
    assert!(paths.contains(&"nested/deeper/file.txt"), "{paths:?}");
    assert_eq!(image.config["os"], "linux", "{}", image.config);
}

#[test]
fn output_docker_writes_an_archive_docker_load_reads() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "outputs");
    let tag = images.tag("docker-out");
    let dest = ctx.beside("docker.tar");
    build(&[
        "-t",
        &tag,
        "--output",
        &format!("type=docker,dest={dest}"),
        &ctx.dir,
    ])
    .ok();
    let names: Vec<String> = archive_entries(&dest).into_iter().map(|(n, _)| n).collect();
    assert!(
        names.iter().any(|n| n == "manifest.json"),
        "a docker archive has manifest.json: {names:?}"
    );
    // --output wrote the archive instead of loading the image.
    docker(&["image", "inspect", &tag]).code(1);
    let load = docker(&["load", "-i", &dest]);
    load.ok();
    assert!(
        load.stdout.contains(&format!("Loaded image: {tag}:latest")),
        "{load}"
    );
    docker(&["image", "inspect", &tag]).ok();
}

// --- -q and --iidfile ---------------------------------------------------------------

fn is_image_id(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(is_full_id)
}

#[test]
fn build_q_prints_only_the_image_id() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "config");
    let tag = images.tag("quiet");
    let out = build(&["-q", "-t", &tag, &ctx.dir]);
    out.ok();
    assert_eq!(out.stdout_lines().len(), 1, "{out}");
    let id = out.stdout.trim();
    assert!(is_image_id(id), "not an image ID: {out}");
    assert_eq!(out.stderr, "", "-q prints nothing else:\n{out}");
    assert_eq!(inspect_image(&tag)["Id"], id, "{out}");
}

#[test]
fn iidfile_holds_the_image_id() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "config");
    let tag = images.tag("iid");
    let iidfile = ctx.beside("iid");
    build(&["--iidfile", &iidfile, "-t", &tag, &ctx.dir]).ok();
    let id = std::fs::read_to_string(&iidfile).unwrap_or_else(|e| panic!("{iidfile}: {e}"));
    assert!(is_image_id(&id), "{iidfile} holds {id:?}");
    assert_eq!(inspect_image(&tag)["Id"], id.as_str());
}

// --- Dockerfile on stdin ---------------------------------------------------------------

#[test]
fn build_f_dash_reads_the_dockerfile_from_stdin() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "outputs");
    let tag = images.tag("f-stdin");
    let dockerfile = "FROM busybox\nCOPY hello.txt /from-stdin.txt\n";
    build_with(
        &[],
        &["-f", "-", "-t", &tag, &ctx.dir],
        Input::Bytes(dockerfile.into()),
    )
    .ok();
    assert_eq!(
        run_image(&tag, &["cat", "/from-stdin.txt"]),
        "hello from the build context\n"
    );
}

#[test]
fn build_dash_builds_a_dockerfile_from_stdin_without_context() {
    stack();
    let mut images = Images::new();
    let tag = images.tag("stdin");
    let dockerfile = "FROM busybox\nRUN echo built from stdin > /marker\n";
    build_with(&[], &["-t", &tag, "-"], Input::Bytes(dockerfile.into())).ok();
    assert_eq!(run_image(&tag, &["cat", "/marker"]), "built from stdin\n");
}

// --- platform -------------------------------------------------------------------------

#[test]
fn build_platform_accepts_the_native_platform_only() {
    stack();
    let mut cleanup = Cleanup::new();
    let ctx = Context::new(&mut cleanup, "outputs");
    let dest = ctx.beside("native");
    build(&[
        "--platform",
        "linux/amd64",
        "--output",
        &format!("type=local,dest={dest}"),
        &ctx.dir,
    ])
    .ok();
    let out = build(&[
        "--platform",
        "linux/arm64",
        "--output",
        &format!("type=local,dest={}", ctx.beside("foreign")),
        &ctx.dir,
    ]);
    out.failed();
    out.stderr_has("linux/arm64");
    assert!(walk(&ctx.beside("foreign")).is_empty(), "{out}");
}

// --- progress ---------------------------------------------------------------------------

#[test]
fn progress_plain_prints_buildkits_numbered_steps() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "heredoc");
    let tag = images.tag("plain");
    let out = build(&["--progress", "plain", "--no-cache", "-t", &tag, &ctx.dir]);
    out.ok();
    // buildx's plain format: `#N [stage i/n] INSTRUCTION`, then `#N DONE t`.
    let steps: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with('#') && l.contains(" [") && l.contains("RUN "))
        .collect();
    assert!(!steps.is_empty(), "no `#N [i/n] RUN …` line:\n{out}");
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with('#') && l.contains(" DONE ")),
        "no `#N DONE` line:\n{out}"
    );
}

/// `#N [1/2] RUN …` followed by `#N CACHED` in buildx's plain output.
fn run_step_cached(out: &Out, marker: &str) -> bool {
    let lines: Vec<&str> = out.stderr.lines().collect();
    let Some(start) = lines
        .iter()
        .position(|l| l.starts_with('#') && l.contains("RUN echo") && l.contains(marker))
    else {
        panic!("no RUN step line in the plain output:\n{out}");
    };
    let number = lines[start].split_whitespace().next().unwrap_or_default();
    lines[start + 1..]
        .iter()
        .any(|l| *l == format!("{number} CACHED"))
}

#[test]
fn a_rebuild_reuses_the_cache_and_no_cache_reruns_the_steps() {
    stack();
    let mut cleanup = Cleanup::new();
    let ctx = Context::new(&mut cleanup, "outputs");
    let marker = unique("cache-marker");
    let dockerfile = format!("FROM busybox\nRUN echo {marker} > /marker\n");
    let dest = format!("type=local,dest={}", ctx.beside("out"));
    let build_once = |extra: &[&str]| {
        let mut args = vec!["--progress", "plain", "-f", "-", "--output", &dest];
        args.extend_from_slice(extra);
        args.push(&ctx.dir);
        let out = build_with(&[], &args, Input::Bytes(dockerfile.clone().into()));
        out.ok();
        out
    };
    let first = build_once(&[]);
    assert!(
        !run_step_cached(&first, &marker),
        "a new step ran:\n{first}"
    );
    let again = build_once(&[]);
    assert!(
        run_step_cached(&again, &marker),
        "the same step is cached:\n{again}"
    );
    let fresh = build_once(&["--no-cache"]);
    assert!(
        !run_step_cached(&fresh, &marker),
        "--no-cache reruns it:\n{fresh}"
    );
}

#[test]
fn progress_rawjson_streams_buildkits_status_as_json() {
    use base64::Engine as _;
    stack();
    let mut cleanup = Cleanup::new();
    let ctx = Context::new(&mut cleanup, "outputs");
    let dockerfile = "FROM busybox\nRUN echo rawjson-marker-77\n";
    let out = build_with(
        &[],
        &[
            "--progress",
            "rawjson",
            "--no-cache",
            "-f",
            "-",
            "--output",
            &format!("type=local,dest={}", ctx.beside("out")),
            &ctx.dir,
        ],
        Input::Bytes(dockerfile.into()),
    );
    out.ok();
    // buildx's rawjson: a stream of BuildKit SolveStatus objects, log data
    // in base64.
    let statuses: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&out.stderr)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("stderr is not a stream of JSON values ({e}):\n{out}"));
    assert!(!statuses.is_empty(), "{out}");
    let names: Vec<&str> = statuses
        .iter()
        .filter_map(|s| s["vertexes"].as_array())
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.contains("RUN echo rawjson-marker-77")),
        "no vertex for the RUN step: {names:?}"
    );
    let logs: String = statuses
        .iter()
        .filter_map(|s| s["logs"].as_array())
        .flatten()
        .filter_map(|l| l["data"].as_str())
        .map(|d| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(d)
                .unwrap_or_else(|e| panic!("log data {d:?} is not base64: {e}"));
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .collect();
    assert!(
        logs.contains("rawjson-marker-77\n"),
        "the step's log: {logs:?}"
    );
}

// --- incremental context transfer ----------------------------------------------------

/// Files of the generated large context and the size of each.
const LARGE_FILES: usize = 3000;
const LARGE_FILE_SIZE: usize = 4096;

fn large_file(i: usize) -> Vec<u8> {
    let line = format!("file {i:05} of the large context\n");
    line.as_bytes()
        .iter()
        .cycle()
        .take(LARGE_FILE_SIZE)
        .copied()
        .collect()
}

/// The incremental fixture with `LARGE_FILES` generated files.
fn large_context(cleanup: &mut Cleanup) -> Context {
    let ctx = Context::new(cleanup, "incremental");
    for i in 0..LARGE_FILES {
        ctx.write(&format!("files/d{:02}/f{i:05}.txt", i % 30), large_file(i));
    }
    ctx.give_to_agent();
    ctx
}

/// Reproduces `ERROR: failed to solve: h2 protocol error: http2 error` part
/// way through sending a context of a few thousand files (the Engine logs
/// `http2: received GOAWAY` from its client at that moment).
#[test]
fn a_12_mib_context_of_3000_files_is_sent_whole() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = large_context(&mut cleanup);
    let tag = images.tag("large");
    // --no-cache: every file is read by the COPY, whatever an earlier run left.
    let out = build_with(
        &["BERTH_DEBUG_TRANSFER=1"],
        &["--no-cache", "-t", &tag, &ctx.dir],
        Input::Null,
    );
    out.ok();
    assert_eq!(
        run_image(&tag, &["sh", "-c", "find /files -type f | wc -l"]).trim(),
        LARGE_FILES.to_string()
    );
}

#[test]
fn changing_one_file_of_a_large_context_sends_only_that_file() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = large_context(&mut cleanup);
    let debug = ["BERTH_DEBUG_TRANSFER=1"];

    let first = images.tag("large-1");
    let out = build_with(&debug, &["-t", &first, &ctx.dir], Input::Null);
    out.ok();
    let sent = transfers(&out);
    let (bytes, files) = sent
        .iter()
        .fold((0, 0), |(b, f), s| (b + s.bytes, f + s.files));
    assert!(
        files >= LARGE_FILES as u64 && bytes >= (LARGE_FILES * LARGE_FILE_SIZE) as u64,
        "the first build must send the whole context, sent {sent:?}:\n{out}"
    );

    let changed = "files/d07/f01237.txt";
    let content = "changed after the first build\n".repeat(100);
    ctx.write(changed, &content);
    ctx.give_to_agent();
    let second = images.tag("large-2");
    let out = build_with(&debug, &["-t", &second, &ctx.dir], Input::Null);
    out.ok();
    let sent = transfers(&out);
    assert!(!sent.is_empty(), "no transfer line:\n{out}");
    let (bytes, files) = sent
        .iter()
        .fold((0, 0), |(b, f), s| (b + s.bytes, f + s.files));
    // The changed file, and the Dockerfile, which its own transfer sends
    // again on every build (as docker's does: `transferring dockerfile`).
    let dockerfile_len = std::fs::metadata(ctx.path("Dockerfile"))
        .expect("Dockerfile")
        .len();
    let changed_len = content.len() as u64;
    assert!(
        files <= 2 && bytes >= changed_len && bytes <= changed_len + dockerfile_len,
        "the second build must send the changed file ({changed_len} bytes) and at most the \
         Dockerfile ({dockerfile_len} bytes) besides, sent {sent:?}:\n{out}"
    );
    assert_eq!(
        run_image(&second, &["cat", &format!("/{changed}")]),
        content
    );
}
