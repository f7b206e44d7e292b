//! Tensors as the engine sees them: a dtype, a shape and typed data, plus
//! the checks every request passes before anything is allocated for it
//! (SECURITY.md I2), and concatenation / splitting along the batch axis.

use super::Error;
use ndarray::{ArrayViewD, Axis, IxDyn};

/// Most dimensions a tensor may have (SECURITY.md I2).
pub const MAX_RANK: usize = 8;

/// Element types Conduit serves, with their KServe v2 names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// `BOOL`
    Bool,
    /// `UINT8`
    U8,
    /// `UINT16`
    U16,
    /// `UINT32`
    U32,
    /// `UINT64`
    U64,
    /// `INT8`
    I8,
    /// `INT16`
    I16,
    /// `INT32`
    I32,
    /// `INT64`
    I64,
    /// `FP32`
    F32,
    /// `FP64`
    F64,
}

impl DType {
    /// The KServe v2 datatype name.
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "BOOL",
            DType::U8 => "UINT8",
            DType::U16 => "UINT16",
            DType::U32 => "UINT32",
            DType::U64 => "UINT64",
            DType::I8 => "INT8",
            DType::I16 => "INT16",
            DType::I32 => "INT32",
            DType::I64 => "INT64",
            DType::F32 => "FP32",
            DType::F64 => "FP64",
        }
    }

    /// Parses a KServe v2 datatype name; `None` for names Conduit does not
    /// serve (FP16, BF16, BYTES) or does not know.
    pub fn from_name(s: &str) -> Option<DType> {
        Some(match s {
            "BOOL" => DType::Bool,
            "UINT8" => DType::U8,
            "UINT16" => DType::U16,
            "UINT32" => DType::U32,
            "UINT64" => DType::U64,
            "INT8" => DType::I8,
            "INT16" => DType::I16,
            "INT32" => DType::I32,
            "INT64" => DType::I64,
            "FP32" => DType::F32,
            "FP64" => DType::F64,
            _ => return None,
        })
    }

    /// Bytes per element in the binary tensor encoding.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
        }
    }

    /// The dtype of an ONNX Runtime element type, if Conduit serves it.
    pub(crate) fn from_ort(t: ort::value::TensorElementType) -> Option<DType> {
        use ort::value::TensorElementType as T;
        Some(match t {
            T::Bool => DType::Bool,
            T::Uint8 => DType::U8,
            T::Uint16 => DType::U16,
            T::Uint32 => DType::U32,
            T::Uint64 => DType::U64,
            T::Int8 => DType::I8,
            T::Int16 => DType::I16,
            T::Int32 => DType::I32,
            T::Int64 => DType::I64,
            T::Float32 => DType::F32,
            T::Float64 => DType::F64,
            _ => return None,
        })
    }

    /// True for integer types (JSON numbers must be whole; a value range applies).
    pub fn is_integer(self) -> bool {
        !matches!(self, DType::Bool | DType::F32 | DType::F64)
    }
}

