//! Loading user time series from `.npy` and `.csv` files into the batch-first
//! `(batch, time, features)` layout the trainers take.
//!
//! Contract:
//! * `.npy` (read with npyz): dtypes `f8`, `f4`, `i8`, `i4` (either endianness), converted to
//!   f64; Fortran-order files are transposed to C order. Rank 2 `(T, F)` becomes `(1, T, F)`,
//!   rank 3 is kept, any other rank is an error.
//! * `.csv`: numeric columns separated by commas or by whitespace (auto-detected from the
//!   first data line unless given); blank lines and lines starting with `#` are skipped; an
//!   optional header line (auto-detected: a first line with a non-numeric field). The table
//!   `(T, F)` becomes `(1, T, F)`. Ragged rows and unparsable fields are errors naming the line.
//! * NaN and ±inf are errors unless `allow_nan` is set; empty data (no rows, or a zero-sized
//!   dimension) is an error.
//!
//! Cost: one pass over the file; memory `O(file size)`.

use std::path::Path;
use thiserror::Error;

/// Errors from loading a data file.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{source_name}: cannot read file: {message}")]
    Io {
        /// Path or source label.
        source_name: String,
        /// The OS error.
        message: String,
    },
    /// The `.npy` header or data is malformed.
    #[error("{source_name}: invalid .npy file: {message}")]
    Npy {
        /// Path or source label.
        source_name: String,
        /// The npyz error.
        message: String,
    },
    /// The `.npy` dtype is not one of f8, f4, i8, i4.
    #[error(
        "{source_name}: unsupported .npy dtype {dtype}, expected float64, float32, int64 or int32"
    )]
    UnsupportedDtype {
        /// Path or source label.
        source_name: String,
        /// The dtype descriptor found.
        dtype: String,
    },
    /// The array rank is not 2 or 3.
    #[error(
        "{source_name}: array of shape {shape:?} (rank {rank}) cannot be used as a time series: expected (time, features) or (batch, time, features)"
    )]
    Rank {
        /// Path or source label.
        source_name: String,
        /// Rank found.
        rank: usize,
        /// Shape found.
        shape: Vec<u64>,
    },
    /// No data.
    #[error("{source_name}: no data ({detail})")]
    Empty {
        /// Path or source label.
        source_name: String,
        /// What is empty.
        detail: String,
    },
    /// A CSV row has a different number of columns from the first row.
    #[error(
        "{source_name}: line {line} has {got} columns, expected {expected} (as the first data row)"
    )]
    Ragged {
        /// Path or source label.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// Columns found.
        got: usize,
        /// Columns of the first data row.
        expected: usize,
    },
    /// A CSV field is not a number.
    #[error("{source_name}: line {line}, column {column}: cannot parse {field:?} as a number")]
    Parse {
        /// Path or source label.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// 1-based column number.
        column: usize,
        /// The field text.
        field: String,
    },
    /// NaN or ±inf while `allow_nan` is false.
    #[error("{source_name}: non-finite value {value} at {location}; set allow_nan to accept it")]
    NonFinite {
        /// Path or source label.
        source_name: String,
        /// The value.
        value: f64,
        /// Where (`line 3, column 2` or `index [0, 5, 1]`).
        location: String,
    },
}

/// A batch-first series: `data` is row-major with `shape = [batch, time, features]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSeries {
    /// Values, row-major.
    pub data: Vec<f64>,
    /// `[batch, time, features]`.
    pub shape: [usize; 3],
}

impl BatchSeries {
    /// Batch size.
    pub fn batch(&self) -> usize {
        self.shape[0]
    }
    /// Number of time steps.
    pub fn time(&self) -> usize {
        self.shape[1]
    }
    /// Features per step.
    pub fn features(&self) -> usize {
        self.shape[2]
    }
    /// The values rounded to f32 (for f32 models).
    pub fn to_f32(&self) -> Vec<f32> {
        self.data.iter().map(|&v| v as f32).collect()
    }
}

/// Options for `.npy` loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NpyOptions {
    /// Accept NaN and ±inf values (default false: they are an error).
    pub allow_nan: bool,
}

/// Header handling for CSV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsvHeader {
    /// The first line is a header when one of its fields is not a number (default).
    #[default]
    Auto,
    /// The first line is always a header.
    Present,
    /// There is no header: every line is data.
    Absent,
}

