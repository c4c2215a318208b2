//! A restricted Python pickle decoder.
//!
//! Pose datasets ship as pickles: VideoPose3D's `.npz` files hold pickled
//! dicts of NumPy arrays (protocol 3 with `numpy.core` globals from numpy < 2,
//! protocol 4 with `numpy._core` from numpy ≥ 2), and 3DPW's sequence files
//! are Python-2 pickles whose strings and array buffers are 8-bit `str`
//! (read with `encoding='latin1'`, as users do in Python 3).
//!
//! Unlike `pickle.load`, this never runs code: the only globals accepted are
//! the NumPy array/dtype/scalar constructors and `_codecs.encode`, and they
//! are interpreted here. Anything else is an error naming the global.

use std::borrow::Cow;
use std::io::{BufRead, Read};
use std::sync::Arc;

use crate::array::{element_count, expect_data_len, Array, DType};
use crate::spill::{Spill, SpilledBytes};
use crate::{problem, read_up_to, Problem};

/// A decoded Python value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// `str` (Python 3), or Python-2 `str` decoded as latin-1.
    Str(String),
    /// Shared, so that the memo and the stack hold large buffers once.
    Bytes(Arc<[u8]>),
    /// A large `bytes` left in a [`Spill`] file (streaming reads only).
    SpilledBytes(SpilledBytes),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// Keys in insertion order.
    Dict(Vec<(Value, Value)>),
    Set(Vec<Value>),
    Array(Arc<Array>),
    /// A numeric array whose data stayed in a [`Spill`] file until [`ArrayRef::load`].
    SpilledArray(Arc<SpilledArray>),
    /// An array of dtype `object`, e.g. the 0-d wrapper `np.savez` puts around a dict.
    ObjectArray {
        shape: Vec<usize>,
        items: Vec<Value>,
    },
    DType(NumpyDType),
    /// Intermediate values of the NumPy reconstruction protocol.
    #[doc(hidden)]
    Pending(Pending),
}

/// A numeric array read with a [`Spill`]: its header is known, its data is
/// read from the spill file only when the array is loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct SpilledArray {
    pub dtype: DType,
    pub big_endian: bool,
    pub shape: Vec<usize>,
    pub fortran: bool,
    pub data: SpilledBytes,
}

impl SpilledArray {
    pub fn load(&self) -> Result<Array, Problem> {
        let bytes = self.data.read().map_err(|e| problem!("reading back the spill file: {e}"))?;
        Array::from_bytes(self.dtype, self.big_endian, self.shape.clone(), &bytes, self.fortran)
    }
}

/// A numeric array from a pickle, decoded or still in the spill file.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrayRef {
    Loaded(Arc<Array>),
    Spilled(Arc<SpilledArray>),
}

impl ArrayRef {
    pub fn shape(&self) -> &[usize] {
        match self {
            Self::Loaded(a) => &a.shape,
            Self::Spilled(a) => &a.shape,
        }
    }

    /// The array's values; a spilled one is read back and decoded.
    pub fn load(&self) -> Result<Arc<Array>, Problem> {
        match self {
            Self::Loaded(a) => Ok(a.clone()),
            Self::Spilled(a) => a.load().map(Arc::new),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NumpyDType {
    /// Type code without byte order, e.g. `f8`, `O8`.
    pub code: String,
    pub big_endian: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    Global(Global),
    /// `_reconstruct(ndarray, (0,), b'b')`, waiting for its BUILD state.
    EmptyArray,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Global {
    Reconstruct,
    NdArray,
    DType,
    Scalar,
    CodecsEncode,
    /// `bytes()`: Python 3 writes empty bytes so at protocols below 3.
    Bytes,
    /// `_frombuffer(buffer, dtype, shape, order)`: NumPy's arrays at
    /// protocol 5 (Python 3.14's default).
    FromBuffer,
}

/// Latin-1 encoding; `None` if a character is beyond U+00FF.
fn latin1_bytes(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// Python 2's `repr` of a `str`, undone as Python 3's unpickler does it
/// (`codecs.escape_decode`): the STRING opcode of protocol 0.
fn escape_decode(s: &[u8]) -> Result<Vec<u8>, Problem> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            out.push(s[i]);
            i += 1;
            continue;
        }
        let Some(&c) = s.get(i + 1) else { return Err(problem!("STRING ends in a lone backslash")) };
        i += 2;
        match c {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(c),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match s.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8); // Python keeps the low byte of \400..\777 too
            }
            b'x' => {
                let v = s.get(i..i + 2).and_then(hex_value).and_then(|v| u8::try_from(v).ok());
                out.push(v.ok_or_else(|| problem!("STRING has an invalid \\x escape"))?);
                i += 2;
            }
            other => out.extend([b'\\', other]),
        }
    }
    Ok(out)
}

/// Hex digits only (`from_str_radix` would take a leading `+`, Python does not).
fn hex_value(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |v, &d| Some(v * 16 + char::from(d).to_digit(16)?))
}

/// Python's `raw_unicode_escape`: bytes are Latin-1 code points, except
/// `\uXXXX` and `\UXXXXXXXX` after an odd number of backslashes (protocol 0
/// writes every backslash and newline of a `str` so): the UNICODE opcode.
fn raw_unicode_escape_decode(s: &[u8]) -> Result<String, Problem> {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            out.push(char::from(s[i]));
            i += 1;
            continue;
        }
        let run = s[i..].iter().take_while(|&&b| b == b'\\').count();
        out.extend(std::iter::repeat_n('\\', run));
        i += run;
        let digits = match s.get(i) {
            Some(b'u') if run % 2 == 1 => 4,
            Some(b'U') if run % 2 == 1 => 8,
            _ => continue,
        };
        out.pop();
        let escape = char::from(s[i]);
        let Some(v) = s.get(i + 1..i + 1 + digits).and_then(hex_value) else {
            return Err(problem!("UNICODE has a truncated \\{escape} escape"));
        };
        let c = char::from_u32(v).ok_or_else(|| match v {
            0xd800..=0xdfff => problem!("UNICODE holds a lone surrogate \\{escape}{v:0digits$x}, which UTF-8 cannot"),
            _ => problem!("UNICODE has an out-of-range \\{escape} escape"),
        })?;
        out.push(c);
        i += 1 + digits;
    }
    Ok(out)
}

