//! The part of Go's `text/tabwriter` buildx's tables use (minwidth 0,
//! tabwidth 0, pad with spaces, no flags): every tab-terminated cell is
//! padded to its column's widest cell plus `padding`; a line's last cell is
//! written as it is, so a row whose last column is empty keeps the spaces
//! that pad the cell before it.

/// Lays out `rows` (each the cells of one line; all but the last of each
/// line are tab-terminated cells) as one block.
pub(crate) fn table(rows: &[Vec<String>], padding: usize) -> String {
    let columns = rows
        .iter()
        .map(|r| r.len().saturating_sub(1))
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter(|r| c + 1 < r.len())
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
                + padding
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if c + 1 < row.len() {
                let width = widths.get(c).copied().unwrap_or(0);
                let pad = width.saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_pad_to_the_widest_and_a_trailing_empty_cell_keeps_them() {
        let rows = vec![
            vec!["SECRET".to_string(), "REQUIRED".to_string()],
            vec!["token".to_string(), "true".to_string()],
            vec!["a-long-name".to_string(), String::new()],
        ];
        assert_eq!(
            table(&rows, 3),
            "SECRET        REQUIRED\ntoken         true\na-long-name   \n"
        );
    }
}
