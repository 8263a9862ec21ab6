//! Terminal rendering the commands share: aligned columns whose cells may be
//! painted with ANSI colours, widths counted without the colour codes, every
//! cell escaped ([`printable`]) because cells hold servers' and registries'
//! words. Pure: text in, lines out; [`super::out`] writes them.

use crate::util::printable;

/// A colour for a cell or a line, applied only when colour is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Paint {
    Plain,
    Green,
    Yellow,
    Red,
    Dim,
}

impl Paint {
    /// `text` in this colour when `colour` is on (and `text` is not empty).
    pub(super) fn apply(self, text: &str, colour: bool) -> String {
        let code = match self {
            Paint::Plain => return text.to_owned(),
            Paint::Green => "32",
            Paint::Yellow => "33",
            Paint::Red => "31",
            Paint::Dim => "2",
        };
        if colour && !text.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Align {
    Left,
    Right,
}

/// Aligned columns, two spaces apart, widths from the text without colour codes;
/// the last column is not padded. Cells are escaped ([`printable`]): they hold
/// the servers' and the registry's words.
pub(super) fn table(header: &[(&str, Align)], rows: &[Vec<(String, Paint)>], colour: bool) -> Vec<String> {
    let rows: Vec<Vec<(String, Paint)>> = rows
        .iter()
        .map(|r| r.iter().map(|(t, p)| (printable(t).into_owned(), *p)).collect())
        .collect();
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].0.chars().count())
            .chain([header[i].0.len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |cells: Vec<(String, Paint)>| {
        let last = cells.len() - 1;
        let mut out = String::new();
        for (i, (text, paint)) in cells.into_iter().enumerate() {
            let pad = " ".repeat(widths[i] - text.chars().count());
            let painted = paint.apply(&text, colour);
            match header[i].1 {
                Align::Right => out.push_str(&format!("{pad}{painted}")),
                Align::Left if i == last => out.push_str(&painted),
                Align::Left => out.push_str(&format!("{painted}{pad}")),
            }
            if i != last {
                out.push_str("  ");
            }
        }
        out
    };
    let mut out = vec![line(
        header.iter().map(|(h, _)| (h.to_string(), Paint::Plain)).collect(),
    )];
    out.extend(rows.into_iter().map(line));
    out
}

/// `s` without ANSI colour codes (tests of coloured tables).
#[cfg(test)]
pub(super) fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Colour adds codes, never width; right-aligned columns pad on the left,
    /// the last column is not padded, and cells are escaped.
    #[test]
    fn columns_line_up_with_and_without_colour() {
        let header = [("NAME", Align::Left), ("N", Align::Right), ("NOTE", Align::Left)];
        let rows = vec![
            vec![
                ("a".to_owned(), Paint::Green),
                ("10".to_owned(), Paint::Plain),
                ("x".to_owned(), Paint::Plain),
            ],
            vec![
                ("long\x1b[2J".to_owned(), Paint::Red),
                ("7".to_owned(), Paint::Plain),
                (String::new(), Paint::Dim),
            ],
        ];
        let plain = table(&header, &rows, false);
        assert_eq!(
            plain,
            ["NAME          N  NOTE", "a            10  x", "long\\x1b[2J   7  ",]
        );
        let coloured = table(&header, &rows, true);
        assert_eq!(coloured[1], "\x1b[32ma\x1b[0m            10  x");
        assert_eq!(
            coloured[2], "\x1b[31mlong\\x1b[2J\x1b[0m   7  ",
            "empty cells stay unpainted"
        );
        let stripped: Vec<String> = coloured.iter().map(|l| strip_ansi(l)).collect();
        assert_eq!(stripped, plain);
    }
}
