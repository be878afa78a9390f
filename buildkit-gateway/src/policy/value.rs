//! Serialises a [`PolicyInput`](super::PolicyInput) straight into regorus's
//! [`Value`], with the same shape `serde_json` gives it.
//!
//! Going through a `serde_json::Value` first and deserialising that into a
//! regorus `Value` cost about as much as the Rego rules of a container
//! decision (`input_json_to_value` in `benches/policy.rs`): two trees are
//! built, and regorus's deserialiser checks its memory limit and interns
//! keys at every node. This serializer builds the one tree regorus needs,
//! sharing what every input repeats: the values of field names and the
//! empty array are made once per thread and then only reference-counted.
//! A unit test checks both paths give equal values for every golden case.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use regorus::Value;
use serde::ser::{self, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// `value` as regorus sees it: structs and maps as objects, sequences as
/// arrays, `None` and unit as `null`, unit variants as their names.
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, Error> {
    value.serialize(Serializer)
}

pub struct Serializer;

type Object = BTreeMap<Value, Value>;

pub struct Seq(Vec<Value>);

/// Entries in the order they come; sorted once at the end (building a
/// `BTreeMap` from a list is cheaper than inserting one by one).
pub struct Map {
    entries: Vec<(Value, Value)>,
    key: Option<Value>,
}

impl Map {
    fn into_value(self) -> Value {
        Value::from(self.entries.into_iter().collect::<Object>())
    }
}

/// A newtype or struct variant: `{ "<variant>": … }`, as serde_json writes it.
pub struct Variant<T> {
    name: &'static str,
    inner: T,
}

/// Hashes the pointer and length of a `&'static str`: two words, so
/// SipHash's strength buys nothing here and costs as much as the
/// allocation it saves.
#[derive(Default)]
struct PointerHasher(u64);

impl Hasher for PointerHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Values every input repeats, made once per thread.
struct Shared {
    /// Field and variant names by pointer and length (they are
    /// `&'static str`, so those name one for good).
    names: HashMap<(usize, usize), Value, BuildHasherDefault<PointerHasher>>,
    empty_array: Value,
}

thread_local! {
    static SHARED: RefCell<Shared> = RefCell::new(Shared {
        names: HashMap::default(),
        empty_array: Value::new_array(),
    });
}

/// `name` as a value.
fn name_value(name: &'static str) -> Value {
    SHARED.with(|shared| {
        shared
            .borrow_mut()
            .names
            .entry((name.as_ptr() as usize, name.len()))
            .or_insert_with(|| Value::from(name))
            .clone()
    })
}

fn array(items: Vec<Value>) -> Value {
    if items.is_empty() {
        SHARED.with(|shared| shared.borrow().empty_array.clone())
    } else {
        Value::from(items)
    }
}

fn tagged(name: &'static str, value: Value) -> Value {
    Value::from(Object::from([(name_value(name), value)]))
}

impl ser::Serializer for Serializer {
    type Ok = Value;
    type Error = Error;
    type SerializeSeq = Seq;
    type SerializeTuple = Seq;
    type SerializeTupleStruct = Seq;
    type SerializeTupleVariant = Variant<Seq>;
    type SerializeMap = Map;
    type SerializeStruct = Map;
    type SerializeStructVariant = Variant<Map>;

    fn serialize_bool(self, v: bool) -> Result<Value, Error> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, Error> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, Error> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, Error> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, Error> {
        Ok(Value::from(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, Error> {
        Ok(Value::from(u64::from(v)))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, Error> {
        Ok(Value::from(u64::from(v)))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, Error> {
        Ok(Value::from(u64::from(v)))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, Error> {
        Ok(Value::from(v))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, Error> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, Error> {
        // As serde_json: a non-finite float has no JSON form.
        Ok(if v.is_finite() {
            Value::from(v)
        } else {
            Value::Null
        })
    }
    fn serialize_char(self, v: char) -> Result<Value, Error> {
        Ok(Value::from(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, Error> {
        Ok(Value::from(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, Error> {
        Ok(Value::from(
            v.iter()
                .map(|b| Value::from(u64::from(*b)))
                .collect::<Vec<_>>(),
        ))
    }
    fn serialize_none(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value, Error> {
        Ok(name_value(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Value, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, Error> {
        Ok(tagged(variant, value.serialize(self)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq, Error> {
        Ok(Seq(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<Seq>, Error> {
        Ok(Variant {
            name: variant,
            inner: self.serialize_seq(Some(len))?,
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Map, Error> {
        Ok(Map {
            entries: Vec::with_capacity(len.unwrap_or(0)),
            key: None,
        })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Map, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<Map>, Error> {
        Ok(Variant {
            name: variant,
            inner: self.serialize_map(Some(len))?,
        })
    }
}

impl ser::SerializeSeq for Seq {
    type Ok = Value;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.0.push(value.serialize(Serializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, Error> {
        Ok(array(self.0))
    }
}

impl ser::SerializeTuple for Seq {
    type Ok = Value;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, Error> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Seq {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, Error> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleVariant for Variant<Seq> {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(&mut self.inner, value)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(tagged(self.name, ser::SerializeSeq::end(self.inner)?))
    }
}

impl ser::SerializeMap for Map {
    type Ok = Value;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        // serde_json writes every key as a string; so does this.
        match key.serialize(Serializer)? {
            key @ Value::String(_) => self.key = Some(key),
            Value::Number(n) => self.key = Some(Value::from(n.format_decimal())),
            Value::Bool(b) => self.key = Some(Value::from(b.to_string())),
            other => return Err(Error(format!("map key {other} is not a string"))),
        }
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error("map value without a key".into()))?;
        self.entries.push((key, value.serialize(Serializer)?));
        Ok(())
    }
    fn end(self) -> Result<Value, Error> {
        Ok(self.into_value())
    }
}

impl ser::SerializeStruct for Map {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.entries
            .push((name_value(key), value.serialize(Serializer)?));
        Ok(())
    }
    fn end(self) -> Result<Value, Error> {
        Ok(self.into_value())
    }
}

impl ser::SerializeStructVariant for Variant<Map> {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        ser::SerializeStruct::serialize_field(&mut self.inner, key, value)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(tagged(self.name, ser::SerializeStruct::end(self.inner)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_json::json;

    fn via_json(v: &serde_json::Value) -> Value {
        serde_json::from_value(v.clone()).unwrap()
    }

    #[test]
    fn values_match_the_json_path() {
        #[derive(Serialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        enum Tagged {
            Unit,
            Fields { a: u32 },
        }
        #[derive(Serialize)]
        enum External {
            Newtype(i32),
            Tuple(u8, bool),
            Struct { s: String },
            Unit,
        }
        let doc = json!({
            "null": null, "t": true, "u": u64::MAX, "i": -5, "f": 1.5, "s": "x",
            "a": [1, "two", [3], {"four": 4}], "o": {"k": {"n": []}}, "e": {}
        });
        assert_eq!(to_value(&doc).unwrap(), via_json(&doc));
        for (given, json) in [
            (to_value(&Tagged::Unit), serde_json::to_value(Tagged::Unit)),
            (
                to_value(&Tagged::Fields { a: 7 }),
                serde_json::to_value(Tagged::Fields { a: 7 }),
            ),
            (
                to_value(&External::Newtype(-1)),
                serde_json::to_value(External::Newtype(-1)),
            ),
            (
                to_value(&External::Tuple(1, true)),
                serde_json::to_value(External::Tuple(1, true)),
            ),
            (
                to_value(&External::Struct { s: "v".into() }),
                serde_json::to_value(External::Struct { s: "v".into() }),
            ),
            (
                to_value(&External::Unit),
                serde_json::to_value(External::Unit),
            ),
            (to_value(&Some(3u16)), serde_json::to_value(Some(3u16))),
            (to_value(&None::<u16>), serde_json::to_value(None::<u16>)),
            (
                to_value(&BTreeMap::from([(1, "a")])),
                serde_json::to_value(BTreeMap::from([(1, "a")])),
            ),
        ] {
            let json = json.unwrap();
            assert_eq!(given.unwrap(), via_json(&json), "{json}");
        }
        assert_eq!(to_value(&f64::NAN).unwrap(), Value::Null);
    }
}
