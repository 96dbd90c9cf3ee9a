//! What the commands print on standard output: lines, aligned tables and JSON.

use std::io::Write;

use serde_json::Value;

use super::Outcome;

/// Writes one line; a closed pipe ends the command quietly (see `Failure::OutputClosed`).
pub fn line(text: &str) -> Outcome {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    Ok(())
}

/// The API's JSON, pretty-printed for a person or a program.
pub fn json(value: &Value) -> Outcome {
    line(&serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()))
}

/// Columns whose widths are fixed by the first rows seen, so that a table can be printed as
/// its rows arrive, page by page, without holding them all; a longer cell later is cut short.
pub struct Table {
    widths: Vec<usize>,
}

/// The widest a column grows, so that one long name cannot push the others off the screen.
const WIDEST_COLUMN: usize = 40;

impl Table {
    /// Sizes the columns to fit the header and `rows`, and prints the header.
    pub fn start(header: &[String], rows: &[Vec<String>]) -> Outcome<Self> {
        let widths = (0..header.len())
            .map(|column| {
                std::iter::once(&header[column])
                    .chain(rows.iter().map(|row| &row[column]))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
                    .min(WIDEST_COLUMN)
            })
            .collect();
        let table = Self { widths };
        table.row(header)?;
        Ok(table)
    }

    pub fn row(&self, cells: &[String]) -> Outcome {
        let last = cells.len().saturating_sub(1);
        let text: Vec<String> = cells
            .iter()
            .zip(&self.widths)
            .enumerate()
            .map(|(column, (cell, &width))| {
                let cell = shorten(cell, width);
                if column == last {
                    cell
                } else {
                    format!("{cell:<width$}")
                }
            })
            .collect();
        line(&text.join("  "))
    }
}

fn shorten(cell: &str, width: usize) -> String {
    if cell.chars().count() <= width {
        return cell.to_owned();
    }
    let kept: String = cell.chars().take(width.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// A text field of the API's JSON, or `-` where it is null or missing.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// Milliseconds since the epoch as UTC `YYYY-MM-DD HH:MM`, or `-`.
pub fn time(value: &Value) -> String {
    let Some(millis) = value.as_i64() else {
        return "-".to_owned();
    };
    let seconds = millis.div_euclid(1000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        of_day / 3600,
        of_day % 3600 / 60
    )
}

/// Howard Hinnant's `civil_from_days`: the proleptic Gregorian date of a day count since
/// 1970-01-01, which spares the binary a date crate for one column.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_dates_and_minutes() {
        assert_eq!(time(&Value::from(0)), "1970-01-01 00:00 UTC");
        assert_eq!(
            time(&Value::from(1_795_000_000_000_i64)),
            "2026-11-18 11:06 UTC"
        );
        assert_eq!(
            time(&Value::from(951_782_400_000_i64)),
            "2000-02-29 00:00 UTC"
        );
        assert_eq!(time(&Value::Null), "-");
    }

    #[test]
    fn long_cells_are_cut_to_their_column() {
        assert_eq!(shorten("Alexandra", 5), "Alex…");
        assert_eq!(shorten("Al", 5), "Al");
    }
}
