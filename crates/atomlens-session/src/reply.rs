//! What an engine operation returns, in plain Rust: named arrays (they cross to JS as typed
//! arrays, transferred, not copied) and named JSON values. `bind` turns a [`Reply`] into one JS
//! object; native tests read it directly.
use serde::Serialize;

/// A typed array.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    /// `Float64Array`.
    F64(Vec<f64>),
    /// `Float32Array`.
    F32(Vec<f32>),
    /// `Uint8Array` (RGBA pixels, statuses, file bytes).
    U8(Vec<u8>),
    /// `Uint32Array`.
    U32(Vec<u32>),
}

/// Named arrays and values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    /// Arrays, in insertion order.
    pub arrays: Vec<(&'static str, Array)>,
    /// Everything else.
    pub values: serde_json::Map<String, serde_json::Value>,
}

impl Reply {
    /// An empty reply.
    pub fn new() -> Reply {
        Reply::default()
    }

    /// A reply holding `v`'s fields (an object; anything else under `value`).
    pub fn of<T: Serialize>(v: &T) -> Reply {
        match serde_json::to_value(v) {
            Ok(serde_json::Value::Object(values)) => Reply { arrays: Vec::new(), values },
            Ok(other) => Reply::new().json("value", &other),
            Err(e) => Reply::new().json("error", &e.to_string()),
        }
    }

    /// Add an array.
    pub fn array(mut self, key: &'static str, a: Array) -> Reply {
        self.arrays.push((key, a));
        self
    }

    /// Add `Float64Array` `key`.
    pub fn f64s(self, key: &'static str, v: Vec<f64>) -> Reply {
        self.array(key, Array::F64(v))
    }

    /// Add `Float32Array` `key`.
    pub fn f32s(self, key: &'static str, v: Vec<f32>) -> Reply {
        self.array(key, Array::F32(v))
    }

    /// Add `Uint8Array` `key`.
    pub fn u8s(self, key: &'static str, v: Vec<u8>) -> Reply {
        self.array(key, Array::U8(v))
    }

    /// Add `Uint32Array` `key`.
    pub fn u32s(self, key: &'static str, v: Vec<u32>) -> Reply {
        self.array(key, Array::U32(v))
    }

    /// Add a JSON value.
    pub fn json<T: Serialize + ?Sized>(mut self, key: &str, v: &T) -> Reply {
        self.values.insert(key.into(), serde_json::to_value(v).unwrap_or(serde_json::Value::Null));
        self
    }

    /// Add every field of `v` (an object).
    pub fn merge<T: Serialize>(mut self, v: &T) -> Reply {
        self.values.extend(Reply::of(v).values);
        self
    }

    /// Array `key`, for tests and for chaining operations.
    pub fn get(&self, key: &str) -> Option<&Array> {
        self.arrays.iter().find(|(k, _)| *k == key).map(|(_, a)| a)
    }

    /// Array `key` as f64 values (any type).
    pub fn numbers(&self, key: &str) -> Vec<f64> {
        match self.get(key) {
            Some(Array::F64(v)) => v.clone(),
            Some(Array::F32(v)) => v.iter().map(|&x| x as f64).collect(),
            Some(Array::U8(v)) => v.iter().map(|&x| x as f64).collect(),
            Some(Array::U32(v)) => v.iter().map(|&x| x as f64).collect(),
            None => Vec::new(),
        }
    }
}
