use super::*;
use clap::Parser;

struct FakeEnv {
    vars: HashMap<String, String>,
    tty: bool,
}

impl Env for FakeEnv {
    fn var(&self, key: &str) -> Option<String> {
        self.vars.get(key).cloned()
    }
    fn stderr_is_terminal(&self) -> bool {
        self.tty
    }
    fn stdout_is_terminal(&self) -> bool {
        self.tty
    }
    fn platform(&self) -> String {
        "linux/amd64".into()
    }
    fn is_dir(&self, path: &Path) -> bool {
        path != Path::new("file")
    }
    fn exists(&self, path: &Path) -> bool {
        path != Path::new("missing")
    }
}

#[derive(Debug, Parser)]
struct T {
    #[command(flatten)]
    b: BuildArgs,
}

fn env() -> FakeEnv {
    FakeEnv {
        vars: [("FROM_ENV".to_string(), "e".to_string())].into(),
        tty: false,
    }
}

fn decode_with(args: &[&str], env: &FakeEnv) -> Result<BuildOptions, Invalid> {
    let mut v = vec!["build"];
    v.extend_from_slice(args);
    let a = T::try_parse_from(v).expect("parses").b;
    BuildOptions::decode(&a, env)
}

fn decode(args: &[&str]) -> Result<BuildOptions, Invalid> {
    decode_with(args, &env())
}

fn err(args: &[&str]) -> String {
    decode(args).expect_err("refused").to_string()
}

#[test]
fn defaults() {
    let o = decode(&["ctx"]).unwrap();
    assert_eq!(o.context, Context::Dir("ctx".into()));
    assert_eq!(o.dockerfile, Dockerfile::Path("ctx/Dockerfile".into()));
    assert_eq!(
        o.frontend_attrs,
        BTreeMap::from([("filename".into(), "Dockerfile".into())])
    );
    assert_eq!(o.output, Output::Load);
    assert_eq!(o.progress, Progress::Plain);
    assert!(!o.print_id);
}

