//! What Conduit reads from an ONNX file itself, beyond ONNX Runtime's
//! metadata: the limits a model declares on its inputs (SECURITY.md I8).
//!
//! - an integer input used as `Gather` indices into a table of `V` rows
//!   takes values in `[-V, V-1]` (what ONNX Runtime accepts; a token id
//!   past the vocabulary would fail inside the run);
//! - a model with position embeddings of `P` rows (an initializer named
//!   `*position_embeddings*` `[P, H]` or `*position_ids*` `[1, P]`, as every
//!   BERT-family export has) takes sequences of at most `P`.
//!
//! A minimal protobuf reader walks `ModelProto.graph`: initializer shapes,
//! `Constant` node shapes and node inputs and outputs. Tensor contents are
//! skipped, never copied.

use std::collections::HashMap;

/// The parts of a graph the limits come from.
#[derive(Debug, Default)]
pub struct Graph {
    /// Shapes of initializers and `Constant` outputs, by name.
    pub shapes: HashMap<String, Vec<i64>>,
    /// The nodes, in file order.
    pub nodes: Vec<Node>,
}

/// One node: its operator and the names it reads and writes.
#[derive(Debug, Default)]
pub struct Node {
    /// `op_type`, e.g. `Gather`.
    pub op: String,
    /// Input names (an empty name is an absent optional input).
    pub inputs: Vec<String>,
    /// Output names.
    pub outputs: Vec<String>,
    /// The `axis` attribute (0 when absent, as for `Gather`).
    pub axis: i64,
}

/// What the graph says of one integer input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Declared {
    /// Values the input may take, inclusive.
    pub range: Option<(i64, i64)>,
    /// The longest sequence (dimension 1 of a `[batch, sequence]` input).
    pub max_sequence: Option<u64>,
}

/// Protobuf wire values this reader meets.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Iterates the fields of one message; stops (with `err` set) at malformed bytes.
struct Fields<'a> {
    buf: &'a [u8],
    err: bool,
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

impl<'a> Iterator for Fields<'a> {
    type Item = (u64, Field<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() || self.err {
            return None;
        }
        let r = (|| {
            let key = varint(&mut self.buf)?;
            let field = match key & 7 {
                0 => Field::Varint(varint(&mut self.buf)?),
                1 | 5 => {
                    let n = if key & 7 == 1 { 8 } else { 4 };
                    self.buf = self.buf.get(n..)?;
                    Field::Fixed
                }
                2 => {
                    let n = usize::try_from(varint(&mut self.buf)?).ok()?;
                    let (v, rest) = (self.buf.get(..n)?, self.buf.get(n..)?);
                    self.buf = rest;
                    Field::Bytes(v)
                }
                _ => return None,
            };
            Some((key >> 3, field))
        })();
        if r.is_none() {
            self.err = true;
        }
        r
    }
}

fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, err: false }
}

fn string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A `TensorProto`'s name and dims (fields 8 and 1, packed or not).
fn tensor(buf: &[u8]) -> Result<(String, Vec<i64>), String> {
    let (mut name, mut dims) = (String::new(), Vec::new());
    let mut it = fields(buf);
    for (num, f) in &mut it {
        match (num, f) {
            (1, Field::Varint(d)) => dims.push(d as i64),
            (1, Field::Bytes(mut packed)) => {
                while !packed.is_empty() {
                    dims.push(varint(&mut packed).ok_or("bad packed dims")? as i64);
                }
            }
            (8, Field::Bytes(b)) => name = string(b),
            _ => {}
        }
    }
    if it.err {
        return Err("malformed TensorProto".into());
    }
    Ok((name, dims))
}