fn resolve_global(module: &str, name: &str) -> Result<Global, Problem> {
    let numpy_core = matches!(module, "numpy.core.multiarray" | "numpy._core.multiarray");
    Ok(match (module, name) {
        (_, "_reconstruct") if numpy_core => Global::Reconstruct,
        (_, "scalar") if numpy_core => Global::Scalar,
        ("numpy", "ndarray") => Global::NdArray,
        ("numpy", "dtype") => Global::DType,
        ("_codecs", "encode") => Global::CodecsEncode,
        ("__builtin__" | "builtins", "bytes") => Global::Bytes,
        ("numpy.core.numeric" | "numpy._core.numeric", "_frombuffer") => Global::FromBuffer,
        _ => {
            return Err(problem!(
                "pickle refers to `{module}.{name}`; only NumPy arrays and plain Python data can be read"
            ))
        }
    })
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Bool(_) => "bool",
            Self::Int(_) => "int",
            Self::Float(_) => "float",
            Self::Str(_) => "str",
            Self::Bytes(_) | Self::SpilledBytes(_) => "bytes",
            Self::List(_) => "list",
            Self::Tuple(_) => "tuple",
            Self::Dict(_) => "dict",
            Self::Set(_) => "set",
            Self::Array(_) | Self::SpilledArray(_) => "ndarray",
            Self::ObjectArray { .. } => "object ndarray",
            Self::DType(_) => "dtype",
            Self::Pending(_) => "incomplete object",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Raw bytes: `bytes`, or a `str` whose characters are all below 256
    /// (a Python-2 buffer read as latin-1 — the inverse is exact).
    pub fn to_raw_bytes(&self) -> Option<Cow<'_, [u8]>> {
        match self {
            Self::Bytes(b) => Some(Cow::Borrowed(b)),
            Self::Str(s) => latin1_bytes(s).map(Cow::Owned),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Int(i) => Some(*i as f64),
            Self::Float(f) => Some(*f),
            Self::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }

    /// A numeric array, decoded or spilled.
    pub fn as_array(&self) -> Option<ArrayRef> {
        match self {
            Self::Array(a) => Some(ArrayRef::Loaded(a.clone())),
            Self::SpilledArray(a) => Some(ArrayRef::Spilled(a.clone())),
            _ => None,
        }
    }

    /// The items of a list or tuple.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Self::List(v) | Self::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// Looks up a string key of a dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Self::Dict(items) => items.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string keys of a dict, in order.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Self::Dict(items) => items.iter().filter_map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// A 0-d object array unwraps to its element (how `np.save` stores a dict).
    pub fn unwrap_scalar_object(self) -> Value {
        match self {
            Self::ObjectArray { shape, mut items } if shape.is_empty() && items.len() == 1 => items.remove(0),
            other => other,
        }
    }
}

/// Memo keys whose value is still on the stack, by key and by depth, so that
/// a GET, a PUT and a pop each cost a lookup rather than a scan of them all.
#[derive(Default)]
struct OpenMemo {
    depth_of: std::collections::HashMap<u64, usize>,
    /// Sets, not lists: a key stored again leaves its old depth in one step
    /// (a scan per store made a few MB of PUTs quadratic).
    at_depth: std::collections::BTreeMap<usize, std::collections::BTreeSet<u64>>,
}

impl OpenMemo {
    fn len(&self) -> usize {
        self.depth_of.len()
    }

    fn depth_of(&self, key: u64) -> Option<usize> {
        self.depth_of.get(&key).copied()
    }

    fn open(&mut self, key: u64, depth: usize) {
        if let Some(old) = self.depth_of.insert(key, depth) {
            if let Some(keys) = self.at_depth.get_mut(&old) {
                keys.remove(&key);
            }
        }
        self.at_depth.entry(depth).or_default().insert(key);
    }

    /// The keys at `depth`, no longer open.
    fn take_at(&mut self, depth: usize) -> Vec<u64> {
        let keys: Vec<u64> = self.at_depth.remove(&depth).unwrap_or_default().into_iter().collect();
        for key in &keys {
            self.depth_of.remove(key);
        }
        keys
    }

    /// The (key, depth) pairs at `from` and deeper, no longer open.
    fn close_from(&mut self, from: usize) -> Vec<(u64, usize)> {
        let closed = self.at_depth.split_off(&from);
        let pairs: Vec<(u64, usize)> =
            closed.into_iter().flat_map(|(depth, keys)| keys.into_iter().map(move |k| (k, depth))).collect();
        for (key, _) in &pairs {
            self.depth_of.remove(key);
        }
        pairs
    }
}

struct Machine<'s, R> {
    input: R,
    /// Bytes consumed, for error positions.
    pos: u64,
    stack: Vec<Value>,
    /// The weight of each stack slot, in step with `stack`.
    weights: Vec<Weight>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<u64, (Value, Weight)>,
    /// Memo keys whose value is still on the stack, at that depth. Python's
    /// memo shares objects and pickles fill them after the PUT (BUILD sets
    /// a dtype's byte order, APPENDS and SETITEMS fill containers), so the
    /// memo copy is taken when the value leaves the stack, or at a GET.
    open_memo: OpenMemo,
    spill: Option<&'s Arc<Spill>>,
    /// Bytes of values copied by DUP and memo GETs so far.
    copied: u64,
    /// Values made so far (leaves, containers, copies), and the most allowed.
    made: u64,
    max_values: u64,
}

/// Deeper values would overflow the stack when dropped or compared; no
/// dataset file nests more than a handful of levels.
const MAX_DEPTH: u32 = 256;
/// Memo references are copies here (Python shares them): a few bytes of
/// GETs can ask for exponentially many, so copies have a budget that grows
/// with the input read (dataset files copy little: shared dtypes, strings).
const COPY_BUDGET_BASE: u64 = 4 << 20;
/// At most this many values (~1 GB): a pickle inside an `.npz` member is
/// inflated as it is read, and a few MB of zlib can hold a billion 1-byte
/// opcodes that each make a value. Dataset pickles make thousands (their
/// arrays are single byte strings).
const MAX_VALUES: u64 = 1 << 24;
const COPY_BUDGET_PER_INPUT_BYTE: u64 = 64;
const COPY_BUDGET_MAX: u64 = 1 << 30;

