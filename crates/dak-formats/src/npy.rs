//! NumPy `.npy` arrays and `.npz` archives.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::array::{Array, DType};
use crate::pickle::{self, Value};
use crate::spill::Spill;
use crate::{problem, read_file, read_up_to, Error, Problem, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// The contents of a `.npy`: a numeric array, or an object array's pickle
/// decoded (a 0-d object array, as `np.savez` writes a dict, is unwrapped).
#[derive(Debug, Clone, PartialEq)]
pub enum Npy {
    Array(Array),
    Object(Value),
}

#[derive(Debug, PartialEq)]
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// Decodes `.npy` bytes.
pub fn parse(bytes: &[u8]) -> Result<Npy, Problem> {
    from_reader(bytes, None)
}

/// Decodes a `.npy` stream. An object array's pickle is read with the
/// `spill`, if any (see [`pickle::from_reader`]); a numeric array is read whole.
pub fn from_reader(mut input: impl BufRead, spill: Option<&Arc<Spill>>) -> Result<Npy, Problem> {
    let header = read_header(&mut input)?;
    // Byte order, then type code ('<f8', '|O'); by chars, as the header is arbitrary text.
    let mut chars = header.descr.chars();
    let order = chars.next().unwrap_or('|');
    let code = chars.as_str();
    if code == "O" {
        let value = pickle::from_reader(input, spill)?;
        return Ok(Npy::Object(value.unwrap_scalar_object()));
    }
    let dtype = DType::from_numpy(code).ok_or_else(|| problem!("unsupported .npy dtype {:?}", header.descr))?;
    // At most one byte past the shape's data: an `.npz` member is inflated as
    // it is read, and a small file can inflate to gigabytes.
    let expected = crate::array::element_count(&header.shape)?
        .checked_mul(dtype.size())
        .ok_or_else(|| problem!("array shape {:?} overflows", header.shape))?;
    let mut body = Vec::new();
    input.take((expected as u64).saturating_add(1)).read_to_end(&mut body).map_err(|e| problem!("{e}"))?;
    if body.len() > expected {
        return Err(problem!("more data than an array of shape {:?} and type {:?} holds", header.shape, header.descr));
    }
    Ok(Npy::Array(Array::from_bytes(dtype, order == '>', header.shape, &body, header.fortran_order)?))
}

fn read_header(input: &mut impl Read) -> Result<Header, Problem> {
    let truncated = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => problem!("truncated .npy header"),
        _ => problem!("{e}"),
    };
    let mut lead = [0u8; 8];
    let got = read_up_to(input, &mut lead).map_err(truncated)?;
    if !lead[..got].starts_with(MAGIC) || got < MAGIC.len() {
        return Err(problem!("not a NumPy .npy array (bad magic)"));
    }
    if got < lead.len() {
        return Err(problem!("truncated .npy header"));
    }
    let len = match lead[6] {
        1 => {
            let mut b = [0u8; 2];
            input.read_exact(&mut b).map_err(truncated)?;
            usize::from(u16::from_le_bytes(b))
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            input.read_exact(&mut b).map_err(truncated)?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(problem!(".npy format version {v}.{} is not supported", lead[7])),
    };
    // Grows with what is read, so a claimed length beyond the file allocates nothing.
    let mut header_bytes = Vec::new();
    input.take(len as u64).read_to_end(&mut header_bytes).map_err(truncated)?;
    if header_bytes.len() < len {
        return Err(problem!("truncated .npy header"));
    }
    let text = std::str::from_utf8(&header_bytes).map_err(|_| problem!(".npy header is not text"))?;
    parse_header(text)
}

/// Parses the Python dict literal of a `.npy` header, e.g.
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
fn parse_header(text: &str) -> Result<Header, Problem> {
    let bad = || problem!(".npy header is malformed: {:?}", text.trim());
    let inner = text.trim().strip_prefix('{').and_then(|t| t.trim_end().strip_suffix('}')).ok_or_else(bad)?;
    let field = |key: &str| -> Result<&str, Problem> {
        let at = inner.find(&format!("'{key}':")).ok_or_else(|| problem!(".npy header lacks {key:?}"))?;
        Ok(inner[at + key.len() + 3..].trim_start())
    };
    let descr = field("descr")?;
    let descr = descr.strip_prefix('\'').and_then(|d| d.split('\'').next()).ok_or_else(|| {
        problem!(".npy header: structured dtypes are not supported ({})", descr.split(',').next().unwrap_or(""))
    })?;
    let fortran = field("fortran_order")?;
    let fortran_order = if fortran.starts_with("True") {
        true
    } else if fortran.starts_with("False") {
        false
    } else {
        return Err(bad());
    };
    let shape = field("shape")?;
    let shape = shape.strip_prefix('(').and_then(|s| s.split(')').next()).ok_or_else(bad)?;
    let shape = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>().map_err(|_| bad()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Header { descr: descr.to_string(), fortran_order, shape })
}

/// Reads a `.npy` file.
pub fn read(path: &Path) -> Result<Npy> {
    parse(&read_file(path)?).map_err(|p| p.at(path))
}

/// An open `.npz` archive.
pub struct Npz {
    path: PathBuf,
    archive: zip::ZipArchive<std::fs::File>,
}

impl Npz {
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|source| Error::Io { path: path.into(), source })?;
        let archive = zip::ZipArchive::new(file)
            .map_err(|e| Error::malformed(path, format!("not a readable .npz (zip) archive: {e}")))?;
        Ok(Self { path: path.into(), archive })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Array names (member names without `.npy`).
    pub fn names(&self) -> Vec<String> {
        self.archive.file_names().map(|n| n.strip_suffix(".npy").unwrap_or(n).to_string()).collect()
    }

    /// Reads the array `name`; a missing name is an error listing those present.
    pub fn get(&mut self, name: &str) -> Result<Npy> {
        self.read_member(name, None)
    }

    /// Reads the array `name` as a stream, leaving the data of large arrays
    /// inside a pickled object in `spill` ([`pickle::Value::SpilledArray`]):
    /// memory stays small however large the member is.
    pub fn get_spilled(&mut self, name: &str, spill: &Arc<Spill>) -> Result<Npy> {
        self.read_member(name, Some(spill))
    }

    fn read_member(&mut self, name: &str, spill: Option<&Arc<Spill>>) -> Result<Npy> {
        let member = format!("{name}.npy");
        let mut names = self.names();
        names.sort();
        let entry = match self.archive.by_name(&member) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => {
                return Err(Error::malformed(&self.path, format!("has no array {name:?} (it holds {names:?})")))
            }
            Err(e) => return Err(Error::malformed(&self.path, format!("{member}: {e}"))),
        };
        let input = std::io::BufReader::with_capacity(1 << 20, DamagedMember(entry));
        from_reader(input, spill).map_err(|p| Error::malformed(&self.path, format!("{member}: {p}")))
    }
}