/// Typed tensor data, row-major.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Data {
    Bool(Vec<bool>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Element types the engine moves between callers and ONNX Runtime.
pub trait Elem:
    ort::value::PrimitiveTensorElementType + Copy + Default + std::fmt::Debug + 'static
{
    /// Its dtype.
    const DTYPE: DType;
    /// Wraps a vector.
    fn wrap(v: Vec<Self>) -> Data;
    /// The slice inside `d`, if `d` holds this type.
    fn slice(d: &Data) -> Option<&[Self]>;
    /// Decodes one little-endian element.
    fn from_le(b: &[u8]) -> Self;
    /// Appends one little-endian element.
    fn put_le(self, out: &mut Vec<u8>);
}

macro_rules! elems {
    ($($v:ident $t:ty => $d:ident),*) => {$(
        impl Elem for $t {
            const DTYPE: DType = DType::$d;
            fn wrap(v: Vec<Self>) -> Data { Data::$v(v) }
            fn slice(d: &Data) -> Option<&[Self]> {
                match d { Data::$v(v) => Some(v), _ => None }
            }
            fn from_le(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(b);
                <$t>::from_le_bytes(a)
            }
            fn put_le(self, out: &mut Vec<u8>) { out.extend_from_slice(&self.to_le_bytes()) }
        }
    )*};
}
elems!(U8 u8 => U8, U16 u16 => U16, U32 u32 => U32, U64 u64 => U64,
       I8 i8 => I8, I16 i16 => I16, I32 i32 => I32, I64 i64 => I64,
       F32 f32 => F32, F64 f64 => F64);

impl Elem for bool {
    const DTYPE: DType = DType::Bool;
    fn wrap(v: Vec<Self>) -> Data {
        Data::Bool(v)
    }
    fn slice(d: &Data) -> Option<&[Self]> {
        match d {
            Data::Bool(v) => Some(v),
            _ => None,
        }
    }
    fn from_le(b: &[u8]) -> Self {
        b[0] != 0
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
}

/// Calls `$f::<T>($args)` with `T` the Rust type of `$dtype`.
#[macro_export]
#[doc(hidden)]
macro_rules! with_dtype {
    ($dtype:expr, $f:ident ( $($args:expr),* )) => {
        match $dtype {
            $crate::ml::DType::Bool => $f::<bool>($($args),*),
            $crate::ml::DType::U8 => $f::<u8>($($args),*),
            $crate::ml::DType::U16 => $f::<u16>($($args),*),
            $crate::ml::DType::U32 => $f::<u32>($($args),*),
            $crate::ml::DType::U64 => $f::<u64>($($args),*),
            $crate::ml::DType::I8 => $f::<i8>($($args),*),
            $crate::ml::DType::I16 => $f::<i16>($($args),*),
            $crate::ml::DType::I32 => $f::<i32>($($args),*),
            $crate::ml::DType::I64 => $f::<i64>($($args),*),
            $crate::ml::DType::F32 => $f::<f32>($($args),*),
            $crate::ml::DType::F64 => $f::<f64>($($args),*),
        }
    };
}
pub use with_dtype;

impl Data {
    /// The first integer element outside `[lo, hi]`, if any (floats and
    /// booleans have none).
    pub fn first_outside(&self, lo: i64, hi: i64) -> Option<i128> {
        fn find<T: Copy + Into<i128>>(v: &[T], lo: i64, hi: i64) -> Option<i128> {
            let (lo, hi) = (i128::from(lo), i128::from(hi));
            v.iter().map(|&x| x.into()).find(|&x| x < lo || x > hi)
        }
        match self {
            Data::U8(v) => find(v, lo, hi),
            Data::U16(v) => find(v, lo, hi),
            Data::U32(v) => find(v, lo, hi),
            Data::U64(v) => find(v, lo, hi),
            Data::I8(v) => find(v, lo, hi),
            Data::I16(v) => find(v, lo, hi),
            Data::I32(v) => find(v, lo, hi),
            Data::I64(v) => find(v, lo, hi),
            Data::Bool(_) | Data::F32(_) | Data::F64(_) => None,
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Data::Bool(_) => DType::Bool,
            Data::U8(_) => DType::U8,
            Data::U16(_) => DType::U16,
            Data::U32(_) => DType::U32,
            Data::U64(_) => DType::U64,
            Data::I8(_) => DType::I8,
            Data::I16(_) => DType::I16,
            Data::I32(_) => DType::I32,
            Data::I64(_) => DType::I64,
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        fn n<T: Elem>(d: &Data) -> usize {
            T::slice(d).map_or(0, <[T]>::len)
        }
        with_dtype!(self.dtype(), n(self))
    }

    /// True if there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes the binary tensor encoding (little-endian, row-major);
    /// `bytes.len()` must be `count * dtype.size()`.
    pub fn from_le_bytes(dtype: DType, bytes: &[u8]) -> Data {
        fn dec<T: Elem>(b: &[u8], size: usize) -> Data {
            T::wrap(b.chunks_exact(size).map(T::from_le).collect())
        }
        with_dtype!(dtype, dec(bytes, dtype.size()))
    }

    /// Appends the binary tensor encoding of `self` to `out`.
    pub fn write_le_bytes(&self, out: &mut Vec<u8>) {
        fn enc<T: Elem>(d: &Data, out: &mut Vec<u8>) {
            let s = T::slice(d).unwrap_or_default();
            out.reserve(std::mem::size_of_val(s));
            for &x in s {
                x.put_le(out);
            }
        }
        with_dtype!(self.dtype(), enc(self, out))
    }
}

/// A named tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The model input or output it belongs to.
    pub name: String,
    /// Dimensions, row-major.
    pub shape: Vec<usize>,
    /// The elements; `data.len()` is the product of `shape`.
    pub data: Data,
}

impl Tensor {
    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }
}

/// An input or output as the model declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Its name in the graph.
    pub name: String,
    /// Its element type.
    pub dtype: DType,
    /// Its dimensions; -1 marks a dynamic one.
    pub shape: Vec<i64>,
    /// The model's names for its dimensions ("" where it names none):
    /// dynamic dimensions with one name must agree across a request's inputs.
    pub dim_names: Vec<String>,
    /// The largest size each dimension may take: a fixed one's size, the
    /// batch limit, or a dynamic one's limit (from `config.toml`, the
    /// model, or `max_dynamic_dim`; SECURITY.md I8).
    pub max_dims: Vec<usize>,
    /// Values an integer input may take, inclusive (from `config.toml` or
    /// the model, e.g. a vocabulary's size for token ids).
    pub range: Option<(i64, i64)>,
}

