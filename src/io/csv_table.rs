//! Tables of text cells in CSV files: written as pandas and polars write them (a header, no
//! index, a cell quoted only where it must be, an empty cell for a missing value) and read back
//! by column name, every cell as text.

use anyhow::{bail, ensure, Result};
use std::path::Path;

/// Named columns of text cells; `None` is a missing value (an empty cell).
#[derive(Debug, Clone, Default)]
pub struct Table {
    names: Vec<String>,
    columns: Vec<Vec<Option<String>>>,
    rows: usize,
}

impl Table {
    /// An empty table of `rows` rows, to add columns to.
    pub fn with_rows(rows: usize) -> Self {
        Self {
            rows,
            ..Self::default()
        }
    }

    /// Adds a column of `rows` cells.
    pub fn push(&mut self, name: &str, cells: Vec<Option<String>>) -> Result<()> {
        ensure!(
            cells.len() == self.rows,
            "column {name} has {} cells for {} rows",
            cells.len(),
            self.rows
        );
        self.names.push(name.to_string());
        self.columns.push(cells);
        Ok(())
    }

    /// Rows.
    pub fn height(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn width(&self) -> usize {
        self.names.len()
    }

    /// The cells of the first column named `name`.
    pub fn column(&self, name: &str) -> Option<&[Option<String>]> {
        let i = self.names.iter().position(|n| n == name)?;
        Some(&self.columns[i])
    }

    /// The table as CSV text: header, then one line per row, each ending in `\n`.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let header = self.names.iter().map(|n| Some(n.as_str()));
        push_line(&mut out, header);
        for row in 0..self.rows {
            push_line(&mut out, self.columns.iter().map(|c| c[row].as_deref()));
        }
        out
    }

    /// Reads a CSV file with a header row (a UTF-8 byte-order mark is skipped). Empty cells
    /// and cells missing at the end of a short row are `None`; a row longer than the header,
    /// a quote left open, or a file with no header is refused.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)?;
        let text = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
        if text.iter().all(|b| matches!(b, b'\n' | b'\r')) {
            bail!("no data: empty CSV");
        }
        ensure!(
            text.iter().filter(|&&b| b == b'"').count() % 2 == 0,
            "a quoted field is not closed"
        );
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text);
        let names: Vec<String> = reader.headers()?.iter().map(String::from).collect();
        let mut columns = vec![Vec::new(); names.len()];
        let mut rows = 0;
        for record in reader.records() {
            let record = record?;
            ensure!(
                record.len() <= names.len(),
                "row {} has {} fields, the header {}",
                rows + 2,
                record.len(),
                names.len()
            );
            for (i, column) in columns.iter_mut().enumerate() {
                let cell = record.get(i).filter(|c| !c.is_empty());
                column.push(cell.map(String::from));
            }
            rows += 1;
        }
        Ok(Self {
            names,
            columns,
            rows,
        })
    }
}

/// Appends one CSV line of `cells`.
fn push_line<'a>(out: &mut String, cells: impl Iterator<Item = Option<&'a str>>) {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_cell(out, cell);
    }
    out.push('\n');
}

