//! Path patterns with docker's `.dockerignore` semantics.
//!
//! The rules follow moby/patternmatcher, which BuildKit applies to the
//! `include-patterns` and `exclude-patterns` of a context transfer:
//!
//! * a pattern is trimmed and cleaned like Go's `filepath.Clean` (`./a//b/`
//!   is `a/b`), a leading `!` makes it an exception to the patterns before it;
//! * `*` and `?` never cross a `/`, `**` crosses any number of directories,
//!   `[...]` is a character class, `\` escapes the next character;
//! * a pattern that matches a directory matches everything below it;
//! * the last pattern that matches a path decides.
//!
//! `read_dockerignore` turns a `.dockerignore` file into such patterns with
//! docker's ignorefile rules (comments, blank lines, a leading `/` dropped).

use regex::Regex;

/// A pattern that cannot be compiled (moby answers `filepath.ErrBadPattern`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("illegal exclusion pattern: \"!\"")]
    LoneExclamation,
    #[error("syntax error in pattern {0:?}")]
    Syntax(String),
}

/// How one pattern is matched; plain patterns avoid the regex engine.
#[derive(Debug, Clone)]
enum Kind {
    /// No wildcard: the path equals the pattern.
    Exact,
    /// `prefix/**`: the path starts with `prefix/`.
    Prefix(String),
    /// `**/suffix` (or `**suffix`) without later wildcards.
    Suffix(String),
    Regex(Regex),
}

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The cleaned pattern without its `!`.
    text: String,
    exclusion: bool,
    kind: Kind,
}

impl Pattern {
    fn compile(raw: &str) -> Result<Option<Self>, PatternError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let mut text = clean_path(trimmed);
        let exclusion = text.starts_with('!');
        if exclusion {
            if text.len() == 1 {
                return Err(PatternError::LoneExclamation);
            }
            text.remove(0);
        }
        check_glob_syntax(&text)?;
        let kind = classify(&text)?;
        Ok(Some(Self {
            text,
            exclusion,
            kind,
        }))
    }

    /// Whether this is a `!` exception.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    /// The pattern without a trailing `/**` or `/*`: the directory a walk
    /// must enter for the pattern to match anything.
    pub fn without_trailing_glob(&self) -> &str {
        let p = self.text.strip_suffix("/**").unwrap_or(&self.text);
        p.strip_suffix("/*").unwrap_or(p)
    }

    /// Whether the pattern contains a wildcard before its trailing glob, so
    /// that no prefix test can tell which directories it may enter.
    pub fn has_wildcard_prefix(&self) -> bool {
        self.without_trailing_glob()
            .contains(['*', '[', ']', '?', '^', '\\'])
    }

    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                // `**/foo` also matches `foo` itself.
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }
}

/// Turns a cleaned pattern into its matcher, as patternmatcher's compile does:
/// `**` at the end makes a prefix match, `**` at the start a suffix match
/// (unless wildcards follow), anything else with a wildcard a regex.
fn classify(pattern: &str) -> Result<Kind, PatternError> {
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut detected = Detected::Exact;
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        re.push_str(".*");
                        detected = Detected::Regex;
                    }
                } else {
                    // any number of directories, including none
                    re.push_str("(.*/)?");
                    detected = Detected::Regex;
                }
                if first {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                detected = Detected::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                detected = Detected::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => {
                if let Some(&next) = chars.get(i) {
                    i += 1;
                    re.push('\\');
                    re.push(next);
                    detected = Detected::Regex;
                } else {
                    re.push('\\');
                }
            }
            '[' | ']' => {
                re.push(ch);
                detected = Detected::Regex;
            }
            _ => re.push(ch),
        }
        first = false;
    }
    Ok(match detected {
        Detected::Exact => Kind::Exact,
        Detected::Prefix => Kind::Prefix(pattern[..pattern.len() - 2].to_string()),
        Detected::Suffix => Kind::Suffix(pattern[2..].to_string()),
        Detected::Regex => {
            re.push('$');
            Kind::Regex(Regex::new(&re).map_err(|_| PatternError::Syntax(pattern.to_string()))?)
        }
    })
}

