//! Elastic tabstops as Go's `text/tabwriter` lays them out, which docker uses
//! for every table (`minwidth 10, padding 3` for lists, `20, 1` for `docker
//! version`).
//!
//! Cells are tab-terminated: the text after a line's last tab is not part of
//! a column. A column is a run of consecutive lines that have a cell at that
//! index; a line with fewer cells ends the run, so blocks separated by such a
//! line are aligned independently. A column's width is the widest cell plus
//! the padding, but at least the minimum width.

/// Aligns `text` and returns it; padding is spaces.
pub fn align(text: &str, min_width: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut w = Writer {
        lines: &lines,
        min_width,
        padding,
        widths: Vec::new(),
        out: String::new(),
    };
    w.format(0, lines.len());
    w.out
}

struct Writer<'a> {
    lines: &'a [Vec<&'a str>],
    min_width: usize,
    padding: usize,
    /// Widths of the columns to the left of the one being laid out.
    widths: Vec<usize>,
    out: String,
}

fn width(cell: &str) -> usize {
    cell.chars().count()
}

impl Writer<'_> {
    /// Whether line `i` has a tab-terminated cell in `column`.
    fn has_cell(&self, i: usize, column: usize) -> bool {
        column + 1 < self.lines[i].len()
    }

    fn format(&mut self, line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut start = line0;
        let mut this = line0;
        while this < line1 {
            if !self.has_cell(this, column) {
                this += 1;
                continue;
            }
            // Lines before this block need no more columns: write them.
            self.write_lines(start, this);
            start = this;
            let mut w = self.min_width;
            while this < line1 && self.has_cell(this, column) {
                w = w.max(width(self.lines[this][column]) + self.padding);
                this += 1;
            }
            self.widths.push(w);
            self.format(start, this);
            self.widths.pop();
            start = this;
        }
        self.write_lines(start, line1);
    }

    fn write_lines(&mut self, line0: usize, line1: usize) {
        for i in line0..line1 {
            for (j, cell) in self.lines[i].iter().enumerate() {
                self.out.push_str(cell);
                if j < self.widths.len() && j + 1 < self.lines[i].len() {
                    let pad = self.widths[j].saturating_sub(width(cell));
                    self.out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            if i + 1 < self.lines.len() {
                self.out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_docker_images_table() {
        let text = "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\n\
                    busybox\tlatest\tfdc310b9719d\t10 months ago\t2.13MB\n\
                    localhost:5000/app\tv1.2.3\t0123456789ab\t56 years ago\t100kB\n";
        let want = "REPOSITORY           TAG       IMAGE ID       CREATED         SIZE\n\
                    busybox              latest    fdc310b9719d   10 months ago   2.13MB\n\
                    localhost:5000/app   v1.2.3    0123456789ab   56 years ago    100kB\n";
        assert_eq!(align(text, 10, 3), want);
    }

    #[test]
    fn lines_without_tabs_split_blocks() {
        let text =
            "Client:\n Version:\t1\n API version:\t1.45\n\nServer:\n Engine:\n  Version:\t2\n";
        let want = "Client:\n Version:           1\n API version:       1.45\n\nServer:\n Engine:\n  Version:          2\n";
        assert_eq!(align(text, 20, 1), want);
    }

    #[test]
    fn last_cell_is_not_padded_and_ragged_lines_work() {
        assert_eq!(align("a\tb\nccc\n", 0, 1), "a b\nccc\n");
        assert_eq!(align("a\tb\tc\naaaa\tb\n", 0, 1), "a    b c\naaaa b\n");
        assert_eq!(align("x\t\n", 4, 0), "x   \n");
        assert_eq!(align("", 10, 3), "");
    }
}
