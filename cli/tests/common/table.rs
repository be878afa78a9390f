//! docker's table output (`ps`, `images`), parsed by column.

/// A table as docker prints it (`ps`, `images`): columns found from the
/// header's titles, cells cut at the same character offsets (docker aligns
/// with Go's tabwriter, counting characters).
pub struct Table {
    pub titles: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Parses `text` whose first line is a header with the given titles, in order.
    #[track_caller]
    pub fn parse(text: &str, titles: &[&str]) -> Table {
        let mut lines = text.lines();
        let header = lines
            .next()
            .unwrap_or_else(|| panic!("no header in:\n{text}"));
        let found: Vec<&str> = header
            .split("  ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(found, titles, "docker's header, in order:\n{text}");
        let hchars: Vec<char> = header.chars().collect();
        let mut starts = Vec::new();
        let mut from = 0;
        for t in titles {
            let tchars: Vec<char> = t.chars().collect();
            let at = (from..hchars.len())
                .find(|&i| hchars[i..].starts_with(&tchars))
                .unwrap_or_else(|| panic!("title {t} not in header {header:?}"));
            starts.push(at);
            from = at + tchars.len();
        }
        let rows = lines
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let chars: Vec<char> = line.chars().collect();
                (0..starts.len())
                    .map(|i| {
                        let a = starts[i].min(chars.len());
                        let b = starts
                            .get(i + 1)
                            .copied()
                            .unwrap_or(chars.len())
                            .min(chars.len());
                        chars[a..b].iter().collect::<String>().trim().to_string()
                    })
                    .collect()
            })
            .collect();
        Table {
            titles: titles.iter().map(|s| s.to_string()).collect(),
            rows,
        }
    }

    /// The row whose `column` equals `value`.
    pub fn row(&self, column: &str, value: &str) -> Option<&Vec<String>> {
        let i = self.titles.iter().position(|t| t == column)?;
        self.rows.iter().find(|r| r[i] == value)
    }

    pub fn cell<'a>(&self, row: &'a [String], column: &str) -> &'a str {
        let i = self
            .titles
            .iter()
            .position(|t| t == column)
            .expect("known column");
        &row[i]
    }
}

pub const PS_TITLES: &[&str] = &[
    "CONTAINER ID",
    "IMAGE",
    "COMMAND",
    "CREATED",
    "STATUS",
    "PORTS",
    "NAMES",
];
pub const IMAGES_TITLES: &[&str] = &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"];

/// True for a docker container ID: 64 lower-case hex digits.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
