//! Tensor data as JSON, shared by the two adapters (KServe v2 and MCP tools):
//! flat or nested arrays in, flat arrays out.

use super::tensor::{with_dtype, DType, Data, Elem, MAX_RANK};
use super::Error;
use serde::ser::{Serialize, Serializer};
use serde_json::Value;

/// Element types that read from JSON numbers / booleans.
pub trait JsonElem: Elem {
    /// The element, if `v` is one (integers must be whole and in range).
    fn from_json(v: &Value) -> Option<Self>;
}

macro_rules! int_elems {
    ($($t:ty),*) => {$(
        impl JsonElem for $t {
            fn from_json(v: &Value) -> Option<Self> {
                v.as_i64()
                    .and_then(|x| <$t>::try_from(x).ok())
                    .or_else(|| v.as_u64().and_then(|x| <$t>::try_from(x).ok()))
            }
        }
    )*};
}
int_elems!(u8, u16, u32, u64, i8, i16, i32, i64);

impl JsonElem for f32 {
    fn from_json(v: &Value) -> Option<Self> {
        v.as_f64().map(|x| x as f32)
    }
}

impl JsonElem for f64 {
    fn from_json(v: &Value) -> Option<Self> {
        v.as_f64()
    }
}

impl JsonElem for bool {
    fn from_json(v: &Value) -> Option<Self> {
        v.as_bool()
    }
}

fn walk<T: JsonElem>(v: &Value, depth: usize, out: &mut Vec<T>, cap: usize) -> Result<(), String> {
    match v {
        Value::Array(items) => {
            if depth > MAX_RANK {
                return Err(format!("data is nested deeper than {MAX_RANK} levels"));
            }
            for it in items {
                walk(it, depth + 1, out, cap)?;
            }
            Ok(())
        }
        other => {
            if out.len() == cap {
                return Err(format!("data has more than the shape's {cap} elements"));
            }
            let x = T::from_json(other)
                .ok_or_else(|| format!("element {other} is not a {}", T::DTYPE.name()))?;
            out.push(x);
            Ok(())
        }
    }
}

fn decode<T: JsonElem>(v: &Value, n: usize) -> Result<Data, String> {
    let mut out: Vec<T> = Vec::with_capacity(n);
    walk(v, 0, &mut out, n)?;
    if out.len() != n {
        return Err(format!(
            "data has {} elements; the shape needs {n}",
            out.len()
        ));
    }
    Ok(T::wrap(out))
}

/// Reads `n` elements of `dtype` from a flat or nested JSON array (`n` comes
/// from a shape already checked, so the allocation is bounded).
pub fn decode_data(input: &str, dtype: DType, v: &Value, n: usize) -> Result<Data, Error> {
    with_dtype!(dtype, decode(v, n)).map_err(|e| Error::BadInput(format!("input {input:?}: {e}")))
}

/// Serializes tensor data as a flat JSON array.
#[derive(Debug)]
pub struct FlatData<'a>(pub &'a Data);

impl Serialize for FlatData<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Data::Bool(v) => v.serialize(s),
            Data::U8(v) => v.serialize(s),
            Data::U16(v) => v.serialize(s),
            Data::U32(v) => v.serialize(s),
            Data::U64(v) => v.serialize(s),
            Data::I8(v) => v.serialize(s),
            Data::I16(v) => v.serialize(s),
            Data::I32(v) => v.serialize(s),
            Data::I64(v) => v.serialize(s),
            Data::F32(v) => v.serialize(s),
            Data::F64(v) => v.serialize(s),
        }
    }
}

/// The shape of a nested JSON array (its first element at each level);
/// `decode_data` then checks that every row agrees.
pub fn nested_shape(v: &Value) -> Vec<usize> {
    let mut shape = Vec::new();
    let mut cur = v;
    while let Value::Array(items) = cur {
        shape.push(items.len());
        match items.first() {
            Some(first) if shape.len() <= MAX_RANK => cur = first,
            _ => break,
        }
    }
    shape
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flat_and_nested_arrays_decode() {
        let d = decode_data("x", DType::F32, &json!([[1, 2.5], [3, 4]]), 4).unwrap();
        assert_eq!(d, Data::F32(vec![1.0, 2.5, 3.0, 4.0]));
        let d = decode_data("x", DType::I64, &json!([1, -2]), 2).unwrap();
        assert_eq!(d, Data::I64(vec![1, -2]));
        assert_eq!(nested_shape(&json!([[1, 2, 3], [4, 5, 6]])), vec![2, 3]);
    }

    #[test]
    fn wrong_counts_and_types_are_refused() {
        assert!(decode_data("x", DType::F32, &json!([1, 2, 3]), 2).is_err());
        assert!(decode_data("x", DType::F32, &json!([1]), 2).is_err());
        assert!(decode_data("x", DType::I64, &json!([1.5]), 1).is_err());
        assert!(decode_data("x", DType::U8, &json!([256]), 1).is_err());
        assert!(decode_data("x", DType::Bool, &json!([1]), 1).is_err());
        assert!(decode_data("x", DType::F32, &json!(["a"]), 1).is_err());
    }
}