/// The syntax check Go's `filepath.Match` applies: a trailing `\` and a
/// malformed `[...]` class are errors.
fn check_glob_syntax(pattern: &str) -> Result<(), PatternError> {
    let bad = || PatternError::Syntax(pattern.to_string());
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return Err(bad());
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut items = 0;
                loop {
                    match chars.get(i) {
                        None => return Err(bad()),
                        Some(']') if items > 0 => {
                            i += 1;
                            break;
                        }
                        _ => {}
                    }
                    // one class item: a character, optionally `-` and a character
                    i = class_char(&chars, i).ok_or_else(bad)?;
                    if chars.get(i) == Some(&'-') {
                        i = class_char(&chars, i + 1).ok_or_else(bad)?;
                    }
                    items += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Reads one character of a class at `i` (possibly escaped) and returns the
/// index after it; `-` and `]` are not characters there (Go's getEsc).
fn class_char(chars: &[char], i: usize) -> Option<usize> {
    match chars.get(i)? {
        '-' | ']' => None,
        '\\' => chars.get(i + 1).map(|_| i + 2),
        _ => Some(i + 1),
    }
}

/// Go's `filepath.Match` of one path component against a glob (used to
/// expand wildcards in followpaths); a malformed glob matches nothing.
pub fn match_component(glob: &str, name: &str) -> bool {
    if check_glob_syntax(glob).is_err() {
        return false;
    }
    let Ok(kind) = classify(glob) else {
        return false;
    };
    Pattern {
        text: glob.to_string(),
        exclusion: false,
        kind,
    }
    .matches(name)
}

/// Per-directory match results carried from a directory to its entries, so a
/// walk does not re-test every ancestor (patternmatcher's `MatchInfo`).
#[derive(Debug, Clone, Default)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// An ordered list of patterns, the later ones overriding the earlier.
#[derive(Debug, Clone)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl PatternMatcher {
    /// Compiles `patterns`; blank ones are skipped.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let mut out = Vec::with_capacity(patterns.len());
        for p in patterns {
            if let Some(p) = Pattern::compile(p.as_ref())? {
                out.push(p);
            }
        }
        let exclusions = out.iter().any(|p| p.exclusion);
        Ok(Self {
            patterns: out,
            exclusions,
        })
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is a `!` exception.
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether `path` (slash-separated, relative, cleaned) or one of its
    /// parent directories matches.
    #[cfg(test)]
    pub fn matches_or_parent_matches(&self, path: &str) -> bool {
        self.matches_using_parent_results(path, &MatchInfo::default())
            .0
    }

    /// Like `matches_or_parent_matches`, with the results of `path`'s parent
    /// directory given: a pattern that matched the parent matches `path`.
    /// The zero `MatchInfo` means "no parent results": every ancestor is
    /// tested instead.
    pub fn matches_using_parent_results(
        &self,
        path: &str,
        parent: &MatchInfo,
    ) -> (bool, MatchInfo) {
        let known =
            parent.parent_matched.len() == self.patterns.len() && !parent.parent_matched.is_empty();
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        let mut matched = false;
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = known && parent.parent_matched[i];
            if !hit {
                // An inclusion cannot change a match, an exception cannot
                // change a non-match: skip the test.
                if pattern.exclusion != matched {
                    continue;
                }
                hit = pattern.matches(path);
                if !hit && !known {
                    hit = ancestors(path).any(|dir| pattern.matches(dir));
                }
            }
            info.parent_matched[i] = hit;
            if hit {
                matched = !pattern.exclusion;
            }
        }
        (matched, info)
    }
}

