//! A numeric n-d array in C (row-major) order, as read from any format.

use crate::{problem, Problem};

/// Element type on disk. Values are held as `f64` in memory, which is exact
/// for every type here except 64-bit integers beyond 2^53 (never coordinates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            Self::Bool | Self::I8 | Self::U8 => 1,
            Self::I16 | Self::U16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::I64 | Self::U64 | Self::F64 => 8,
        }
    }

    /// From a NumPy type code without byte order, e.g. `f4`, `i8`, `b1`.
    pub fn from_numpy(code: &str) -> Option<Self> {
        Some(match code {
            "b1" | "?" => Self::Bool,
            "i1" => Self::I8,
            "i2" => Self::I16,
            "i4" => Self::I32,
            "i8" => Self::I64,
            "u1" => Self::U8,
            "u2" => Self::U16,
            "u4" => Self::U32,
            "u8" => Self::U64,
            "f4" => Self::F32,
            "f8" => Self::F64,
            _ => return None,
        })
    }

    fn decode(self, b: &[u8], big_endian: bool) -> f64 {
        macro_rules! num {
            ($t:ty) => {{
                let bytes = b.try_into().expect("element size");
                if big_endian {
                    <$t>::from_be_bytes(bytes) as f64
                } else {
                    <$t>::from_le_bytes(bytes) as f64
                }
            }};
        }
        match self {
            Self::Bool => f64::from(u8::from(b[0] != 0)),
            Self::I8 => f64::from(b[0] as i8),
            Self::U8 => f64::from(b[0]),
            Self::I16 => num!(i16),
            Self::U16 => num!(u16),
            Self::I32 => num!(i32),
            Self::U32 => num!(u32),
            Self::I64 => num!(i64),
            Self::U64 => num!(u64),
            Self::F32 => num!(f32),
            Self::F64 => num!(f64),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// The element type on disk.
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Elements in C order.
    pub data: Vec<f64>,
}

/// Number of elements of `shape`, refusing overflow (shapes come from files).
pub fn element_count(shape: &[usize]) -> Result<usize, Problem> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or_else(|| problem!("array shape {shape:?} overflows"))
}

/// Checks a shape against a pattern; `None` matches any extent.
pub fn expect_shape(shape: &[usize], what: &str, pattern: &[Option<usize>]) -> Result<(), Problem> {
    let matches = shape.len() == pattern.len() && shape.iter().zip(pattern).all(|(s, p)| p.is_none_or(|p| p == *s));
    if matches {
        return Ok(());
    }
    let want: Vec<String> = pattern.iter().map(|p| p.map_or("N".into(), |p| p.to_string())).collect();
    Err(problem!("{what} has shape {shape:?}, expected ({})", want.join(", ")))
}

/// Checks that `len` bytes are exactly the data of an array of `dtype` and `shape`.
pub fn expect_data_len(dtype: DType, shape: &[usize], len: usize) -> Result<(), Problem> {
    let n = element_count(shape)?;
    let expected = n.checked_mul(dtype.size()).ok_or_else(|| problem!("array shape {shape:?} overflows"))?;
    if len != expected {
        return Err(problem!(
            "array of shape {shape:?} and type {dtype:?} needs {expected} bytes of data, found {len}"
        ));
    }
    Ok(())
}

impl Array {
    /// Decodes raw element bytes. `fortran` marks column-major data, which is
    /// reordered to C order.
    pub fn from_bytes(
        dtype: DType,
        big_endian: bool,
        shape: Vec<usize>,
        bytes: &[u8],
        fortran: bool,
    ) -> Result<Self, Problem> {
        expect_data_len(dtype, &shape, bytes.len())?;
        let data: Vec<f64> = bytes.chunks_exact(dtype.size()).map(|b| dtype.decode(b, big_endian)).collect();
        let array = Self { dtype, shape, data };
        Ok(if fortran { array.fortran_to_c() } else { array })
    }