/// Appends a cell as polars' CSV writer does: nothing for a missing value, `""` for an empty
/// text, and text holding a comma, quote or line break in quotes, its quotes doubled.
fn push_cell(out: &mut String, cell: Option<&str>) {
    match cell {
        None => {}
        Some("") => out.push_str("\"\""),
        Some(s) if s.contains([',', '"', '\n', '\r']) => {
            out.push('"');
            out.push_str(&s.replace('"', "\"\""));
            out.push('"');
        }
        Some(s) => out.push_str(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::pyfmt::float_repr;

    fn cells(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(String::from)).collect()
    }

    /// The bytes polars 0.55's `CsvWriter` wrote for these cells (a string column, the same
    /// floats through `float_repr`, and an integer column), captured before polars left.
    #[test]
    fn cells_are_written_as_polars_wrote_them() {
        let strings = cells(&[
            Some("plain"),
            Some("a,b"),
            Some("say \"hi\""),
            Some("\""),
            Some("line\nbreak"),
            Some("cr\rx"),
            Some("crlf\r\nx"),
            Some(""),
            None,
            Some(" lead"),
            Some("#hash"),
            Some("tab\tx"),
            Some("ünï €"),
            Some("[' a', \"b\"]"),
        ]);
        let floats = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            1e-5,
            1e21,
            1e16,
            1.0,
            27667.0,
            1.0 / 3.0,
            -2.5e-7,
            123456789012345680.0,
            5e-324,
        ];
        let reprs = floats.iter().map(|&x| Some(float_repr(x))).collect();
        let ints = (0..14i64)
            .map(|i| Some(((i - 5) * 123456789).to_string()))
            .collect();
        let mut table = Table::with_rows(14);
        table.push("s", strings).unwrap();
        table.push("repr", reprs).unwrap();
        table.push("i64", ints).unwrap();
        table.push("a,b \"hdr\"", vec![None; 14]).unwrap();
        let polars = "s,repr,i64,\"a,b \"\"hdr\"\"\"\n\
            plain,nan,-617283945,\n\
            \"a,b\",inf,-493827156,\n\
            \"say \"\"hi\"\"\",-inf,-370370367,\n\
            \"\"\"\",-0.0,-246913578,\n\
            \"line\nbreak\",0.0,-123456789,\n\
            \"cr\rx\",1e-05,0,\n\
            \"crlf\r\nx\",1e+21,123456789,\n\
            \"\",1e+16,246913578,\n\
            ,1.0,370370367,\n \
            lead,27667.0,493827156,\n\
            #hash,0.3333333333333333,617283945,\n\
            tab\tx,-2.5e-07,740740734,\n\
            ünï €,1.2345678901234568e+17,864197523,\n\
            \"[' a', \"\"b\"\"]\",5e-324,987654312,\n";
        assert_eq!(table.to_csv(), polars);
        let mut header_only = Table::with_rows(0);
        header_only.push("a", vec![]).unwrap();
        header_only.push("b", vec![]).unwrap();
        assert_eq!(header_only.to_csv(), "a,b\n");
        assert!(header_only.push("c", vec![None]).is_err());
    }

    fn read(text: &[u8]) -> Result<Table> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, text).unwrap();
        Table::read(&path)
    }

    #[test]
    fn written_tables_read_back() {
        let mut table = Table::with_rows(3);
        let a = cells(&[Some("x,\"y\"\nz"), None, Some("1.5")]);
        table.push("a", a.clone()).unwrap();
        table.push("b", cells(&[None, None, Some("q")])).unwrap();
        let back = read(table.to_csv().as_bytes()).unwrap();
        assert_eq!((back.height(), back.width()), (3, 2));
        assert_eq!(back.column("a").unwrap(), a);
        assert!(back.column("c").is_none());
    }

    #[test]
    fn short_rows_are_padded_and_bad_files_refused() {
        let t = read(b"\xef\xbb\xbfa,b,c\r\n1,2\r\n\"3\",,\"\"\r\n").unwrap();
        assert_eq!(t.column("a").unwrap(), cells(&[Some("1"), Some("3")]));
        assert_eq!(t.column("c").unwrap(), [None, None]);
        let header_only = read(b"a,b\n").unwrap();
        assert_eq!((header_only.height(), header_only.width()), (0, 2));
        let err = |text: &[u8]| format!("{:#}", read(text).unwrap_err());
        assert!(err(b"").contains("empty CSV"));
        assert!(err(b"\n\n").contains("empty CSV"));
        assert!(err(b"a,b\n1,2,3\n").contains("row 2 has 3 fields, the header 2"));
        assert!(err(b"a,b\n1,\"2\n").contains("not closed"));
        assert!(err(b"a,b\n1,\xff\n").contains("UTF-8"));
    }
}
