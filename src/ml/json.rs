//! Tensor data as JSON, shared by the two adapters (KServe v2 and MCP tools):
//! flat or nested arrays in, flat arrays out.

use super::tensor::{with_dtype, DType, Data, Elem, MAX_RANK};
use super::Error;
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};
use serde_json::Value;
use std::fmt;

/// Element types that read from JSON numbers / booleans.
pub trait JsonElem: Elem {
    /// The element for a JSON integer, if it fits.
    fn from_i64(x: i64) -> Option<Self>;
    /// The element for a JSON integer above `i64::MAX`, if it fits.
    fn from_u64(x: u64) -> Option<Self>;
    /// The element for a JSON number with a fraction or exponent, if this
    /// type takes one.
    fn from_f64(x: f64) -> Option<Self>;
    /// The element for a JSON boolean, if this type takes one.
    fn from_bool(x: bool) -> Option<Self>;
}

macro_rules! int_elems {
    ($($t:ty),*) => {$(
        impl JsonElem for $t {
            fn from_i64(x: i64) -> Option<Self> { <$t>::try_from(x).ok() }
            fn from_u64(x: u64) -> Option<Self> { <$t>::try_from(x).ok() }
            fn from_f64(_: f64) -> Option<Self> { None }
            fn from_bool(_: bool) -> Option<Self> { None }
        }
    )*};
}
int_elems!(u8, u16, u32, u64, i8, i16, i32, i64);

macro_rules! float_elems {
    ($($t:ty),*) => {$(
        impl JsonElem for $t {
            fn from_i64(x: i64) -> Option<Self> { Some(x as $t) }
            fn from_u64(x: u64) -> Option<Self> { Some(x as $t) }
            fn from_f64(x: f64) -> Option<Self> { Some(x as $t) }
            fn from_bool(_: bool) -> Option<Self> { None }
        }
    )*};
}
float_elems!(f32, f64);

impl JsonElem for bool {
    fn from_i64(_: i64) -> Option<Self> {
        None
    }
    fn from_u64(_: u64) -> Option<Self> {
        None
    }
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
    fn from_bool(x: bool) -> Option<Self> {
        Some(x)
    }
}

/// Appends the elements of a flat or nested JSON array to `out`, straight
/// from the parser: no `Value` tree is built, so decoding costs the typed
/// buffer and nothing more (a `Value` per element costs ~20 x its text).
struct Collect<'a, T> {
    out: &'a mut Vec<T>,
    cap: usize,
    depth: usize,
}

impl<'de, T: JsonElem> DeserializeSeed<'de> for Collect<'_, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<T: JsonElem> Collect<'_, T> {
    fn push<E: de::Error>(self, x: Option<T>, shown: &dyn fmt::Display) -> Result<(), E> {
        if self.out.len() == self.cap {
            return Err(E::custom(format!(
                "data has more than the shape's {} elements",
                self.cap
            )));
        }
        let x =
            x.ok_or_else(|| E::custom(format!("element {shown} is not a {}", T::DTYPE.name())))?;
        self.out.push(x);
        Ok(())
    }
}

impl<'de, T: JsonElem> Visitor<'de> for Collect<'_, T> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of {} elements", T::DTYPE.name())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth > MAX_RANK {
            return Err(de::Error::custom(format!(
                "data is nested deeper than {MAX_RANK} levels"
            )));
        }
        let (cap, depth) = (self.cap, self.depth + 1);
        while seq
            .next_element_seed(Collect {
                out: &mut *self.out,
                cap,
                depth,
            })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, x: i64) -> Result<(), E> {
        self.push(T::from_i64(x), &x)
    }
    fn visit_u64<E: de::Error>(self, x: u64) -> Result<(), E> {
        self.push(T::from_u64(x), &x)
    }
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<(), E> {
        self.push(T::from_f64(x), &x)
    }
    fn visit_bool<E: de::Error>(self, x: bool) -> Result<(), E> {
        self.push(T::from_bool(x), &x)
    }
    fn visit_str<E: de::Error>(self, x: &str) -> Result<(), E> {
        self.push(None, &format_args!("{x:?}"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.push(None, &"null")
    }
    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.push(None, &"{...}")
    }
}

