//! MATLAB v5 `.mat` files (the format of MPI-INF-3DHP's training `annot.mat`).
//!
//! Supports what annotation files contain: numeric and logical arrays of any
//! storage type, char arrays, cell arrays and structs, compressed or not.
//! Values come out in C order with MATLAB's dimensions, so a MATLAB `(F, 84)`
//! matrix is an [`Array`] of shape `[F, 84]` whose rows are frames.

use std::io::Read;
use std::path::Path;

use crate::array::{element_count, Array, DType};
use crate::{problem, read_file, Problem, Result};

/// A MATLAB value.
#[derive(Debug, Clone, PartialEq)]
pub enum MatValue {
    Numeric(Array),
    Char(String),
    /// Items in C order over `dims`.
    Cell {
        dims: Vec<usize>,
        items: Vec<MatValue>,
    },
    /// One map of fields per element, elements in C order over `dims`.
    Struct {
        dims: Vec<usize>,
        fields: Vec<String>,
        elements: Vec<Vec<MatValue>>,
    },
    /// A value of a kind we do not read (sparse, complex, object, opaque
    /// such as `string` or `table`), and why: the file's other variables
    /// stay readable, as in scipy.
    Unsupported(String),
}

impl MatValue {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Numeric(_) => "numeric array",
            Self::Char(_) => "char array",
            Self::Cell { .. } => "cell array",
            Self::Struct { .. } => "struct",
            Self::Unsupported(_) => "a value of an unsupported kind (sparse, complex, object or opaque)",
        }
    }
}

/// The variables of a `.mat` file, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct MatFile {
    pub header: String,
    pub variables: Vec<(String, MatValue)>,
}

impl MatFile {
    pub fn get(&self, name: &str) -> Option<&MatValue> {
        self.variables.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn names(&self) -> Vec<&str> {
        self.variables.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// Which MATLAB format a file is in, from its first 128 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatVersion {
    V5,
    /// v7.3: an HDF5 file behind a 512-byte user block; see [`crate::h5mat`].
    V73,
    Other,
}

pub fn detect_version(bytes: &[u8]) -> MatVersion {
    if bytes.len() >= 128 && bytes.starts_with(b"MATLAB") {
        match &bytes[124..126] {
            [0x00, 0x01] | [0x01, 0x00] => return MatVersion::V5,
            [0x00, 0x02] | [0x02, 0x00] => return MatVersion::V73,
            _ => {}
        }
    }
    MatVersion::Other
}

/// Refuses decompressed sizes beyond this (a zip bomb in a tiny file).
const MAX_INFLATED: u64 = 4 << 30;
const MAX_DEPTH: usize = 32;
const MAX_FIELDLESS: usize = 1 << 16;

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;
const MI_UTF16: u32 = 17;

struct Element<'a> {
    kind: u32,
    data: &'a [u8],
}

#[derive(Clone, Copy)]
struct Reader<'a> {
    big_endian: bool,
    /// Cell items the file may still hold. Each costs ~100 bytes here for 8
    /// in the file, and a compressed variable inflates ~1000-fold: without a
    /// cap a 1 MB file could ask for tens of GB. Dataset files hold a few
    /// cells of a few items (3DHP's per-camera annotations).
    cell_items_left: &'a std::cell::Cell<usize>,
}

/// The most cell items one file may hold.
const MAX_CELL_ITEMS: usize = 1 << 20;