    /// Wraps values already in C order.
    pub fn from_vec(dtype: DType, shape: Vec<usize>, data: Vec<f64>) -> Result<Self, Problem> {
        let n = element_count(&shape)?;
        if n != data.len() {
            return Err(problem!("array of shape {shape:?} needs {n} values, found {}", data.len()));
        }
        Ok(Self { dtype, shape, data })
    }

    /// Reinterprets `data` (column-major for `shape`) as C order, same shape.
    pub fn fortran_to_c(self) -> Self {
        let ndim = self.shape.len();
        if ndim < 2 {
            return self;
        }
        let mut out = vec![0.0; self.data.len()];
        let mut index = vec![0usize; ndim];
        // Walk the C-order destination; compute the column-major source offset.
        for value in &mut out {
            let mut src = 0;
            let mut stride = 1;
            for (d, &i) in index.iter().enumerate() {
                src += i * stride;
                stride *= self.shape[d];
            }
            *value = self.data[src];
            for d in (0..ndim).rev() {
                index[d] += 1;
                if index[d] < self.shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        Self { data: out, ..self }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Checks the shape against a pattern; `None` matches any extent.
    pub fn expect_shape(&self, what: &str, pattern: &[Option<usize>]) -> Result<(), Problem> {
        expect_shape(&self.shape, what, pattern)
    }

    /// The first NaN or infinite element, as a multi-index.
    pub fn first_non_finite(&self) -> Option<Vec<usize>> {
        let flat = self.data.iter().position(|v| !v.is_finite())?;
        let mut rest = flat;
        let mut index = vec![0; self.shape.len()];
        for d in (0..self.shape.len()).rev() {
            index[d] = rest % self.shape[d];
            rest /= self.shape[d];
        }
        Some(index)
    }

    /// Fails with the position of the first NaN or infinite value.
    pub fn expect_finite(&self, what: &str) -> Result<(), Problem> {
        match self.first_non_finite() {
            None => Ok(()),
            Some(index) => {
                let flat = index.iter().zip(&self.shape).fold(0, |acc, (i, s)| acc * s + i);
                Err(problem!("{what} holds a non-finite value ({}) at index {index:?}", self.data[flat]))
            }
        }
    }

    /// Rows of the first axis, each a C-order slice.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, f64> {
        let row = self.shape.iter().skip(1).product::<usize>().max(1);
        self.data.chunks_exact(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortran_order_is_reordered() {
        // [[1,2,3],[4,5,6]] stored column-major is 1,4,2,5,3,6.
        let bytes: Vec<u8> = [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = Array::from_bytes(DType::F64, false, vec![2, 3], &bytes, true).unwrap();
        assert_eq!(a.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn wrong_byte_count_and_overflow_are_problems() {
        assert!(Array::from_bytes(DType::F32, false, vec![2, 2], &[0; 15], false).is_err());
        assert!(Array::from_bytes(DType::F32, false, vec![usize::MAX, 3], &[], false).is_err());
    }

    #[test]
    fn big_endian_and_non_finite_positions() {
        let bytes: Vec<u8> = [1.5f32, f32::NAN].iter().flat_map(|v| v.to_be_bytes()).collect();
        let a = Array::from_bytes(DType::F32, true, vec![1, 2], &bytes, false).unwrap();
        assert_eq!(a.data[0], 1.5);
        assert_eq!(a.first_non_finite(), Some(vec![0, 1]));
        assert!(a.expect_finite("x").unwrap_err().0.contains("[0, 1]"));
    }

    #[test]
    fn shape_patterns() {
        let a = Array::from_vec(DType::F64, vec![4, 17, 3], vec![0.0; 4 * 51]).unwrap();
        assert!(a.expect_shape("pose", &[None, Some(17), Some(3)]).is_ok());
        let err = a.expect_shape("pose", &[None, Some(32), Some(3)]).unwrap_err();
        assert_eq!(err.0, "pose has shape [4, 17, 3], expected (N, 32, 3)");
    }
}