/// A `NodeProto`; a `Constant`'s tensor shape goes into `shapes`.
fn node(buf: &[u8], shapes: &mut HashMap<String, Vec<i64>>) -> Result<Node, String> {
    let mut n = Node::default();
    let mut constant = None;
    let mut it = fields(buf);
    for (num, f) in &mut it {
        match (num, f) {
            (1, Field::Bytes(b)) => n.inputs.push(string(b)),
            (2, Field::Bytes(b)) => n.outputs.push(string(b)),
            (4, Field::Bytes(b)) => n.op = string(b),
            // AttributeProto: name (1), an int (3), a tensor (5, `Constant`'s
            // `value`).
            (5, Field::Bytes(attr)) => {
                let mut is_axis = false;
                let mut int = None;
                for (anum, af) in fields(attr) {
                    match (anum, af) {
                        (1, Field::Bytes(name)) => is_axis = name == b"axis",
                        (3, Field::Varint(v)) => int = Some(v as i64),
                        (5, Field::Bytes(t)) => constant = Some(tensor(t)?.1),
                        _ => {}
                    }
                }
                if let (true, Some(axis)) = (is_axis, int) {
                    n.axis = axis;
                }
            }
            _ => {}
        }
    }
    if it.err {
        return Err("malformed NodeProto".into());
    }
    if let (true, Some(dims), Some(out)) = (n.op == "Constant", constant, n.outputs.first()) {
        shapes.insert(out.clone(), dims);
    }
    Ok(n)
}

/// Reads the graph of an ONNX model file's bytes.
pub fn read(model: &[u8]) -> Result<Graph, String> {
    let mut g = Graph::default();
    let mut it = fields(model);
    for (num, f) in &mut it {
        let (7, Field::Bytes(graph)) = (num, f) else {
            continue;
        };
        let mut git = fields(graph);
        for (gnum, gf) in &mut git {
            match (gnum, gf) {
                (1, Field::Bytes(b)) => {
                    let n = node(b, &mut g.shapes)?;
                    g.nodes.push(n);
                }
                (5, Field::Bytes(b)) => {
                    let (name, dims) = tensor(b)?;
                    g.shapes.insert(name, dims);
                }
                _ => {}
            }
        }
        if git.err {
            return Err("malformed GraphProto".into());
        }
    }
    if it.err {
        return Err("malformed ModelProto".into());
    }
    Ok(g)
}

/// Ops whose output has the shape of their (broadcast) inputs.
const SHAPE_PRESERVING: &[&str] = &["Identity", "Cast", "DequantizeLinear"];
const ELEMENTWISE: &[&str] = &["Mul", "Add", "Sub", "Div"];

impl Graph {
    /// The static shape of `name`, followed through casts, dequantization
    /// and elementwise arithmetic to initializers; `None` if unknown.
    fn shape_of(&self, name: &str, depth: usize) -> Option<Vec<i64>> {
        if let Some(s) = self.shapes.get(name) {
            return Some(s.clone());
        }
        if depth > 16 {
            return None;
        }
        let n = self
            .nodes
            .iter()
            .find(|n| n.outputs.iter().any(|o| o == name))?;
        if SHAPE_PRESERVING.contains(&n.op.as_str()) {
            return self.shape_of(n.inputs.first()?, depth + 1);
        }
        if ELEMENTWISE.contains(&n.op.as_str()) {
            let shapes: Vec<Vec<i64>> = n
                .inputs
                .iter()
                .map(|i| self.shape_of(i, depth + 1))
                .collect::<Option<_>>()?;
            return broadcast(&shapes);
        }
        None
    }

    /// The position-embedding length, if the model has one.
    fn max_positions(&self) -> Option<u64> {
        self.shapes
            .iter()
            .filter_map(|(name, dims)| match dims.as_slice() {
                [p, _] if name.contains("position_embeddings") => Some(*p),
                [1, p] if name.contains("position_ids") => Some(*p),
                _ => None,
            })
            .filter_map(|p| u64::try_from(p).ok().filter(|&p| p > 0))
            .min()
    }

    /// What the graph declares of graph input `input` of rank `rank`.
    pub fn declared(&self, input: &str, rank: usize) -> Declared {
        let mut range: Option<(i64, i64)> = None;
        for n in &self.nodes {
            // Only a gather of rows (axis 0) indexes by the table's first dim.
            let indexes = n.inputs.get(1).map(String::as_str) == Some(input);
            if n.op != "Gather" || !indexes || n.axis != 0 {
                continue;
            }
            let rows = n
                .inputs
                .first()
                .and_then(|d| self.shape_of(d, 0))
                .and_then(|s| s.first().copied())
                .filter(|&v| v > 0);
            if let Some(v) = rows {
                let (lo, hi) = range.unwrap_or((i64::MIN, i64::MAX));
                range = Some((lo.max(-v), hi.min(v - 1)));
            }
        }
        Declared {
            range,
            max_sequence: if rank == 2 {
                self.max_positions()
            } else {
                None
            },
        }
    }
}