impl TensorSpec {
    /// A spec with no names, no range, and each dynamic dimension limited
    /// to `max_dim`.
    pub fn new(name: &str, dtype: DType, shape: Vec<i64>, max_dim: usize) -> TensorSpec {
        TensorSpec {
            name: name.to_string(),
            dtype,
            dim_names: vec![String::new(); shape.len()],
            max_dims: shape
                .iter()
                .map(|&d| usize::try_from(d).unwrap_or(max_dim))
                .collect(),
            shape,
            range: None,
        }
    }

    /// How dimension `i` is named in messages: `1 ("sequence")` or `1`.
    fn dim_label(&self, i: usize) -> String {
        match self.dim_names.get(i).filter(|n| !n.is_empty()) {
            Some(n) => format!("{i} ({n:?})"),
            None => i.to_string(),
        }
    }
}

/// The number of elements of `shape`, refusing overflow and anything over `max`.
pub fn element_count(shape: &[usize], max: usize) -> Result<usize, Error> {
    let mut n: usize = 1;
    for &d in shape {
        n = n.checked_mul(d).filter(|&n| n <= max).ok_or_else(|| {
            Error::BadInput(format!("shape {shape:?} has more than {max} elements"))
        })?;
    }
    Ok(n)
}

/// Checks a request's declared dtype and shape against the model's input,
/// before any data is decoded (SECURITY.md I2). `batched` means the first
/// dimension is the batch axis and may be 1..=`max_batch`.
pub fn check_input(
    spec: &TensorSpec,
    dtype: DType,
    shape: &[usize],
    max_batch: usize,
    max_bytes: usize,
) -> Result<usize, Error> {
    let name = &spec.name;
    if dtype != spec.dtype {
        return Err(Error::BadInput(format!(
            "input {name:?}: datatype {} does not match the model's {}",
            dtype.name(),
            spec.dtype.name()
        )));
    }
    if shape.len() > MAX_RANK || shape.len() != spec.shape.len() {
        return Err(Error::BadInput(format!(
            "input {name:?}: shape {shape:?} does not match the model's {:?}",
            spec.shape
        )));
    }
    for (i, (&got, &want)) in shape.iter().zip(&spec.shape).enumerate() {
        if want >= 0 && got as i64 != want {
            return Err(Error::BadInput(format!(
                "input {name:?}: shape {shape:?} does not match the model's {:?} (dimension {i})",
                spec.shape
            )));
        }
    }
    if max_batch > 0 {
        match shape.first() {
            Some(&b) if b >= 1 && b <= max_batch => {}
            _ => {
                return Err(Error::BadInput(format!(
                    "input {name:?}: batch dimension of {shape:?} must be between 1 and {max_batch}"
                )))
            }
        }
    }
    for (i, (&got, &max)) in shape.iter().zip(&spec.max_dims).enumerate() {
        if got > max {
            return Err(Error::BadInput(format!(
                "input {name:?}: dimension {} is {got}, over its limit {max}",
                spec.dim_label(i)
            )));
        }
    }
    element_count(shape, max_bytes / dtype.size())
}