/// Where the data of one input comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// The data's JSON text, not parsed yet (a KServe body).
    Raw(&'a str),
    /// An already parsed value (an MCP tool call's arguments).
    Value(&'a Value),
}

fn decode<T: JsonElem>(src: Source<'_>, n: usize) -> Result<Data, String> {
    // `n` comes from a shape already checked against the byte cap.
    let mut out: Vec<T> = Vec::with_capacity(n);
    let seed = Collect {
        out: &mut out,
        cap: n,
        depth: 0,
    };
    match src {
        Source::Raw(text) => {
            let mut de = serde_json::Deserializer::from_str(text);
            seed.deserialize(&mut de)
                .and_then(|()| de.end())
                .map_err(|e| strip_position(&e))?;
        }
        Source::Value(v) => seed.deserialize(v).map_err(|e| e.to_string())?,
    }
    if out.len() != n {
        return Err(format!(
            "data has {} elements; the shape needs {n}",
            out.len()
        ));
    }
    Ok(T::wrap(out))
}

/// serde_json's message without "at line 1 column N" (a position inside the
/// data, not the request).
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Reads `n` elements of `dtype` from a flat or nested JSON array (`n` comes
/// from a shape already checked, so the allocation is bounded), straight
/// into a typed buffer.
pub fn decode_data(input: &str, dtype: DType, src: Source<'_>, n: usize) -> Result<Data, Error> {
    with_dtype!(dtype, decode(src, n)).map_err(|e| Error::BadInput(format!("input {input:?}: {e}")))
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

    fn both(dtype: DType, v: Value, n: usize) -> Result<Data, Error> {
        let text = v.to_string();
        let raw = decode_data("x", dtype, Source::Raw(&text), n);
        let parsed = decode_data("x", dtype, Source::Value(&v), n);
        assert_eq!(raw.is_ok(), parsed.is_ok(), "{v}: {raw:?} vs {parsed:?}");
        if let (Ok(a), Ok(b)) = (&raw, &parsed) {
            assert_eq!(a, b);
        }
        raw
    }

    #[test]
    fn flat_and_nested_arrays_decode() {
        let d = both(DType::F32, json!([[1, 2.5], [3, 4]]), 4).unwrap();
        assert_eq!(d, Data::F32(vec![1.0, 2.5, 3.0, 4.0]));
        let d = both(DType::I64, json!([1, -2]), 2).unwrap();
        assert_eq!(d, Data::I64(vec![1, -2]));
        let d = both(DType::U64, json!([u64::MAX]), 1).unwrap();
        assert_eq!(d, Data::U64(vec![u64::MAX]));
        let d = both(DType::Bool, json!([true, [false]]), 2).unwrap();
        assert_eq!(d, Data::Bool(vec![true, false]));
        assert_eq!(nested_shape(&json!([[1, 2, 3], [4, 5, 6]])), vec![2, 3]);
    }

    #[test]
    fn wrong_counts_and_types_are_refused() {
        assert!(both(DType::F32, json!([1, 2, 3]), 2).is_err());
        assert!(both(DType::F32, json!([1]), 2).is_err());
        assert!(both(DType::I64, json!([1.5]), 1).is_err());
        assert!(both(DType::U8, json!([256]), 1).is_err());
        assert!(both(DType::I8, json!([-129]), 1).is_err());
        assert!(both(DType::Bool, json!([1]), 1).is_err());
        assert!(both(DType::F32, json!(["a"]), 1).is_err());
        assert!(both(DType::F32, json!([null]), 1).is_err());
        assert!(both(DType::F32, json!([{"a": 1}]), 1).is_err());
        assert!(
            both(DType::F32, json!(1), 1).is_ok(),
            "a scalar is one element"
        );
        let deep = json!([[[[[[[[[[1]]]]]]]]]]);
        assert!(both(DType::F32, deep, 1).is_err(), "deeper than MAX_RANK");
    }

    #[test]
    fn raw_text_must_be_one_json_value() {
        let e = decode_data("x", DType::F32, Source::Raw("[1, 2] 3"), 2);
        assert!(e.is_err(), "{e:?}");
        let e = decode_data("x", DType::F32, Source::Raw("[1, 2"), 2);
        assert!(e.is_err(), "{e:?}");
    }
}