impl Reader<'_> {
    fn u32(self, b: &[u8]) -> u32 {
        let a = b[..4].try_into().expect("4 bytes");
        if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }

    fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.big_endian {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }

    /// Splits the next data element off `buf`.
    fn element<'a>(self, buf: &mut &'a [u8]) -> Result<Element<'a>, Problem> {
        if buf.len() < 8 {
            return Err(problem!("truncated: data element tag needs 8 bytes, {} left", buf.len()));
        }
        let tag = self.u32(buf);
        // Small data element format: size in the upper half of the tag word.
        if tag >> 16 != 0 {
            let n = (tag >> 16) as usize;
            if n > 4 {
                return Err(problem!("small data element claims {n} bytes"));
            }
            let data = &buf[4..4 + n];
            *buf = &buf[8..];
            return Ok(Element { kind: tag & 0xffff, data });
        }
        let n = self.u32(&buf[4..]) as usize;
        let padded = if tag == MI_COMPRESSED { n } else { n.div_ceil(8) * 8 };
        if buf.len() - 8 < n {
            return Err(problem!("truncated: data element of {n} bytes, {} left", buf.len() - 8));
        }
        let data = &buf[8..8 + n];
        *buf = &buf[(8 + padded).min(buf.len())..];
        Ok(Element { kind: tag, data })
    }

    fn numbers(self, e: &Element) -> Result<Vec<f64>, Problem> {
        let (dtype, size) = match e.kind {
            MI_INT8 => (DType::I8, 1),
            MI_UINT8 => (DType::U8, 1),
            MI_INT16 => (DType::I16, 2),
            MI_UINT16 => (DType::U16, 2),
            MI_INT32 => (DType::I32, 4),
            MI_UINT32 => (DType::U32, 4),
            MI_SINGLE => (DType::F32, 4),
            MI_DOUBLE => (DType::F64, 8),
            MI_INT64 => (DType::I64, 8),
            MI_UINT64 => (DType::U64, 8),
            other => return Err(problem!("data element of type {other} is not numeric")),
        };
        if !e.data.len().is_multiple_of(size) {
            return Err(problem!("numeric data of {} bytes is not a whole number of elements", e.data.len()));
        }
        let n = e.data.len() / size;
        Ok(Array::from_bytes(dtype, self.big_endian, vec![n], e.data, false)?.data)
    }

    /// Parses a top-level element (miMATRIX, or miCOMPRESSED around one).
    fn variable(self, e: Element) -> Result<Option<(String, MatValue)>, Problem> {
        match e.kind {
            MI_COMPRESSED => {
                let mut inflated = Vec::new();
                flate2::read::ZlibDecoder::new(e.data)
                    .take(MAX_INFLATED)
                    .read_to_end(&mut inflated)
                    .map_err(|err| problem!("compressed variable is damaged: {err}"))?;
                let mut rest = inflated.as_slice();
                let inner = self.element(&mut rest)?;
                // One matrix per compressed element; no compression inside
                // compression (each layer would stay in memory).
                if inner.kind != MI_MATRIX {
                    return Err(problem!("compressed element holds data of type {}, not a matrix", inner.kind));
                }
                self.matrix(inner.data, 0).map(Some)
            }
            MI_MATRIX => self.matrix(e.data, 0).map(Some),
            // Other top-level elements (e.g. subsystem data) carry no variables we read.
            _ => Ok(None),
        }
    }

    fn matrix(self, data: &[u8], depth: usize) -> Result<(String, MatValue), Problem> {
        if depth > MAX_DEPTH {
            return Err(problem!("cell/struct nesting deeper than {MAX_DEPTH}"));
        }
        if data.is_empty() {
            // An empty cell element, e.g. `{[]}`.
            return Ok((String::new(), MatValue::Numeric(Array::from_vec(DType::F64, vec![0, 0], vec![])?)));
        }
        let mut rest = data;
        let flags = self.element(&mut rest)?;
        if flags.kind != MI_UINT32 || flags.data.len() != 8 {
            return Err(problem!("array flags subelement is malformed"));
        }
        let flag_word = self.u32(flags.data);
        let class = flag_word & 0xff;
        let complex = flag_word & 0x800 != 0;
        let logical = flag_word & 0x200 != 0;
        let dims_el = self.element(&mut rest)?;
        if dims_el.kind != MI_INT32 {
            return Err(problem!("dimensions subelement is malformed"));
        }
        let dims: Vec<usize> = self
            .numbers(&dims_el)?
            .into_iter()
            .map(|d| if d >= 0.0 { Ok(d as usize) } else { Err(problem!("negative dimension {d}")) })
            .collect::<Result<_, _>>()?;
        let count = element_count(&dims)?;
        let name_el = self.element(&mut rest)?;
        let name = String::from_utf8_lossy(name_el.data).into_owned();
        let value = match class {
            1 => {
                // Cell: `count` miMATRIX elements in column-major order,
                // each at least a tag: a count the bytes cannot hold is damage.
                if count.saturating_mul(8) > rest.len() {
                    return Err(problem!("cell {name:?} declares {count} items in {} bytes", rest.len()));
                }
                let left = self.cell_items_left.get();
                if count > left {
                    return Err(problem!("cell {name:?} of {count} items: a file may hold at most {MAX_CELL_ITEMS}"));
                }
                self.cell_items_left.set(left - count);
                let mut items = Vec::new();
                for _ in 0..count {
                    let e = self.element(&mut rest)?;
                    if e.kind != MI_MATRIX {
                        return Err(problem!("cell {name:?} holds a non-matrix element"));
                    }
                    items.push(self.matrix(e.data, depth + 1)?.1);
                }
                MatValue::Cell { items: column_major_to_c(&dims, items), dims }
            }
            2 => {
                let len_el = self.element(&mut rest)?;
                let field_len =
                    *self.numbers(&len_el)?.first().ok_or_else(|| problem!("struct field length missing"))?;
                let names_el = self.element(&mut rest)?;
                let field_len = field_len as usize;
                if field_len == 0 || !names_el.data.len().is_multiple_of(field_len) {
                    return Err(problem!("struct {name:?} field names are malformed"));
                }
                let fields: Vec<String> = names_el
                    .data
                    .chunks(field_len)
                    .map(|c| String::from_utf8_lossy(c.split(|&b| b == 0).next().unwrap_or(c)).into_owned())
                    .collect();
                // Fieldless struct arrays hold nothing per element; cap them
                // so a damaged dimension cannot make us allocate without bound.
                let needed = count.saturating_mul(fields.len().max(1)).saturating_mul(8);
                if (fields.is_empty() && count > MAX_FIELDLESS) || (!fields.is_empty() && needed > rest.len()) {
                    return Err(problem!("struct {name:?} declares {count} elements in {} bytes", rest.len()));
                }
                let mut elements = Vec::new();
                for _ in 0..count {
                    let mut values = Vec::new();
                    for _ in &fields {
                        let e = self.element(&mut rest)?;
                        values.push(self.matrix(e.data, depth + 1)?.1);
                    }
                    elements.push(values);
                }
                MatValue::Struct { elements: column_major_to_c(&dims, elements), dims, fields }
            }
            4 => {
                let e = self.element(&mut rest)?;
                let text = match e.kind {
                    MI_UTF8 | MI_UINT8 | MI_INT8 => String::from_utf8_lossy(e.data).into_owned(),
                    // MATLAB's chars are UTF-16 code units (miUINT16 as scipy writes them).
                    MI_UTF16 | MI_UINT16 => {
                        let units: Vec<u16> = e.data.chunks_exact(2).map(|c| self.u16(c)).collect();
                        String::from_utf16_lossy(&units)
                    }
                    _ => {
                        self.numbers(&e)?.into_iter().map(|c| char::from_u32(c as u32).unwrap_or('\u{fffd}')).collect()
                    }
                };
                MatValue::Char(char_rows(&dims, text))
            }
            5 => MatValue::Unsupported("a sparse matrix".into()),
            6..=15 if complex => MatValue::Unsupported("a complex matrix".into()),
            6..=15 => {
                let real = self.element(&mut rest)?;
                let values = self.numbers(&real)?;
                if values.len() != count {
                    return Err(problem!(
                        "variable {name:?} has dimensions {dims:?} ({count} values) but holds {}",
                        values.len()
                    ));
                }
                let dtype = if logical {
                    DType::Bool
                } else {
                    match class {
                        6 => DType::F64,
                        7 => DType::F32,
                        8 => DType::I8,
                        9 => DType::U8,
                        10 => DType::I16,
                        11 => DType::U16,
                        12 => DType::I32,
                        13 => DType::U32,
                        14 => DType::I64,
                        _ => DType::U64,
                    }
                };
                MatValue::Numeric(Array::from_vec(dtype, dims, values)?.fortran_to_c())
            }
            other => MatValue::Unsupported(format!("MATLAB class {other}")),
        };
        Ok((name, value))
    }
}