/// Checks what no single input shows: dynamic dimensions the model names
/// alike have one size across the request, and integer values lie in
/// their input's range. `inputs` are in `specs` order.
pub fn check_request(specs: &[TensorSpec], inputs: &[Tensor]) -> Result<(), Error> {
    let mut sizes: Vec<(&str, usize, &TensorSpec, usize)> = Vec::new();
    for (spec, t) in specs.iter().zip(inputs) {
        for (i, (dim, &got)) in spec.dim_names.iter().zip(&t.shape).enumerate() {
            if dim.is_empty() || spec.shape.get(i).is_none_or(|&d| d >= 0) {
                continue;
            }
            match sizes.iter().find(|(n, ..)| n == dim) {
                Some(&(_, size, other, j)) if size != got => {
                    return Err(Error::BadInput(format!(
                        "input {:?} dimension {} is {got}, but input {:?} dimension {} is {size}: the model needs them equal",
                        spec.name,
                        spec.dim_label(i),
                        other.name,
                        other.dim_label(j)
                    )))
                }
                Some(_) => {}
                None => sizes.push((dim, got, spec, i)),
            }
        }
        if let Some((lo, hi)) = spec.range {
            if let Some(v) = t.data.first_outside(lo, hi) {
                return Err(Error::BadInput(format!(
                    "input {:?}: value {v} is outside the model's range [{lo}, {hi}]",
                    spec.name
                )));
            }
        }
    }
    Ok(())
}