/// Numpy broadcasting of static shapes; `None` if they do not broadcast.
fn broadcast(shapes: &[Vec<i64>]) -> Option<Vec<i64>> {
    let rank = shapes.iter().map(Vec::len).max()?;
    (0..rank)
        .map(|i| {
            let mut d = 1;
            for s in shapes {
                let Some(k) = (i + s.len()).checked_sub(rank) else {
                    continue;
                };
                let x = *s.get(k)?;
                if x != 1 && d != 1 && x != d {
                    return None;
                }
                if x != 1 {
                    d = x;
                }
            }
            Some(d)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(num: u64, b: &[u8], out: &mut Vec<u8>) {
        put_varint(num << 3 | 2, out);
        put_varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }

    fn init(name: &str, dims: &[u64]) -> Vec<u8> {
        let mut t = Vec::new();
        for &d in dims {
            put_varint(1 << 3, &mut t);
            put_varint(d, &mut t);
        }
        bytes_field(8, name.as_bytes(), &mut t);
        bytes_field(9, &[0; 16], &mut t); // raw_data, skipped
        t
    }

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> Vec<u8> {
        let mut n = Vec::new();
        for i in inputs {
            bytes_field(1, i.as_bytes(), &mut n);
        }
        for o in outputs {
            bytes_field(2, o.as_bytes(), &mut n);
        }
        bytes_field(4, op.as_bytes(), &mut n);
        n
    }

    /// A BERT-like embedding block, with quantized word embeddings.
    fn bert_like() -> Vec<u8> {
        let mut g = Vec::new();
        bytes_field(5, &init("word.weight_q", &[30522, 8]), &mut g);
        bytes_field(5, &init("word.weight_scale", &[30522, 1]), &mut g);
        bytes_field(5, &init("type.weight", &[2, 8]), &mut g);
        bytes_field(5, &init("embeddings.position_ids", &[1, 512]), &mut g);
        bytes_field(1, &node("Cast", &["word.weight_q"], &["wq"]), &mut g);
        bytes_field(
            1,
            &node("Mul", &["wq", "word.weight_scale"], &["word.weight"]),
            &mut g,
        );
        bytes_field(
            1,
            &node("Gather", &["word.weight", "input_ids"], &["e1"]),
            &mut g,
        );
        bytes_field(
            1,
            &node("Gather", &["type.weight", "token_type_ids"], &["e2"]),
            &mut g,
        );
        let mut cols = node("Gather", &["word.weight", "column_ids"], &["e3"]);
        let mut axis = Vec::new();
        bytes_field(1, b"axis", &mut axis);
        put_varint(3 << 3, &mut axis);
        put_varint(1, &mut axis);
        bytes_field(5, &axis, &mut cols);
        bytes_field(1, &cols, &mut g);
        let mut m = Vec::new();
        put_varint(1 << 3, &mut m); // ir_version
        put_varint(8, &mut m);
        bytes_field(7, &g, &mut m);
        m
    }

    #[test]
    fn gather_tables_bound_index_inputs_and_positions_bound_sequences() {
        let g = read(&bert_like()).unwrap();
        let ids = g.declared("input_ids", 2);
        assert_eq!(ids.range, Some((-30522, 30521)));
        assert_eq!(ids.max_sequence, Some(512));
        assert_eq!(g.declared("token_type_ids", 2).range, Some((-2, 1)));
        assert_eq!(g.declared("attention_mask", 2).range, None);
        assert_eq!(g.declared("column_ids", 2).range, None, "axis 1: not rows");
        assert_eq!(g.declared("attention_mask", 3).max_sequence, None);
    }

    #[test]
    fn malformed_bytes_are_an_error_not_a_panic() {
        let good = bert_like();
        for cut in 1..good.len() {
            let _ = read(&good[..cut]);
        }
        assert!(read(&[0x3a, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(read(&[0x0b]).is_err(), "group wire types are refused");
    }

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(
            broadcast(&[vec![30522, 8], vec![30522, 1]]),
            Some(vec![30522, 8])
        );
        assert_eq!(broadcast(&[vec![3, 1], vec![4]]), Some(vec![3, 4]));
        assert_eq!(broadcast(&[vec![3], vec![4]]), None);
    }
}