/// How deep a value nests and roughly how much memory it holds (shared
/// buffers and arrays not counted: copying those is free).
#[derive(Debug, Clone, Copy, Default)]
struct Weight {
    depth: u32,
    bytes: u64,
}

impl Weight {
    const NODE: u64 = std::mem::size_of::<Value>() as u64;

    fn leaf(value: &Value) -> Self {
        let text = match value {
            Value::Str(s) => s.len() as u64,
            _ => 0,
        };
        Weight { depth: 0, bytes: Self::NODE + text }
    }

    /// Items together, before they are put in a container.
    fn sum(weights: &[Weight]) -> Self {
        weights
            .iter()
            .fold(Weight::default(), |acc, w| Weight { depth: acc.depth.max(w.depth), bytes: acc.bytes + w.bytes })
    }

    /// A container holding items of weight `items`.
    fn holding(items: Weight) -> Self {
        Weight { depth: items.depth + 1, bytes: items.bytes + Self::NODE }
    }
}

/// Decodes one pickle; trailing bytes after STOP are ignored, as `pickle.loads` does.
pub fn from_bytes(input: &[u8]) -> Result<Value, Problem> {
    from_reader(input, None)
}

/// Decodes one pickle from a stream. With a `spill`, every `bytes` of at
/// least [`Spill::min_bytes`] is copied to the spill file instead of memory,
/// and NumPy arrays built on them come back as [`Value::SpilledArray`]: memory
/// then holds the pickle's structure, not its array data.
pub fn from_reader(input: impl BufRead, spill: Option<&Arc<Spill>>) -> Result<Value, Problem> {
    decode(input, spill, MAX_VALUES)
}

fn decode(input: impl BufRead, spill: Option<&Arc<Spill>>, max_values: u64) -> Result<Value, Problem> {
    let mut m = Machine {
        input,
        pos: 0,
        stack: Vec::new(),
        weights: Vec::new(),
        marks: Vec::new(),
        memo: Default::default(),
        open_memo: OpenMemo::default(),
        spill,
        copied: 0,
        made: 0,
        max_values,
    };
    m.run().map_err(|p| problem!("pickle: {p} (at byte {})", m.pos))
}

fn read_problem(e: std::io::Error) -> Problem {
    problem!("{e}")
}