/// An archive member whose read errors say what they mean to a user.
struct DamagedMember<R>(R);

impl<R: Read> Read for DamagedMember<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(|e| std::io::Error::new(e.kind(), format!("damaged or truncated archive member: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, body: &[u8]) -> Vec<u8> {
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend([1, 0]);
        out.extend((h.len() as u16).to_le_bytes());
        out.extend(h.as_bytes());
        out.extend(body);
        out
    }

    #[test]
    fn header_variants() {
        let h = parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }").unwrap();
        assert_eq!(h, Header { descr: "<f4".into(), fortran_order: false, shape: vec![3, 4] });
        assert_eq!(parse_header("{'descr': '|O', 'fortran_order': False, 'shape': (), }").unwrap().shape, vec![]);
        assert_eq!(parse_header("{'descr': '<f8', 'fortran_order': True, 'shape': (5,), }").unwrap().shape, vec![5]);
        assert!(parse_header("{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (5,), }").is_err());
    }

    #[test]
    fn numeric_array_and_errors() {
        let body: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let bytes = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", &body);
        let Npy::Array(a) = parse(&bytes).unwrap() else { panic!("numeric") };
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data[5], 6.0);
        assert!(parse(&bytes[..bytes.len() - 1]).unwrap_err().0.contains("needs 24 bytes"));
        // Longer than the shape: refused after reading one byte past it (not
        // the whole rest, which in an .npz member may inflate to gigabytes).
        let mut longer = bytes.clone();
        longer.extend(std::iter::repeat_n(0u8, 1 << 20));
        let mut reader = std::io::Cursor::new(longer);
        let err = from_reader(&mut reader, None).unwrap_err();
        assert!(err.0.contains("more data than an array of shape [2, 3]"), "{err}");
        assert!(reader.position() < bytes.len() as u64 + 4096, "read to {}", reader.position());
        assert!(parse(b"PK\x03\x04").unwrap_err().0.contains("bad magic"));
        assert!(parse(&bytes[..12]).unwrap_err().0.contains("truncated"));
    }
}
