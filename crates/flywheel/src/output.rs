//! Printing reports as an aligned table, JSON or CSV (`--format`).

use crate::cli::OutputFormat;

/// Prints `rows` under `headers`; `json` is the same data as JSON, used for `--format json`.
pub fn print(format: OutputFormat, headers: &[&str], rows: &[Vec<String>], json: &serde_json::Value) {
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(json).unwrap_or_default()),
        OutputFormat::Csv => {
            println!(
                "{}",
                headers.iter().map(|h| csv_cell(h)).collect::<Vec<_>>().join(",")
            );
            for r in rows {
                println!("{}", r.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
            }
        }
        OutputFormat::Table => print!("{}", table(headers, rows)),
    }
}

/// `rows` under `headers` as an aligned plain-text table, one line each; control
/// characters in cells are written as escapes (a cell cannot break the line or drive
/// the terminal).
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| crate::log_fields::escape_controls(c).into_owned())
                .collect()
        })
        .collect();
    let rows = &rows;
    let mut widths: Vec<usize> = headers.iter().map(|h| display_width(h)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(display_width(c));
            }
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(display_width(c)))))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(headers.to_vec());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// Terminal width of text: CJK characters take two columns.
pub fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x20000..=0x3FFFD => 2,
            _ => 1,
        })
        .sum()
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_and_csv() {
        assert_eq!(display_width("上海abc"), 7);
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn table_cells_cannot_break_lines_or_drive_the_terminal() {
        let t = table(&["campaign"], &[vec!["雙11\n\u{1b}[31mFAKE".to_string()]]);
        assert_eq!(t, "campaign\n雙11\\n\\u{1b}[31mFAKE\n");
    }
}