/// `a`, `a/b` for the path `a/b/c`: every proper ancestor, shortest first.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// Go's `filepath.Clean` on a slash-separated path: collapses `//`, drops
/// `.`, resolves `..` lexically, drops a trailing `/`; `""` becomes `.`.
pub fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Reads a `.dockerignore` file into patterns with docker's rules: a line
/// whose first character is `#` is a comment, lines are trimmed, blank lines
/// are skipped, a leading `!` marks an exception, each pattern is cleaned and
/// a leading `/` dropped (`/foo` means `foo` in the context).
// BuildKit's Dockerfile frontend reads `.dockerignore` itself; this is for
// callers that need the patterns on the client (agreed API of this module).
#[allow(dead_code)]
pub fn read_dockerignore(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        // the comment test comes before trimming, as in docker
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean_path(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        out.push(if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(patterns: &[&str]) -> PatternMatcher {
        PatternMatcher::new(patterns).expect("patterns compile")
    }

    #[test]
    fn single_patterns_match_like_patternmatcher() {
        // (pattern, path, matches) — cases from docker's documentation and
        // patternmatcher's own tests.
        let cases: &[(&str, &str, bool)] = &[
            ("fileutils.go", "fileutils.go", true),
            ("*.go", "fileutils.go", true),
            ("*.go", "dir/fileutils.go", false),
            ("*/temp*", "somedir/temporary.txt", true),
            ("*/temp*", "somedir/sub/temporary.txt", false),
            ("*/*/temp*", "somedir/subdir/temporary.txt", true),
            ("temp?", "temp1", true),
            ("temp?", "temp12", false),
            ("temp?", "temp/", false),
            ("**/*.go", "file.go", true),
            ("**/*.go", "dir/sub/file.go", true),
            ("**/*.go", "dir/sub/file.goo", false),
            ("**", "anything/at/all", true),
            ("**/foo", "foo", true),
            ("**/foo", "a/b/foo", true),
            ("**/foo", "a/bfoo", false),
            ("dir/**", "dir/a/b", true),
            ("dir/**", "other/a", false),
            ("dir/**/x", "dir/x", true),
            ("dir/**/x", "dir/a/b/x", true),
            ("a[bc]d", "abd", true),
            ("a[bc]d", "aed", false),
            ("a[^bc]d", "aed", true),
            ("a[a-c]d", "abd", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("abc.def", "abcxdef", false),
            ("a+b", "a+b", true),
            ("(x)", "(x)", true),
            ("./dir//file/", "dir/file", true),
            ("dir/../file", "file", true),
            ("  spaced  ", "spaced", true),
        ];
        for (pattern, path, want) in cases {
            let got = m(&[pattern]).matches_or_parent_matches(path);
            assert_eq!(got, *want, "pattern {pattern:?} path {path:?}");
        }
    }

    #[test]
    fn a_matching_directory_matches_its_contents() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["docs"], "docs/a/b.md", true),
            (&["docs"], "docsx/a.md", false),
            (&["*/tmp"], "a/tmp/file", true),
            (&["a/b"], "a/b/c/d", true),
            (&["a/b"], "a/bc", false),
        ];
        for (patterns, path, want) in cases {
            assert_eq!(
                m(patterns).matches_or_parent_matches(path),
                *want,
                "{patterns:?} {path:?}"
            );
        }
    }

    #[test]
    fn exceptions_follow_the_last_matching_pattern() {
        // docker's documented example: all markdown but README*.md excluded,
        // then README-secret.md excluded again.
        let pm = m(&["*.md", "!README*.md", "README-secret.md"]);
        let cases = [
            ("CHANGES.md", true),
            ("README.md", false),
            ("README-x.md", false),
            ("README-secret.md", true),
            ("main.go", false),
        ];
        for (path, want) in cases {
            assert_eq!(pm.matches_or_parent_matches(path), want, "{path}");
        }
        let pm = m(&["*.md", "README-secret.md", "!README*.md"]);
        assert!(!pm.matches_or_parent_matches("README-secret.md"));

        // an exception below an excluded directory
        let pm = m(&["vendor", "!vendor/keep/**"]);
        assert!(pm.matches_or_parent_matches("vendor/drop.txt"));
        assert!(!pm.matches_or_parent_matches("vendor/keep/a.txt"));
        assert!(pm.has_exclusions());

        // `**` exceptions
        let pm = m(&["**/*.log", "!important/**/*.log"]);
        assert!(pm.matches_or_parent_matches("x/y/debug.log"));
        assert!(!pm.matches_or_parent_matches("important/deep/dir/a.log"));
    }

    #[test]
    fn parent_results_give_the_same_answer_as_full_matching() {
        let pm = m(&["a", "!a/keep", "b/*.txt", "**/deep", "!c/**/x"]);
        let paths = [
            "a",
            "a/x",
            "a/keep",
            "a/keep/y",
            "b",
            "b/f.txt",
            "b/sub/f.txt",
            "c",
            "c/deep",
            "c/deep/x",
            "c/d/x",
        ];
        // walk-order parent results, as the walker keeps them
        let mut infos: std::collections::HashMap<String, MatchInfo> = Default::default();
        for path in paths {
            let parent = path.rsplit_once('/').map(|(p, _)| p.to_string());
            let info = parent
                .and_then(|p| infos.get(&p).cloned())
                .unwrap_or_default();
            let (got, info) = pm.matches_using_parent_results(path, &info);
            assert_eq!(got, pm.matches_or_parent_matches(path), "{path}");
            infos.insert(path.to_string(), info);
        }
    }

    #[test]
    fn bad_patterns_are_errors() {
        for p in ["!", "[", "a[", "[]", "[-a]", "a\\", "[a-]"] {
            assert!(
                PatternMatcher::new(&[p]).is_err(),
                "{p:?} should be refused"
            );
        }
        for p in ["[a-c]", "a\\[", "[\\]]", "[^a]"] {
            assert!(PatternMatcher::new(&[p]).is_ok(), "{p:?} should compile");
        }
    }

    #[test]
    fn trailing_glob_and_wildcard_prefix() {
        let pm = m(&["dir/**", "a/b/*", "x*/y", "plain"]);
        let got: Vec<(&str, bool)> = pm
            .patterns()
            .iter()
            .map(|p| (p.without_trailing_glob(), p.has_wildcard_prefix()))
            .collect();
        assert_eq!(
            got,
            [
                ("dir", false),
                ("a/b", false),
                ("x*/y", true),
                ("plain", false)
            ]
        );
    }

    #[test]
    fn component_globs() {
        let cases = [
            ("l*", "l1", true),
            ("l*", "anotherlink", false),
            ("*link", "anotherlink", true),
            ("b?r", "bar", true),
            ("[", "[", false),
        ];
        for (glob, name, want) in cases {
            assert_eq!(match_component(glob, name), want, "{glob} {name}");
        }
    }

    #[test]
    fn clean_path_is_go_filepath_clean() {
        let cases = [
            ("", "."),
            (".", "."),
            ("./a", "a"),
            ("a/", "a"),
            ("a//b", "a/b"),
            ("a/./b", "a/b"),
            ("a/../b", "b"),
            ("../a", "../a"),
            ("a/../../b", "../b"),
            ("/../a", "/a"),
            ("/", "/"),
            ("//a/", "/a"),
        ];
        for (input, want) in cases {
            assert_eq!(clean_path(input), want, "{input:?}");
        }
    }

    #[test]
    fn dockerignore_lines_follow_docker_rules() {
        let text = "\u{feff}test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n ! /inverted/abs/path\n!\n! \n  # not a comment\r\n./dot/./slash/\n*.md\n!README.md\n";
        assert_eq!(
            read_dockerignore(text),
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "!",
                "!",
                "# not a comment",
                "dot/slash",
                "*.md",
                "!README.md",
            ]
        );
        assert!(read_dockerignore("").is_empty());
        assert_eq!(read_dockerignore("/"), ["/"]);
    }
}