/// A char matrix is stored column by column: its rows, one per line
/// (`['ab'; 'cd']` is "ab\ncd", as scipy's strings are).
fn char_rows(dims: &[usize], text: String) -> String {
    let chars: Vec<char> = text.chars().collect();
    match dims {
        [rows, columns] if *rows > 1 && rows * columns == chars.len() => (0..*rows)
            .map(|r| (0..*columns).map(|c| chars[r + rows * c]).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => text,
    }
}

fn column_major_to_c<T>(dims: &[usize], items: Vec<T>) -> Vec<T> {
    if dims.len() < 2 || items.is_empty() {
        return items;
    }
    // Reuse the numeric reordering on indices; items move, not copied.
    let index = Array { dtype: DType::U64, shape: dims.to_vec(), data: (0..items.len()).map(|i| i as f64).collect() }
        .fortran_to_c();
    let mut items: Vec<Option<T>> = items.into_iter().map(Some).collect();
    index.data.iter().map(|&i| items[i as usize].take().expect("a permutation")).collect()
}

/// Decodes MATLAB v5 bytes.
pub fn parse(bytes: &[u8]) -> Result<MatFile, Problem> {
    match detect_version(bytes) {
        MatVersion::V5 => {}
        MatVersion::V73 => return Err(problem!("is a MATLAB v7.3 (HDF5) file, expected MATLAB v5")),
        MatVersion::Other => {
            return Err(problem!("not a MATLAB v5 .mat file (no v5 header: a MATLAB v4 file, or another format)"))
        }
    }
    let header = String::from_utf8_lossy(&bytes[..116]).trim_end().to_string();
    let big_endian = match &bytes[126..128] {
        b"IM" => false,
        b"MI" => true,
        other => return Err(problem!("bad endian indicator {other:?}")),
    };
    let cell_items_left = std::cell::Cell::new(MAX_CELL_ITEMS);
    let reader = Reader { big_endian, cell_items_left: &cell_items_left };
    let mut rest = &bytes[128..];
    let mut variables = Vec::new();
    while !rest.is_empty() {
        let e = reader.element(&mut rest)?;
        if let Some(var) = reader.variable(e)? {
            variables.push(var);
        }
    }
    Ok(MatFile { header, variables })
}

/// Reads a MATLAB v5 `.mat` file.
pub fn read(path: &Path) -> Result<MatFile> {
    parse(&read_file(path)?).map_err(|p| p.at(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Vec<u8> {
        let mut h = b"MATLAB 5.0 MAT-file, test".to_vec();
        h.resize(116, b' ');
        h.extend([0u8; 8]);
        h.extend([0x00, 0x01]);
        h.extend(b"IM");
        h
    }

    fn el(kind: u32, data: &[u8]) -> Vec<u8> {
        let mut out = kind.to_le_bytes().to_vec();
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(data);
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
        out
    }

    fn double_matrix(name: &str, dims: [i32; 2], values: &[f64]) -> Vec<u8> {
        let mut body = el(MI_UINT32, &[6, 0, 0, 0, 0, 0, 0, 0]);
        body.extend(el(MI_INT32, &dims.iter().flat_map(|d| d.to_le_bytes()).collect::<Vec<_>>()));
        body.extend(el(MI_INT8, name.as_bytes()));
        // Stored as uint8, as MATLAB does for small integer-valued doubles.
        body.extend(el(MI_UINT8, &values.iter().map(|&v| v as u8).collect::<Vec<_>>()));
        el(MI_MATRIX, &body)
    }

    #[test]
    fn column_major_doubles_stored_as_uint8() {
        let mut file = header();
        file.extend(double_matrix("m", [2, 3], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]));
        let mat = parse(&file).unwrap();
        let Some(MatValue::Numeric(a)) = mat.get("m") else { panic!("numeric") };
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(a.dtype, DType::F64);
    }

    fn cell(name: &str, dims: [i32; 2], items: &[Vec<u8>]) -> Vec<u8> {
        let mut body = el(MI_UINT32, &[1, 0, 0, 0, 0, 0, 0, 0]);
        body.extend(el(MI_INT32, &dims.iter().flat_map(|d| d.to_le_bytes()).collect::<Vec<_>>()));
        body.extend(el(MI_INT8, name.as_bytes()));
        body.extend(items.concat());
        el(MI_MATRIX, &body)
    }

    #[test]
    fn char_matrices_read_row_by_row() {
        let mut body = el(MI_UINT32, &[4, 0, 0, 0, 0, 0, 0, 0]);
        body.extend(el(MI_INT32, &[2i32, 2].iter().flat_map(|d| d.to_le_bytes()).collect::<Vec<_>>()));
        body.extend(el(MI_INT8, b"t"));
        // ['ab'; 'cd'] column by column, as UTF-16 units.
        body.extend(el(MI_UINT16, &"acbd".encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<_>>()));
        let mut file = header();
        file.extend(el(MI_MATRIX, &body));
        assert_eq!(parse(&file).unwrap().get("t"), Some(&MatValue::Char("ab\ncd".into())));
    }

    /// Cells come back in C order; a file claiming millions of (empty,
    /// 8-byte) items is refused before they are made.
    #[test]
    fn cells_in_c_order_and_a_cap_on_their_items() {
        let items: Vec<Vec<u8>> = (1..=4).map(|v| double_matrix("", [1, 1], &[f64::from(v)])).collect();
        let mut file = header();
        file.extend(cell("c", [2, 2], &items));
        let mat = parse(&file).unwrap();
        let Some(MatValue::Cell { items, dims }) = mat.get("c") else { panic!("cell") };
        assert_eq!(dims, &vec![2, 2]);
        let values: Vec<f64> = items
            .iter()
            .map(|v| match v {
                MatValue::Numeric(a) => a.data[0],
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(values, [1.0, 3.0, 2.0, 4.0], "column-major 1 2 / 3 4 read row by row");

        let empty = el(MI_MATRIX, &[]);
        let many = MAX_CELL_ITEMS as i32 + 1;
        let mut file = header();
        file.extend(cell("c", [many, 1], &vec![empty; many as usize]));
        let err = parse(&file).unwrap_err();
        assert!(err.0.contains(&format!("of {many} items: a file may hold at most {MAX_CELL_ITEMS}")), "{err}");
    }

    #[test]
    fn versions_and_truncation() {
        let mut file = header();
        file.extend(double_matrix("m", [2, 3], &[1.0; 6]));
        assert!(parse(&file[..file.len() - 9]).unwrap_err().0.contains("truncated"));
        let mut v73 = file.clone();
        v73[124..126].copy_from_slice(&[0x00, 0x02]);
        assert!(parse(&v73).unwrap_err().0.contains("v7.3"));
        assert!(parse(b"\x00\x00\x00\x00\x02\x00\x00\x00").unwrap_err().0.contains("v4"));
    }

    /// A variable we cannot read does not hide the others (scipy reads on
    /// past it); compression inside compression is refused.
    #[test]
    fn unsupported_variables_are_skipped_and_nested_compression_refused() {
        let mut sparse = el(MI_UINT32, &[5, 0, 0, 0, 0, 0, 0, 0]);
        sparse.extend(el(MI_INT32, &[3i32, 3].iter().flat_map(|d| d.to_le_bytes()).collect::<Vec<_>>()));
        sparse.extend(el(MI_INT8, b"s"));
        sparse.extend(el(MI_INT32, &[0u8; 12]));
        let mut file = header();
        file.extend(el(MI_MATRIX, &sparse));
        file.extend(double_matrix("m", [1, 2], &[7.0, 8.0]));
        let mat = parse(&file).unwrap();
        assert!(matches!(mat.get("s"), Some(MatValue::Unsupported(why)) if why.contains("sparse")));
        let Some(MatValue::Numeric(a)) = mat.get("m") else { panic!("numeric") };
        assert_eq!(a.data, vec![7.0, 8.0]);

        // A compressed element, unpadded as MATLAB and scipy write it (its
        // length depends on the zlib build, so it must not be padded here).
        let compressed = |data: &[u8]| {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut z, data).unwrap();
            let body = z.finish().unwrap();
            let mut out = MI_COMPRESSED.to_le_bytes().to_vec();
            out.extend((body.len() as u32).to_le_bytes());
            out.extend(body);
            out
        };
        let inner = double_matrix("m", [1, 1], &[1.0]);
        let mut once = header();
        once.extend(compressed(&inner));
        assert!(matches!(parse(&once).unwrap().get("m"), Some(MatValue::Numeric(_))));
        let mut twice = header();
        twice.extend(compressed(&compressed(&inner)));
        assert!(parse(&twice).unwrap_err().0.contains("not a matrix"));
    }

    proptest::proptest! {
        #[test]
        fn corrupted_files_never_panic(pos in 128usize..232, byte in proptest::num::u8::ANY) {
            let mut file = header();
            file.extend(double_matrix("m", [2, 3], &[1.0; 6]));
            file.extend(double_matrix("n", [3, 1], &[1.0; 3]));
            let pos = pos.min(file.len() - 1);
            file[pos] = byte;
            let _ = parse(&file);
        }
    }
}