impl<R: BufRead> Machine<'_, R> {
    /// The next `n` bytes; the buffer grows with what is actually read, so a
    /// huge length claimed by a damaged file allocates nothing up front.
    fn take(&mut self, n: usize) -> Result<Vec<u8>, Problem> {
        let mut out = Vec::with_capacity(n.min(1 << 16));
        let got = (&mut self.input).take(n as u64).read_to_end(&mut out).map_err(read_problem)?;
        self.pos += got as u64;
        if got < n {
            return Err(problem!("truncated: needs {n} more bytes, {got} left"));
        }
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Problem> {
        Ok(self.le::<1>()?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N], Problem> {
        let mut out = [0; N];
        let got = read_up_to(&mut self.input, &mut out).map_err(read_problem)?;
        self.pos += got as u64;
        if got < N {
            return Err(problem!("truncated: needs {N} more bytes, {got} left"));
        }
        Ok(out)
    }

    fn len_u32(&mut self) -> Result<usize, Problem> {
        Ok(u32::from_le_bytes(self.le()?) as usize)
    }

    fn len_u64(&mut self) -> Result<usize, Problem> {
        usize::try_from(u64::from_le_bytes(self.le()?)).map_err(|_| problem!("length overflows"))
    }

    fn line(&mut self) -> Result<String, Problem> {
        String::from_utf8(self.line_bytes()?).map_err(|_| problem!("text opcode argument is not UTF-8"))
    }

    fn line_bytes(&mut self) -> Result<Vec<u8>, Problem> {
        let mut raw = Vec::new();
        self.pos += self.input.read_until(b'\n', &mut raw).map_err(read_problem)? as u64;
        if raw.pop() != Some(b'\n') {
            return Err(problem!("truncated: unterminated line"));
        }
        Ok(raw)
    }

    /// `n` bytes of a `bytes` value: to the spill file when there is one and
    /// the value is large, else into memory.
    fn bytes(&mut self, n: usize) -> Result<Value, Problem> {
        if let Some(spill) = self.spill.filter(|s| n >= s.min_bytes()) {
            let stored = spill.store(&mut self.input, n).map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => problem!("truncated: needs {n} more bytes"),
                _ => read_problem(e),
            })?;
            self.pos += n as u64;
            return Ok(Value::SpilledBytes(stored));
        }
        Ok(Value::Bytes(self.take(n)?.into()))
    }

    fn push(&mut self, value: Value) {
        self.made += 1;
        self.weights.push(Weight::leaf(&value));
        self.stack.push(value);
    }

    fn push_weighted(&mut self, value: Value, weight: Weight) -> Result<(), Problem> {
        if weight.depth > MAX_DEPTH {
            return Err(problem!("objects nested more than {MAX_DEPTH} levels deep"));
        }
        self.made += 1;
        self.weights.push(weight);
        self.stack.push(value);
        Ok(())
    }

    /// A container of `items`, whose weights sum to `weight`.
    fn push_container(&mut self, value: Value, items: Weight) -> Result<(), Problem> {
        self.push_weighted(value, Weight::holding(items))
    }

    /// Accounts for items added to the container on top of the stack.
    fn grow_top(&mut self, items: Weight) -> Result<(), Problem> {
        let top = self.weights.last_mut().ok_or_else(|| problem!("stack underflow"))?;
        let grown = Weight::holding(items);
        top.depth = top.depth.max(grown.depth);
        top.bytes += items.bytes;
        if top.depth > MAX_DEPTH {
            return Err(problem!("objects nested more than {MAX_DEPTH} levels deep"));
        }
        Ok(())
    }

    /// A copy of a value already held; copies are budgeted.
    fn push_copy(&mut self, value: Value, weight: Weight) -> Result<(), Problem> {
        self.charge_copy(weight)?;
        self.push_weighted(value, weight)
    }

    fn charge_copy(&mut self, weight: Weight) -> Result<(), Problem> {
        self.copied += weight.bytes;
        // Capped too: an .npz member's input is inflated, so its length says
        // little about the file's.
        let budget = (COPY_BUDGET_BASE + COPY_BUDGET_PER_INPUT_BYTE * self.pos).min(COPY_BUDGET_MAX);
        if self.copied > budget {
            return Err(problem!("memo references expand to more than {} MiB of copies", budget >> 20));
        }
        Ok(())
    }

    fn pop(&mut self) -> Result<Value, Problem> {
        self.pop_weighted().map(|(v, _)| v)
    }

    fn pop_weighted(&mut self) -> Result<(Value, Weight), Problem> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(problem!("stack underflow"));
        }
        self.close_memo(self.stack.len() - 1)?;
        Ok((self.stack.pop().expect("checked"), self.weights.pop().expect("in step")))
    }

    /// Copy the finished values of open memo keys at depth `from` and above
    /// into the memo: they are about to leave the stack. Copies are
    /// budgeted like GETs (Python would share the object).
    fn close_memo(&mut self, from: usize) -> Result<(), Problem> {
        for (key, depth) in self.open_memo.close_from(from) {
            let (v, w) = (self.stack[depth].clone(), self.weights[depth]);
            self.charge_copy(w)?;
            self.memo.insert(key, (v, w));
        }
        Ok(())
    }

    fn top(&mut self) -> Result<&mut Value, Problem> {
        self.stack.last_mut().ok_or_else(|| problem!("stack underflow"))
    }

    /// The items above the last mark, and their summed weight.
    fn pop_mark(&mut self) -> Result<(Vec<Value>, Weight), Problem> {
        let mark = self.marks.pop().ok_or_else(|| problem!("MARK expected"))?;
        self.split_off(mark)
    }

    fn split_off(&mut self, at: usize) -> Result<(Vec<Value>, Weight), Problem> {
        self.close_memo(at)?;
        let weights = self.weights.split_off(at);
        Ok((self.stack.split_off(at), Weight::sum(&weights)))
    }

    fn latin1(bytes: &[u8]) -> Value {
        Value::Str(bytes.iter().map(|&b| char::from(b)).collect())
    }

    fn utf8(bytes: Vec<u8>) -> Result<Value, Problem> {
        String::from_utf8(bytes).map(Value::Str).map_err(|_| problem!("str is not valid UTF-8"))
    }

    fn memo_get(&mut self, key: u64) -> Result<(), Problem> {
        let (v, w) = match self.open_memo.depth_of(key) {
            Some(depth) => (self.stack[depth].clone(), self.weights[depth]),
            None => self.memo.get(&key).cloned().ok_or_else(|| problem!("memo key {key} is not defined"))?,
        };
        self.push_copy(v, w)
    }

    fn memo_put(&mut self, key: u64) -> Result<(), Problem> {
        if self.stack.is_empty() {
            return Err(problem!("stack underflow"));
        }
        self.memo.remove(&key);
        self.open_memo.open(key, self.stack.len() - 1);
        Ok(())
    }

    fn run(&mut self) -> Result<Value, Problem> {
        loop {
            if self.made > self.max_values {
                return Err(problem!("more than {} values: not a dataset file", self.max_values));
            }
            let op = self.u8()?;
            match op {
                b'.' => {
                    // STOP
                    let v = self.pop()?;
                    if let Value::Pending(p) = &v {
                        return Err(problem!("pickle ends with an unfinished object {p:?}"));
                    }
                    return Ok(v);
                }
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return Err(problem!("unsupported pickle protocol {proto}"));
                    }
                }
                0x95 => {
                    self.le::<8>()?; // FRAME: a size hint only
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    if self.marks.last() == Some(&self.stack.len()) {
                        self.marks.pop();
                    } else {
                        self.pop()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    let w = *self.weights.last().expect("in step");
                    self.push_copy(v, w)?;
                }
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'I' => {
                    let text = self.line()?;
                    self.push(match text.as_str() {
                        "01" => Value::Bool(true),
                        "00" => Value::Bool(false),
                        t => Value::Int(t.parse().map_err(|_| problem!("bad INT {t:?}"))?),
                    });
                }
                b'L' => {
                    let line = self.line()?;
                    let text = line.trim_end_matches('L');
                    self.push(Value::Int(text.parse().map_err(|_| problem!("unsupported LONG {text:?}"))?));
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.push(Value::Int(i64::from(v)));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a { usize::from(self.u8()?) } else { self.len_u32()? };
                    if n > 8 {
                        return Err(problem!("integer of {n} bytes is too large"));
                    }
                    let bytes = self.take(n)?;
                    let mut buf = if bytes.last().is_some_and(|b| b & 0x80 != 0) { [0xff; 8] } else { [0; 8] };
                    buf[..n].copy_from_slice(&bytes);
                    self.push(Value::Int(i64::from_le_bytes(buf)));
                }
                b'F' => {
                    let text = self.line()?;
                    self.push(Value::Float(text.parse().map_err(|_| problem!("bad FLOAT {text:?}"))?));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le()?);
                    self.push(Value::Float(v));
                }
                b'U' => {
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?;
                    self.push(Self::latin1(&b));
                }
                b'T' => {
                    let n = self.len_u32()?;
                    let b = self.take(n)?;
                    self.push(Self::latin1(&b));
                }
                b'S' => {
                    let text = self.line_bytes()?;
                    let inner = match text.as_slice() {
                        [q @ (b'\'' | b'"'), inner @ .., end] if end == q => inner,
                        _ => return Err(problem!("bad STRING {:?}", String::from_utf8_lossy(&text))),
                    };
                    self.push(Self::latin1(&escape_decode(inner)?));
                }
                b'V' => {
                    let text = self.line_bytes()?;
                    self.push(Value::Str(raw_unicode_escape_decode(&text)?));
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?;
                    self.push(Self::utf8(b)?);
                }
                b'X' => {
                    let n = self.len_u32()?;
                    let b = self.take(n)?;
                    self.push(Self::utf8(b)?);
                }
                0x8d => {
                    let n = self.len_u64()?;
                    let b = self.take(n)?;
                    self.push(Self::utf8(b)?);
                }
                b'C' => {
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?;
                    self.push(Value::Bytes(b.into()));
                }
                b'B' => {
                    let n = self.len_u32()?;
                    let v = self.bytes(n)?;
                    self.push(v);
                }
                0x8e | 0x96 => {
                    let n = self.len_u64()?;
                    let v = self.bytes(n)?;
                    self.push(v);
                }
                b']' => self.push(Value::List(Vec::new())),
                b'l' => {
                    let (items, w) = self.pop_mark()?;
                    self.push_container(Value::List(items), w)?;
                }
                b'a' => {
                    let (v, w) = self.pop_weighted()?;
                    match self.top()? {
                        Value::List(items) => items.push(v),
                        other => return Err(problem!("APPEND to a {}", other.type_name())),
                    }
                    self.grow_top(w)?;
                }
                b'e' => {
                    let (new, w) = self.pop_mark()?;
                    match self.top()? {
                        Value::List(items) => items.extend(new),
                        other => return Err(problem!("APPENDS to a {}", other.type_name())),
                    }
                    self.grow_top(w)?;
                }
                b')' => self.push(Value::Tuple(Vec::new())),
                b't' => {
                    let (items, w) = self.pop_mark()?;
                    self.push_container(Value::Tuple(items), w)?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if self.stack.len() < floor + n {
                        return Err(problem!("stack underflow"));
                    }
                    let (items, w) = self.split_off(self.stack.len() - n)?;
                    self.push_container(Value::Tuple(items), w)?;
                }
                b'}' => self.push(Value::Dict(Vec::new())),
                b'd' => {
                    let (items, w) = self.pop_mark()?;
                    self.push_container(Value::Dict(pairs(items)?), w)?;
                }
                b's' => {
                    let (v, wv) = self.pop_weighted()?;
                    let (k, wk) = self.pop_weighted()?;
                    match self.top()? {
                        Value::Dict(items) => items.push((k, v)),
                        other => return Err(problem!("SETITEM on a {}", other.type_name())),
                    }
                    self.grow_top(Weight::sum(&[wk, wv]))?;
                }
                b'u' => {
                    let (items, w) = self.pop_mark()?;
                    let items = pairs(items)?;
                    match self.top()? {
                        Value::Dict(d) => d.extend(items),
                        other => return Err(problem!("SETITEMS on a {}", other.type_name())),
                    }
                    self.grow_top(w)?;
                }
                0x8f => self.push(Value::Set(Vec::new())),
                0x90 => {
                    let (items, w) = self.pop_mark()?;
                    match self.top()? {
                        Value::Set(s) => s.extend(items),
                        other => return Err(problem!("ADDITEMS on a {}", other.type_name())),
                    }
                    self.grow_top(w)?;
                }
                0x91 => {
                    let (items, w) = self.pop_mark()?;
                    self.push_container(Value::Set(items), w)?;
                }
                b'p' => {
                    let key = self.line()?.parse().map_err(|_| problem!("bad PUT key"))?;
                    self.memo_put(key)?;
                }
                b'q' => {
                    let key = u64::from(self.u8()?);
                    self.memo_put(key)?;
                }
                b'r' => {
                    let key = u64::from(u32::from_le_bytes(self.le()?));
                    self.memo_put(key)?;
                }
                0x94 => {
                    // Python's len(memo): every key defined so far, open or closed.
                    let key = (self.memo.len() + self.open_memo.len()) as u64;
                    self.memo_put(key)?;
                }
                b'g' => {
                    let key = self.line()?.parse().map_err(|_| problem!("bad GET key"))?;
                    self.memo_get(key)?;
                }
                b'h' => {
                    let key = u64::from(self.u8()?);
                    self.memo_get(key)?;
                }
                b'j' => {
                    let key = u64::from(u32::from_le_bytes(self.le()?));
                    self.memo_get(key)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Pending(Pending::Global(resolve_global(&module, &name)?)));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(module), Some(name)) = (module.as_str(), name.as_str()) else {
                        return Err(problem!("STACK_GLOBAL needs two strings"));
                    };
                    self.push(Value::Pending(Pending::Global(resolve_global(module, name)?)));
                }
                b'R' => {
                    let (args, wa) = self.pop_weighted()?;
                    let (callable, wc) = self.pop_weighted()?;
                    let v = reduce(callable, args)?;
                    self.push_container(v, Weight::sum(&[wa, wc]))?;
                }
                0x81 => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    return Err(problem!("cannot create objects of {cls:?} with {}", args.type_name()));
                }
                b'b' => {
                    let (state, ws) = self.pop_weighted()?;
                    // The built object is the target, filled in: its memo keys stay open.
                    let depth = self.stack.len().checked_sub(1).ok_or_else(|| problem!("stack underflow"))?;
                    let keys = self.open_memo.take_at(depth);
                    let (target, wt) = self.pop_weighted()?;
                    let v = build(target, state)?;
                    self.push_container(v, Weight::sum(&[ws, wt]))?;
                    for key in keys {
                        self.open_memo.open(key, depth);
                    }
                }
                _ => return Err(problem!("unsupported opcode 0x{op:02x}")),
            }
        }
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, Problem> {
    if !items.len().is_multiple_of(2) {
        return Err(problem!("odd number of items for a dict"));
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn reduce(callable: Value, args: Value) -> Result<Value, Problem> {
    let Value::Pending(Pending::Global(global)) = callable else {
        return Err(problem!("REDUCE on a {}", callable.type_name()));
    };
    let args = match args {
        Value::Tuple(a) => a,
        other => return Err(problem!("REDUCE arguments are a {}", other.type_name())),
    };
    match (global, args.as_slice()) {
        (Global::Reconstruct, [Value::Pending(Pending::Global(Global::NdArray)), ..]) => {
            Ok(Value::Pending(Pending::EmptyArray))
        }
        (Global::DType, [code, ..]) => {
            let code = code.as_str().ok_or_else(|| problem!("dtype code is a {}", code.type_name()))?;
            Ok(Value::DType(NumpyDType { code: code.to_string(), big_endian: false }))
        }
        (Global::Scalar, [Value::DType(dtype), data]) => {
            let bytes = data.to_raw_bytes().ok_or_else(|| problem!("scalar data is a {}", data.type_name()))?;
            let t = numeric_dtype(dtype)?;
            let a = Array::from_bytes(t, dtype.big_endian, vec![], &bytes, false)?;
            Ok(match t {
                DType::F32 | DType::F64 => Value::Float(a.data[0]),
                DType::Bool => Value::Bool(a.data[0] != 0.0),
                _ => Value::Int(a.data[0] as i64),
            })
        }
        (Global::CodecsEncode, [Value::Str(s), Value::Str(enc)]) if enc == "latin1" || enc == "latin-1" => {
            latin1_bytes(s).map(|b| Value::Bytes(b.into())).ok_or_else(|| problem!("latin1 encoding fails"))
        }
        (Global::Bytes, []) => Ok(Value::Bytes(Vec::new().into())),
        (Global::FromBuffer, [data, Value::DType(dtype), shape, order]) => {
            let fortran = match order.as_str() {
                Some("C") => false,
                Some("F") => true,
                _ => return Err(problem!("array order is {order:?}, not C or F")),
            };
            numeric_array(dtype, array_shape(shape)?, data, fortran)
        }
        (g, a) => Err(problem!("unsupported call {g:?} with {} arguments", a.len())),
    }
}

fn numeric_dtype(dtype: &NumpyDType) -> Result<DType, Problem> {
    DType::from_numpy(&dtype.code).ok_or_else(|| problem!("unsupported NumPy dtype {:?}", dtype.code))
}

fn build(target: Value, state: Value) -> Result<Value, Problem> {
    match (target, state) {
        (Value::DType(mut dtype), Value::Tuple(state)) => {
            // (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
            match state.get(1).and_then(Value::as_str) {
                Some(">") => dtype.big_endian = true,
                Some("<" | "|" | "=") | None => {}
                Some(other) => return Err(problem!("unknown dtype byte order {other:?}")),
            }
            if state.get(3).is_some_and(|names| *names != Value::None) {
                return Err(problem!("structured NumPy dtypes are not supported"));
            }
            Ok(Value::DType(dtype))
        }
        (Value::Pending(Pending::EmptyArray), Value::Tuple(state)) => {
            // (version, shape, dtype, is_fortran, data)
            let [_, shape, Value::DType(dtype), fortran, data] = state.as_slice() else {
                return Err(problem!("ndarray state has an unexpected layout"));
            };
            let shape = array_shape(shape)?;
            let fortran = matches!(fortran, Value::Bool(true) | Value::Int(1));
            if dtype.code.starts_with('O') {
                let items = match data {
                    Value::List(items) => items.clone(),
                    other => return Err(problem!("object array data is a {}", other.type_name())),
                };
                if items.len() != element_count(&shape)? {
                    return Err(problem!("object array of shape {shape:?} holds {} items", items.len()));
                }
                return Ok(Value::ObjectArray { shape, items });
            }
            numeric_array(dtype, shape, data, fortran)
        }
        (target, state) => Err(problem!("cannot set state {} on a {}", state.type_name(), target.type_name())),
    }
}

fn array_shape(shape: &Value) -> Result<Vec<usize>, Problem> {
    shape
        .as_seq()
        .ok_or_else(|| problem!("ndarray shape is a {}", shape.type_name()))?
        .iter()
        .map(|d| match d {
            Value::Int(n) => usize::try_from(*n).map_err(|_| problem!("negative array extent {n}")),
            other => Err(problem!("array extent is a {}", other.type_name())),
        })
        .collect()
}

/// A numeric array from its raw bytes (held, or parked in the spill file).
fn numeric_array(dtype: &NumpyDType, shape: Vec<usize>, data: &Value, fortran: bool) -> Result<Value, Problem> {
    let t = numeric_dtype(dtype)?;
    if let Value::SpilledBytes(data) = data {
        expect_data_len(t, &shape, data.len())?;
        let (big_endian, data) = (dtype.big_endian, data.clone());
        return Ok(Value::SpilledArray(Arc::new(SpilledArray { dtype: t, big_endian, shape, fortran, data })));
    }
    let bytes = data.to_raw_bytes().ok_or_else(|| problem!("ndarray data is a {}", data.type_name()))?;
    Ok(Value::Array(Arc::new(Array::from_bytes(t, dtype.big_endian, shape, &bytes, fortran)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // `pickle.dumps({'a': [1, 2.5, None], b'k': (True,)}, protocol=2)` and protocol 4,
    // written by CPython 3.11.
    const DICT_P2: &[u8] = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00Ne\
c_codecs\nencode\nq\x03X\x01\x00\x00\x00kq\x04X\x06\x00\x00\x00latin1q\x05\x86q\x06Rq\x07\x88\x85q\x08u.";
    const DICT_P4: &[u8] = b"\x80\x04\x95 \x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94]\x94(K\x01G@\x04\x00\x00\x00\x00\x00\x00NeC\x01k\x94\x88\x85\x94u.";

    fn expected() -> Value {
        Value::Dict(vec![
            (Value::Str("a".into()), Value::List(vec![Value::Int(1), Value::Float(2.5), Value::None])),
            (Value::Bytes(b"k".as_slice().into()), Value::Tuple(vec![Value::Bool(true)])),
        ])
    }

    #[test]
    fn plain_data_in_protocols_2_and_4() {
        assert_eq!(from_bytes(DICT_P2).unwrap(), expected());
        assert_eq!(from_bytes(DICT_P4).unwrap(), expected());
    }

    #[test]
    fn python2_strings_are_latin1() {
        // Python 2: pickle.dumps({'caf\xe9': 'x'}, 2)
        let v = from_bytes(b"\x80\x02}q\x00U\x04caf\xe9q\x01U\x01xq\x02s.").unwrap();
        assert_eq!(v.get("caf\u{e9}"), Some(&Value::Str("x".into())));
        assert_eq!(v.get("caf\u{e9}").unwrap().to_raw_bytes().as_deref(), Some(b"x".as_slice()));
    }

    #[test]
    fn protocol_0_text_is_unescaped_as_python_does() {
        // Python 3.11: pickle.dumps({'caf\u00e9 \u2211\\ x\n': 'a\\ub'}, protocol=0)
        let v = from_bytes(b"(dp0\nVcaf\xe9 \\u2211\\u005c x\\u000a\np1\nVa\\u005cub\np2\ns.").unwrap();
        assert_eq!(v.get("caf\u{e9} \u{2211}\\ x\n"), Some(&Value::Str("a\\ub".into())));
        // Python 2: pickle.dumps({'caf\xe9': "it's\n\\"}, 0)
        let v = from_bytes(b"(dp0\nS'caf\\xe9'\np1\nS\"it's\\n\\\\\"\np2\ns.").unwrap();
        assert_eq!(v.get("caf\u{e9}"), Some(&Value::Str("it's\n\\".into())));
        assert_eq!(escape_decode(br"\101\7\q\x41").unwrap(), b"A\x07\\qA");
        assert!(escape_decode(br"\x4").is_err());
        assert!(escape_decode(br"\x+f").is_err());
        assert!(raw_unicode_escape_decode(br"\u+041").is_err());
        assert_eq!(raw_unicode_escape_decode(br"\\u0041 \\\u0041 \U0001F600").unwrap(), "\\\\u0041 \\\\A \u{1F600}");
        let err = raw_unicode_escape_decode(br"\uD800").unwrap_err();
        assert!(err.0.contains("lone surrogate \\ud800"), "{err}");
        let err = raw_unicode_escape_decode(br"\U0000DFFF").unwrap_err();
        assert!(err.0.contains("lone surrogate \\U0000dfff"), "{err}");
        assert!(raw_unicode_escape_decode(br"\U00110000").is_err());
    }

    /// Python 3.14 pickles at protocol 5, where NumPy writes an array as
    /// `_frombuffer(bytearray, dtype, shape, order)`; at protocol 2, Python 3
    /// writes an empty array's data as `bytes()`.
    #[test]
    fn protocol_5_arrays_and_empty_protocol_2_arrays() {
        // pickle.dumps({'a': np.arange(6, dtype='<f4').reshape(2, 3),
        //               'b': np.asfortranarray(np.arange(6, dtype='>i4').reshape(2, 3))}, protocol=5)
        const P5: &[u8] = b"\x80\x05\x95\xf3\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94\x8c\x13numpy._core.numeric\x94\x8c\x0b_frombuffer\x94\x93\x94(\x96\x18\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80?\x00\x00\x00@\x00\x00@@\x00\x00\x80@\x00\x00\xa0@\x94\x8c\x05numpy\x94\x8c\x05dtype\x94\x93\x94\x8c\x02f4\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01<\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t\x94bK\x02K\x03\x86\x94\x8c\x01C\x94t\x94R\x94\x8c\x01b\x94h\x04(\x96\x18\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x01\x00\x00\x00\x04\x00\x00\x00\x02\x00\x00\x00\x05\x94h\x08\x8c\x02i4\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01>\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t\x94bK\x02K\x03\x86\x94\x8c\x01F\x94t\x94R\x94u.";
        let v = from_bytes(P5).unwrap();
        for key in ["a", "b"] {
            let Some(Value::Array(a)) = v.get(key) else { panic!("{key}: {:?}", v.get(key)) };
            assert_eq!(
                (a.shape.as_slice(), a.data.as_slice()),
                ([2, 3].as_slice(), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0].as_slice())
            );
        }
        // pickle.dumps(np.zeros((0, 3)), protocol=2)
        const EMPTY_P2: &[u8] = b"\x80\x02cnumpy._core.multiarray\x0a_reconstruct\x0aq\x00cnumpy\x0andarray\x0aq\x01K\x00\x85q\x02c_codecs\x0aencode\x0aq\x03X\x01\x00\x00\x00bq\x04X\x06\x00\x00\x00latin1q\x05\x86q\x06Rq\x07\x87q\x08Rq\x09(K\x01K\x00K\x03\x86q\x0acnumpy\x0adtype\x0aq\x0bX\x02\x00\x00\x00f8q\x0c\x89\x88\x87q\x0dRq\x0e(K\x03X\x01\x00\x00\x00<q\x0fNNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tq\x10b\x89c__builtin__\x0abytes\x0aq\x11)Rq\x12tq\x13b.";
        let Value::Array(a) = from_bytes(EMPTY_P2).unwrap() else { panic!("not an array") };
        assert_eq!((a.shape.as_slice(), a.data.len()), ([0, 3].as_slice(), 0));
    }

    /// A run of 1-byte opcodes, each making a value, stops at the cap
    /// instead of growing memory ~70 times the input.
    #[test]
    fn a_flood_of_values_is_refused() {
        let mut flood = b"\x80\x02".to_vec();
        flood.extend(std::iter::repeat_n(b'N', 1010));
        flood.push(b'.');
        let err = decode(flood.as_slice(), None, 1000).unwrap_err();
        assert!(err.0.contains("more than 1000 values: not a dataset file"), "{err}");
        // The data of the tests above is far below the real cap.
        assert!(decode(DICT_P2, None, 20).is_ok());
    }

    #[test]
    fn foreign_globals_and_truncation_are_refused() {
        let err = from_bytes(b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.").unwrap_err();
        assert!(err.0.contains("`os.system`"), "{err}");
        let err = from_bytes(&DICT_P4[..20]).unwrap_err();
        assert!(err.0.contains("truncated"), "{err}");
        assert!(from_bytes(b"").is_err());
        assert!(from_bytes(b"\x80\x02e.").is_err());
    }

    // pickle.dumps({'a': np.arange(100, dtype='<f4').reshape(25, 4),
    //               'b': [np.arange(40, dtype='>f8').reshape(8, 5),
    //                     np.asfortranarray(np.arange(60, dtype='<i4').reshape(6, 10))],
    //               'c': np.arange(6.0).reshape(2, 3)}, protocol=3), numpy 2.4.
    const ARRAYS_P3: &[u8] = include_bytes!("../testdata/arrays_p3.pickle");

    fn array(v: &Value) -> Arc<Array> {
        v.as_array().expect("an array").load().expect("loads")
    }

    /// Python's memo shares objects that pickles fill after memoizing them;
    /// a GET must see them filled.
    #[test]
    fn memoized_objects_are_seen_finished() {
        // a = [1, 2]; pickle.dumps([a, a], protocol=2): `a` is memoized empty, then appended to.
        let v = from_bytes(b"\x80\x02]q\x00(]q\x01(K\x01K\x02eh\x01e.").unwrap();
        let both = Value::List(vec![Value::Int(1), Value::Int(2)]);
        assert_eq!(v, Value::List(vec![both.clone(), both.clone()]));
        // a, s = [1, 2], 'xy'; pickle.dumps([a, s, a, s], protocol=4): MEMOIZE
        // numbers keys by how many are defined, the still-open list included.
        let v = from_bytes(
            b"\x80\x04\x95\x16\x00\x00\x00\x00\x00\x00\x00]\x94(]\x94(K\x01K\x02e\x8c\x02xy\x94h\x01h\x02e.",
        )
        .unwrap();
        let xy = Value::Str("xy".into());
        assert_eq!(v, Value::List(vec![both.clone(), xy.clone(), both, xy]));
        // pickle.dumps([np.arange(3, dtype='>f8'), np.arange(2, dtype='>f8')], 2) with the
        // second array's dtype a GET of the first's, as pickles of a shared dtype
        // object have it: memoized before BUILD gives it its byte order.
        let v = from_bytes(include_bytes!("../testdata/shared_dtype_p2.pickle")).unwrap();
        let arrays = v.as_seq().unwrap();
        assert_eq!(array(&arrays[0]).data, vec![0.0, 1.0, 2.0]);
        assert_eq!(array(&arrays[1]).data, vec![0.0, 1.0]);
    }

    #[test]
    fn streamed_with_a_spill_equals_decoded_in_memory() {
        let in_memory = from_bytes(ARRAYS_P3).unwrap();
        let spill = Spill::new(tempfile::tempfile().unwrap(), 256);
        let streamed = from_reader(std::io::BufReader::with_capacity(7, ARRAYS_P3), Some(&spill)).unwrap();
        // 'a', 'b'[0] and 'b'[1] (400, 320, 240 bytes) are spilled; 'c' (48) is not.
        assert!(matches!(streamed.get("a"), Some(Value::SpilledArray(_))));
        assert!(matches!(streamed.get("c"), Some(Value::Array(_))));
        assert_eq!(spill.len(), 400 + 320);
        assert!(matches!(streamed.get("b").unwrap().as_seq().unwrap()[1], Value::Array(_)));
        for key in ["a", "c"] {
            assert_eq!(array(streamed.get(key).unwrap()), array(in_memory.get(key).unwrap()), "{key}");
        }
        let (b_streamed, b_memory) =
            (streamed.get("b").unwrap().as_seq().unwrap(), in_memory.get("b").unwrap().as_seq().unwrap());
        for (s, m) in b_streamed.iter().zip(b_memory) {
            assert_eq!(array(s), array(m));
        }
        let a = array(streamed.get("a").unwrap());
        assert_eq!((a.shape.as_slice(), a.data[99]), ([25, 4].as_slice(), 99.0));
        let b0 = array(&b_streamed[0]);
        assert_eq!((b0.dtype, b0.data[39]), (DType::F64, 39.0));
        // Column-major data comes back in C order.
        assert_eq!(array(&b_streamed[1]).data[1], 1.0);
    }

    #[test]
    fn streamed_truncation_is_an_error() {
        for cut in [20, 300, ARRAYS_P3.len() - 1] {
            let spill = Spill::new(tempfile::tempfile().unwrap(), 1);
            let err = from_reader(&ARRAYS_P3[..cut], Some(&spill)).unwrap_err();
            assert!(err.0.contains("truncated"), "cut at {cut}: {err}");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        // 200 000 lists, each appended into the one below it.
        let mut bytes = vec![0x80, 2];
        bytes.extend(std::iter::repeat_n(b']', 200_000));
        bytes.extend(std::iter::repeat_n(b'a', 199_999));
        bytes.push(b'.');
        let err = from_bytes(&bytes).unwrap_err();
        assert!(err.0.contains("nested"), "{err}");
    }

    #[test]
    fn exponential_memo_copies_are_refused() {
        // L0 = []; L(i) = [L(i-1), L(i-1)] by memo GETs: 2^40 nodes if copied.
        let mut bytes = vec![0x80, 2, b']', b'q', 0];
        for i in 1..=40u8 {
            bytes.extend([b'(', b'h', i - 1, b'h', i - 1, b'l', b'q', i]);
        }
        bytes.push(b'.');
        let err = from_bytes(&bytes).unwrap_err();
        assert!(err.0.contains("copies"), "{err}");

        // 64 memoized lists nested around 200 000 ints: the memo keeps a
        // finished copy of each level, 64 copies of the ints in all.
        let (depth, ints) = (64u32, 200_000);
        let mut bytes = vec![0x80, 2];
        for key in 0..depth {
            bytes.push(b']');
            bytes.push(b'r');
            bytes.extend(key.to_le_bytes());
            bytes.push(b'(');
        }
        for _ in 0..ints {
            bytes.extend([b'K', 1]);
        }
        bytes.extend(std::iter::repeat_n(b'e', depth as usize));
        bytes.push(b'.');
        let err = from_bytes(&bytes).unwrap_err();
        assert!(err.0.contains("copies"), "{err}");
        // Many memoized items under one mark come back whole.
        let mut bytes = vec![0x80, 2, b']', b'('];
        for key in 0..200_000u32 {
            bytes.extend([b']', b'r']);
            bytes.extend(key.to_le_bytes());
        }
        bytes.extend([b'e', b'.']);
        assert_eq!(from_bytes(&bytes).unwrap().as_seq().unwrap().len(), 200_000);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = from_bytes(&bytes);
        }

        #[test]
        fn mutated_pickles_never_panic(pos in 0usize..DICT_P2.len(), byte in proptest::num::u8::ANY) {
            let mut bytes = DICT_P2.to_vec();
            bytes[pos] = byte;
            let _ = from_bytes(&bytes);
        }
    }
}