#[test]
fn attrs_as_buildx_sets_them() {
    let o = decode(&[
        "-f",
        "sub/Custom.df",
        "--target",
        "t",
        "--build-arg",
        "A=1",
        "--build-arg",
        "FROM_ENV",
        "--build-arg",
        "UNSET",
        "--label",
        "l=v",
        "--label",
        "bare",
        "--no-cache",
        "--pull",
        "--platform",
        "linux/amd64",
        "ctx",
    ])
    .unwrap();
    let want: BTreeMap<String, String> = [
        ("filename", "Custom.df"),
        ("target", "t"),
        ("build-arg:A", "1"),
        ("build-arg:FROM_ENV", "e"),
        ("label:l", "v"),
        ("label:bare", ""),
        ("no-cache", ""),
        ("image-resolve-mode", "pull"),
        ("platform", "linux/amd64"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(o.frontend_attrs, want);
    assert_eq!(o.dockerfile, Dockerfile::Path("sub/Custom.df".into()));
    assert!(!o.build_args.contains_key("UNSET"));
}

#[test]
fn no_cache_filter_names_stages() {
    let o = decode(&["--no-cache-filter", "a", "--no-cache-filter", "b", "."]).unwrap();
    assert_eq!(o.frontend_attrs["no-cache"], "a,b");
}

#[test]
fn tags_are_normalised_and_checked() {
    let o = decode(&[
        "-t",
        "app",
        "-t",
        "app:latest",
        "-t",
        "reg.io:5000/x/y:2",
        ".",
    ])
    .unwrap();
    assert_eq!(
        o.tags,
        ["docker.io/library/app:latest", "reg.io:5000/x/y:2"]
    );
    assert_eq!(
        err(&["-t", "App", "."]),
        "invalid tag \"App\": invalid reference format: repository name (library/App) must be lowercase"
    );
}

#[test]
fn stdin_dockerfile() {
    let o = decode(&["-"]).unwrap();
    assert_eq!(
        (o.context, o.dockerfile),
        (Context::Stdin, Dockerfile::Stdin)
    );
    let o = decode(&["-f", "-", "ctx"]).unwrap();
    assert_eq!(o.dockerfile, Dockerfile::Stdin);
    assert!(decode(&["-f", "x", "-"]).is_err());
}

#[test]
fn context_errors() {
    assert_eq!(
        err(&["missing"]),
        "unable to prepare context: path \"missing\" not found"
    );
    assert!(err(&["https://example.com/x.git"]).ends_with("is not supported by berth"));
    assert!(err(&[]).starts_with("\"docker buildx build\" requires exactly 1 argument."));
    assert!(decode(&["a", "b"]).is_err());
}

#[test]
fn unsupported_flags_and_accepted_no_ops() {
    assert_eq!(
        err(&["--cache-to", "type=inline", "."]),
        "--cache-to is not supported by berth"
    );
    assert_eq!(err(&["--push", "."]), "--push is not supported by berth");
    assert!(err(&["--provenance=true", "."]).contains("not supported by berth"));
    assert!(err(&["--sbom", "."]).contains("not supported by berth"));
    assert!(decode(&["--provenance=false", "--sbom=false", "--load", "."]).is_ok());
}

#[test]
fn network_and_platform_are_refused_with_a_reason() {
    assert!(decode(&["--network", "default", "."]).is_ok());
    assert_eq!(
        err(&["--network", "host", "."]),
        "--network=host (RUN steps always use the sandbox's network) is not supported by berth"
    );
    assert_eq!(
        err(&["--platform", "linux/arm64", "."]),
        "--platform=linux/arm64 (only the native platform linux/amd64 can be built) is not supported by berth"
    );
    assert!(err(&["--platform", "linux/amd64,linux/arm64", "."]).contains("multi-platform"));
    assert_eq!(
        decode(&["--platform", "amd64", "."])
            .unwrap()
            .frontend_attrs["platform"],
        "linux/amd64"
    );
}

#[test]
fn progress_modes() {
    let tty = FakeEnv {
        vars: HashMap::new(),
        tty: true,
    };
    assert_eq!(decode_with(&["."], &tty).unwrap().progress, Progress::Tty);
    assert_eq!(
        decode(&["--progress", "rawjson", "."]).unwrap().progress,
        Progress::RawJson
    );
    let q = decode(&["-q", "."]).unwrap();
    assert!(q.print_id && q.progress == Progress::Quiet);
    assert_eq!(
        err(&["-q", "--progress", "plain", "."]),
        "progress=plain and quiet cannot be used together"
    );
    assert_eq!(
        err(&["--progress", "tty", "."]),
        "failed to get console: provided file is not a console"
    );
    assert_eq!(
        err(&["--progress", "fancy", "."]),
        "invalid progress mode fancy"
    );
}

#[test]
fn outputs() {
    assert_eq!(
        decode(&["-o", "out", "."]).unwrap().output,
        Output::Local("out".into())
    );
    assert_eq!(
        decode(&["-o", "-", "."]).unwrap().output,
        Output::Tar(Dest::Stdout)
    );
    assert_eq!(
        decode(&["--output", "type=tar,dest=a.tar", "."])
            .unwrap()
            .output,
        Output::Tar(Dest::File("a.tar".into()))
    );
    assert_eq!(
        decode(&["-o", "type=oci,dest=a.tar,name=x", "."])
            .unwrap()
            .output,
        Output::Image {
            kind: "oci",
            dest: Dest::File("a.tar".into()),
            attrs: [("name".to_string(), "x".to_string())].into()
        }
    );
    assert_eq!(
        decode(&["-o", "type=docker", "."]).unwrap().output,
        Output::Load
    );
    assert!(err(&["-o", "type=registry", "."]).contains("not supported by berth"));
    assert_eq!(
        err(&["-o", "type=local", "."]),
        "dest is required for local exporter"
    );
    let tty = FakeEnv {
        vars: HashMap::new(),
        tty: true,
    };
    assert!(decode_with(&["-o", "-", "."], &tty).is_err());
    assert!(err(&["-o", "a", "-o", "b", "."]).contains("more than one"));
}

#[test]
fn build_contexts_only_from_images() {
    let o = decode(&["--build-context", "base=docker-image://busybox", "."]).unwrap();
    assert_eq!(
        o.image_contexts,
        [("base".to_string(), "busybox".to_string())]
    );
    assert!(err(&["--build-context", "x=../dir", "."]).contains("not supported by berth"));
}