/// Field separator for CSV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsvDelimiter {
    /// Comma if the first data line has a comma, whitespace otherwise (default).
    #[default]
    Auto,
    /// Commas (spaces around fields are trimmed).
    Comma,
    /// Any run of spaces or tabs.
    Whitespace,
}

/// Options for CSV loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CsvOptions {
    /// Header handling.
    pub header: CsvHeader,
    /// Field separator.
    pub delimiter: CsvDelimiter,
    /// Accept NaN and ±inf values (default false).
    pub allow_nan: bool,
}

fn read_file(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|e| LoadError::Io {
        source_name: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Loads a `.npy` file as `(batch, time, features)`.
pub fn load_npy(path: impl AsRef<Path>, opts: &NpyOptions) -> Result<BatchSeries, LoadError> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    parse_npy(&bytes, &path.display().to_string(), opts)
}

/// Parses `.npy` bytes; `source_name` labels errors.
pub fn parse_npy(
    bytes: &[u8],
    source_name: &str,
    opts: &NpyOptions,
) -> Result<BatchSeries, LoadError> {
    let npy_err = |e: std::io::Error| LoadError::Npy {
        source_name: source_name.to_string(),
        message: e.to_string(),
    };
    let npy = npyz::NpyFile::new(bytes).map_err(npy_err)?;
    let shape: Vec<u64> = npy.shape().to_vec();
    let order = npy.order();
    let dtype = npy.dtype();
    let npyz::DType::Plain(ts) = &dtype else {
        return Err(LoadError::UnsupportedDtype {
            source_name: source_name.into(),
            dtype: format!("{dtype:?}"),
        });
    };
    let rank = shape.len();
    if rank != 2 && rank != 3 {
        return Err(LoadError::Rank {
            source_name: source_name.into(),
            rank,
            shape,
        });
    }
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    if dims.contains(&0) {
        return Err(LoadError::Empty {
            source_name: source_name.into(),
            detail: format!("shape {shape:?} has a zero-sized dimension"),
        });
    }
    use npyz::TypeChar;
    let raw: Vec<f64> = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 8) => npy.into_vec::<f64>().map_err(npy_err)?,
        (TypeChar::Float, 4) => npy
            .into_vec::<f32>()
            .map_err(npy_err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        (TypeChar::Int, 8) => npy
            .into_vec::<i64>()
            .map_err(npy_err)?
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        (TypeChar::Int, 4) => npy
            .into_vec::<i32>()
            .map_err(npy_err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        _ => {
            return Err(LoadError::UnsupportedDtype {
                source_name: source_name.into(),
                dtype: ts.to_string(),
            });
        }
    };
    let data = if order == npyz::Order::Fortran {
        fortran_to_c(&raw, &dims)
    } else {
        raw
    };
    let shape3 = if rank == 2 {
        [1, dims[0], dims[1]]
    } else {
        [dims[0], dims[1], dims[2]]
    };
    if !opts.allow_nan
        && let Some(k) = data.iter().position(|v| !v.is_finite())
    {
        let [_, t, f] = shape3;
        let loc = if rank == 2 {
            format!("index [{}, {}]", k / f, k % f)
        } else {
            format!("index [{}, {}, {}]", k / (t * f), (k / f) % t, k % f)
        };
        return Err(LoadError::NonFinite {
            source_name: source_name.into(),
            value: data[k],
            location: loc,
        });
    }
    Ok(BatchSeries {
        data,
        shape: shape3,
    })
}

/// Reorders column-major data of shape `dims` into row-major order.
fn fortran_to_c(raw: &[f64], dims: &[usize]) -> Vec<f64> {
    let n = raw.len();
    let mut out = vec![0.0; n];
    let rank = dims.len();
    let mut idx = vec![0usize; rank];
    for slot in out.iter_mut() {
        // Column-major offset of the current row-major multi-index.
        let mut off = 0;
        let mut stride = 1;
        for a in 0..rank {
            off += idx[a] * stride;
            stride *= dims[a];
        }
        *slot = raw[off];
        for a in (0..rank).rev() {
            idx[a] += 1;
            if idx[a] < dims[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    out
}

/// Loads a CSV file as `(1, time, features)`.
pub fn load_csv(path: impl AsRef<Path>, opts: &CsvOptions) -> Result<BatchSeries, LoadError> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let name = path.display().to_string();
    let text = String::from_utf8(bytes).map_err(|e| LoadError::Parse {
        source_name: name.clone(),
        line: 0,
        column: 0,
        field: format!("invalid UTF-8: {e}"),
    })?;
    parse_csv(&text, &name, opts)
}

/// Parses CSV text; `source_name` labels errors.
pub fn parse_csv(
    text: &str,
    source_name: &str,
    opts: &CsvOptions,
) -> Result<BatchSeries, LoadError> {
    let mut delimiter = opts.delimiter;
    let mut header_pending = opts.header != CsvHeader::Absent;
    let mut cols: Option<usize> = None;
    let mut data = Vec::new();
    let mut rows = 0usize;
    for (lineno, raw_line) in text.lines().enumerate() {
        let line_no = lineno + 1;
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if delimiter == CsvDelimiter::Auto {
            delimiter = if line.contains(',') {
                CsvDelimiter::Comma
            } else {
                CsvDelimiter::Whitespace
            };
        }
        let fields: Vec<&str> = match delimiter {
            CsvDelimiter::Comma => line.split(',').map(str::trim).collect(),
            _ => line.split_whitespace().collect(),
        };
        if header_pending {
            header_pending = false;
            let is_header = match opts.header {
                CsvHeader::Present => true,
                _ => fields.iter().any(|f| f.parse::<f64>().is_err()),
            };
            if is_header {
                continue;
            }
        }
        let expected = *cols.get_or_insert(fields.len());
        if fields.len() != expected {
            return Err(LoadError::Ragged {
                source_name: source_name.into(),
                line: line_no,
                got: fields.len(),
                expected,
            });
        }
        for (c, field) in fields.iter().enumerate() {
            let v: f64 = field.parse().map_err(|_| LoadError::Parse {
                source_name: source_name.into(),
                line: line_no,
                column: c + 1,
                field: field.to_string(),
            })?;
            if !v.is_finite() && !opts.allow_nan {
                return Err(LoadError::NonFinite {
                    source_name: source_name.into(),
                    value: v,
                    location: format!("line {line_no}, column {}", c + 1),
                });
            }
            data.push(v);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(LoadError::Empty {
            source_name: source_name.into(),
            detail: "no data rows".into(),
        });
    }
    Ok(BatchSeries {
        data,
        shape: [1, rows, cols.unwrap_or(0)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_header_comma_and_whitespace() {
        let s = parse_csv("x,y\n1, 2\n\n# c\n3,4.5\n", "t", &CsvOptions::default()).unwrap();
        assert_eq!(s.shape, [1, 2, 2]);
        assert_eq!(s.data, vec![1.0, 2.0, 3.0, 4.5]);
        let s = parse_csv("1 2 3\n4\t5  6\n", "t", &CsvOptions::default()).unwrap();
        assert_eq!(s.shape, [1, 2, 3]);
        assert_eq!(s.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn csv_errors() {
        let o = CsvOptions::default();
        let e = parse_csv("1,2\n3\n", "f.csv", &o).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.csv: line 2 has 1 columns, expected 2 (as the first data row)"
        );
        let e = parse_csv("1,2\n3,abc\n", "f.csv", &o).unwrap_err();
        assert!(
            matches!(
                e,
                LoadError::Parse {
                    line: 2,
                    column: 2,
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_csv("1,2\n3,nan\n", "f.csv", &o).unwrap_err();
        assert!(matches!(e, LoadError::NonFinite { .. }), "{e}");
        let ok = parse_csv(
            "1,2\n3,nan\n",
            "f.csv",
            &CsvOptions {
                allow_nan: true,
                ..o
            },
        )
        .unwrap();
        assert!(ok.data[3].is_nan());
        assert!(matches!(
            parse_csv("", "f", &o),
            Err(LoadError::Empty { .. })
        ));
        assert!(matches!(
            parse_csv("a,b\n", "f", &o),
            Err(LoadError::Empty { .. })
        ));
        let e = parse_csv(
            "a,b\n",
            "f",
            &CsvOptions {
                header: CsvHeader::Absent,
                ..o
            },
        )
        .unwrap_err();
        assert!(matches!(
            e,
            LoadError::Parse {
                line: 1,
                column: 1,
                ..
            }
        ));
    }

    #[test]
    fn fortran_order_transpose() {
        // 2x3 matrix [[1,2,3],[4,5,6]] stored column-major is 1,4,2,5,3,6.
        let c = fortran_to_c(&[1.0, 4.0, 2.0, 5.0, 3.0, 6.0], &[2, 3]);
        assert_eq!(c, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }
}