/// Concatenates tensors of one dtype and equal trailing dims along axis 0.
pub fn concat(parts: &[&Tensor]) -> Result<Tensor, Error> {
    fn cat<T: Elem>(parts: &[&Tensor]) -> Result<Data, Error> {
        let views: Vec<ArrayViewD<'_, T>> = parts
            .iter()
            .map(|t| {
                let s =
                    T::slice(&t.data).ok_or_else(|| Error::BadInput("mixed datatypes".into()))?;
                ArrayViewD::from_shape(IxDyn(&t.shape), s)
                    .map_err(|e| Error::BadInput(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let joined = ndarray::concatenate(Axis(0), &views)
            .map_err(|e| Error::BadInput(format!("cannot batch: {e}")))?;
        // Standard layout: into_raw_vec_and_offset gives row-major order.
        Ok(T::wrap(joined.into_raw_vec_and_offset().0))
    }
    let first = parts
        .first()
        .ok_or_else(|| Error::BadInput("nothing to batch".into()))?;
    let mut shape = first.shape.clone();
    if let Some(b) = shape.first_mut() {
        *b = parts
            .iter()
            .map(|t| t.shape.first().copied().unwrap_or(0))
            .sum();
    }
    Ok(Tensor {
        name: first.name.clone(),
        data: with_dtype!(first.dtype(), cat(parts))?,
        shape,
    })
}

/// Splits `t` along axis 0 into pieces of `rows[i]` rows each.
pub fn split(t: &Tensor, rows: &[usize]) -> Result<Vec<Tensor>, Error> {
    fn cut<T: Elem>(t: &Tensor, rows: &[usize], per_row: usize) -> Vec<Data> {
        let s = T::slice(&t.data).unwrap_or_default();
        let mut at = 0;
        rows.iter()
            .map(|&r| {
                let end = (at + r * per_row).min(s.len());
                let piece = T::wrap(s[at..end].to_vec());
                at = end;
                piece
            })
            .collect()
    }
    let total: usize = rows.iter().sum();
    if t.shape.first() != Some(&total) {
        return Err(Error::Inference(format!(
            "output {:?} has shape {:?}, not {total} rows: cannot split the batch",
            t.name, t.shape
        )));
    }
    let per_row: usize = t.shape[1..].iter().product();
    let datas = with_dtype!(t.dtype(), cut(t, rows, per_row));
    Ok(datas
        .into_iter()
        .zip(rows)
        .map(|(data, &r)| {
            let mut shape = t.shape.clone();
            shape[0] = r;
            Tensor {
                name: t.name.clone(),
                shape,
                data,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: Vec<f32>) -> Tensor {
        Tensor {
            name: "x".into(),
            shape: shape.to_vec(),
            data: Data::F32(v),
        }
    }

    #[test]
    fn concat_then_split_round_trips() {
        let a = t(&[1, 2], vec![1.0, 2.0]);
        let b = t(&[2, 2], vec![3.0, 4.0, 5.0, 6.0]);
        let c = concat(&[&a, &b]).unwrap();
        assert_eq!(c.shape, vec![3, 2]);
        assert_eq!(c.data, Data::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        let parts = split(&c, &[1, 2]).unwrap();
        assert_eq!(parts, vec![a, b]);
    }

    #[test]
    fn binary_encoding_round_trips_every_dtype() {
        let d = Data::I64(vec![-1, 2, i64::MAX]);
        let mut b = Vec::new();
        d.write_le_bytes(&mut b);
        assert_eq!(b.len(), 24);
        assert_eq!(Data::from_le_bytes(DType::I64, &b), d);
        let d = Data::Bool(vec![true, false]);
        let mut b = Vec::new();
        d.write_le_bytes(&mut b);
        assert_eq!(Data::from_le_bytes(DType::Bool, &b), d);
    }

    #[test]
    fn inputs_are_checked_before_allocation() {
        let spec = TensorSpec::new("input", DType::F32, vec![-1, 4], 8);
        assert_eq!(
            check_input(&spec, DType::F32, &[2, 4], 8, 1 << 20).unwrap(),
            8
        );
        for (dt, shape) in [
            (DType::I64, vec![1, 4]),
            (DType::F32, vec![1, 5]),
            (DType::F32, vec![4]),
            (DType::F32, vec![9, 4]),
            (DType::F32, vec![0, 4]),
        ] {
            assert!(
                check_input(&spec, dt, &shape, 8, 1 << 20).is_err(),
                "{shape:?}"
            );
        }
        let spec = TensorSpec::new("input", DType::F32, vec![-1, -1], usize::MAX);
        assert!(check_input(&spec, DType::F32, &[1, usize::MAX], 0, 1 << 20).is_err());
        assert!(check_input(&spec, DType::F32, &[1, 1 << 19], 0, 1 << 20).is_err());
        let mut spec = TensorSpec::new("ids", DType::I64, vec![-1, -1], 4096);
        spec.max_dims[1] = 512;
        spec.dim_names[1] = "sequence".into();
        assert!(check_input(&spec, DType::I64, &[1, 512], 8, 1 << 20).is_ok());
        let e = check_input(&spec, DType::I64, &[1, 513], 8, 1 << 20).unwrap_err();
        assert!(
            e.to_string()
                .contains("(\"sequence\") is 513, over its limit 512"),
            "{e}"
        );
    }

    #[test]
    fn named_dimensions_agree_and_values_stay_in_range() {
        let mut ids = TensorSpec::new("ids", DType::I64, vec![-1, -1], 512);
        ids.dim_names = vec!["batch".into(), "sequence".into()];
        ids.range = Some((-10, 9));
        let mut mask = TensorSpec::new("mask", DType::I64, vec![-1, -1], 512);
        mask.dim_names = vec!["batch".into(), "sequence".into()];
        let specs = [ids, mask];
        let t = |name: &str, shape: Vec<usize>, v: Vec<i64>| Tensor {
            name: name.into(),
            shape,
            data: Data::I64(v),
        };
        let ok = [
            t("ids", vec![1, 2], vec![9, -10]),
            t("mask", vec![1, 2], vec![1, 1]),
        ];
        assert!(check_request(&specs, &ok).is_ok());
        let longer = [
            t("ids", vec![1, 2], vec![1, 2]),
            t("mask", vec![1, 3], vec![1, 1, 1]),
        ];
        let e = check_request(&specs, &longer).unwrap_err().to_string();
        assert!(e.contains("\"sequence\""), "{e}");
        let big = [
            t("ids", vec![1, 2], vec![1, 10]),
            t("mask", vec![1, 2], vec![1, 1]),
        ];
        let e = check_request(&specs, &big).unwrap_err().to_string();
        assert!(
            e.contains("value 10 is outside the model's range [-10, 9]"),
            "{e}"
        );
        assert_eq!(
            Data::U64(vec![u64::MAX]).first_outside(0, i64::MAX),
            Some(u64::MAX as i128)
        );
        assert_eq!(Data::F32(vec![1e9]).first_outside(0, 1), None);
    }
}
