//! Saving and loading a model's variables to a safetensors file.
//!
//! Format: a standard [safetensors](https://huggingface.co/docs/safetensors) file with one
//! tensor per variable, named by its path (`rnn.Wh`, `out.b`, `state` ...), little-endian,
//! dtypes `F64`/`F32`/`I32`/`BOOL`. The header metadata holds
//! * `format` = `brainlift`;
//! * `brainlift.data_len`: the number of tensor bytes;
//! * `brainlift.checksum`: FNV-1a 64-bit (hex) over every `(name, dtype, shape, bytes)` in name
//!   order.
//!
//! Loading checks that the file length is exactly `8 + header + data_len` (a truncated or
//! padded file is rejected before parsing), then the checksum, then that every variable of the
//! model is present with its dtype and shape (states may change their batch size). Variables
//! in the file that the model does not have are an error too, naming them.

use crate::vars::{VarOwner, named_vars};
use crate::{Array, Error, Result};
use brainlift_ir::{DType, TensorType};
use brainlift_runtime::TensorData;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

const C: &str = "params_io";

fn bytes_of(a: &Array) -> (Dtype, Vec<u8>) {
    match a.data() {
        TensorData::F64(v) => (Dtype::F64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::I32(v) => (Dtype::I32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::Bool(v) => (Dtype::BOOL, v.clone()),
    }
}

fn fnv1a(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
}

fn checksum<'a>(items: impl Iterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, dt, shape, data) in items {
        fnv1a(&mut h, name.as_bytes());
        fnv1a(&mut h, format!("{dt:?}{shape:?}").as_bytes());
        fnv1a(&mut h, data);
    }
    format!("{h:016x}")
}

/// Serialises every variable of `owner` (by path) to safetensors bytes (see the module doc).
pub fn params_to_bytes(owner: &dyn VarOwner) -> Result<Vec<u8>> {
    let mut items: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = named_vars(owner)
        .into_iter()
        .map(|(p, v)| {
            let (dt, b) = bytes_of(v.value());
            (p, dt, v.ty().dims().to_vec(), b)
        })
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    for w in items.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(Error::invalid(
                C,
                format!("two variables share the path '{}'", w[0].0),
            ));
        }
    }
    let data_len: usize = items.iter().map(|i| i.3.len()).sum();
    let sum = checksum(
        items
            .iter()
            .map(|(n, d, s, b)| (n.as_str(), *d, s.as_slice(), b.as_slice())),
    );
    let meta = HashMap::from([
        ("format".to_string(), "brainlift".to_string()),
        ("brainlift.data_len".to_string(), data_len.to_string()),
        ("brainlift.checksum".to_string(), sum),
    ]);
    let views = items
        .iter()
        .map(|(n, d, s, b)| {
            Ok((
                n.clone(),
                TensorView::new(*d, s.clone(), b).map_err(|e| Error::invalid(C, e.to_string()))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::invalid(C, format!("serialising: {e}")))
}

/// Writes every variable of `owner` to `path` (safetensors, see the module doc).
pub fn save_params(owner: &dyn VarOwner, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = params_to_bytes(owner)?;
    std::fs::write(path, bytes)
        .map_err(|e| Error::invalid(C, format!("{}: cannot write: {e}", path.display())))
}

/// Reads the variables of `owner` from `path` (see the module doc for the checks).
pub fn load_params(owner: &mut dyn VarOwner, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = std::fs::read(path)
        .map_err(|e| Error::invalid(C, format!("{}: cannot read: {e}", path.display())))?;
    params_from_bytes(owner, &bytes).map_err(|e| match e {
        Error::Invalid { component, msg } => Error::Invalid {
            component,
            msg: format!("{}: {msg}", path.display()),
        },
        other => other,
    })
}

fn dtype_of(d: Dtype) -> Option<DType> {
    match d {
        Dtype::F64 => Some(DType::F64),
        Dtype::F32 => Some(DType::F32),
        Dtype::I32 => Some(DType::I32),
        Dtype::BOOL => Some(DType::Bool),
        _ => None,
    }
}

fn array_of(dt: DType, shape: &[usize], b: &[u8]) -> Result<Array> {
    let ty = TensorType::new(dt, shape);
    let data = match dt {
        DType::F64 => TensorData::F64(
            b.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        ),
        DType::F32 => TensorData::F32(
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect(),
        ),
        DType::I32 => TensorData::I32(
            b.chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect(),
        ),
        DType::Bool => TensorData::Bool(b.to_vec()),
    };
    Ok(Array::new(ty, data)?)
}

/// Loads the variables of `owner` from safetensors bytes (see the module doc).
pub fn params_from_bytes(owner: &mut dyn VarOwner, bytes: &[u8]) -> Result<()> {
    if bytes.len() < 8 {
        return Err(Error::invalid(
            C,
            format!(
                "file is truncated: {} bytes, a safetensors file has at least 8",
                bytes.len()
            ),
        ));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header_end = n
        .checked_add(8)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            Error::invalid(
                C,
                format!(
                    "file is truncated: the header needs {n} bytes, the file has {}",
                    bytes.len()
                ),
            )
        })?;
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::invalid(C, format!("file is truncated or corrupt: {e}")))?;
    let info = meta.metadata().clone().unwrap_or_default();
    let want_len: usize = info
        .get("brainlift.data_len")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            Error::invalid(C, "not a brainlift parameter file (no brainlift.data_len)")
        })?;
    // `want_len` comes from the file: a corrupt value may be near `usize::MAX`.
    if header_end.checked_add(want_len) != Some(bytes.len()) {
        return Err(Error::invalid(
            C,
            format!(
                "file length {} does not match the recorded size (header {} + data {}): the file is truncated or corrupt",
                bytes.len(),
                header_end,
                want_len
            ),
        ));
    }
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::invalid(C, format!("corrupt file: {e}")))?;
    let mut tensors = st.tensors();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let sum = checksum(
        tensors
            .iter()
            .map(|(n, v)| (n.as_str(), v.dtype(), v.shape(), v.data())),
    );
    if info.get("brainlift.checksum") != Some(&sum) {
        return Err(Error::invalid(
            C,
            format!(
                "checksum mismatch (file says {:?}, data gives {sum}): the file is corrupt",
                info.get("brainlift.checksum")
            ),
        ));
    }
    let mut arrays: HashMap<String, Array> = HashMap::new();
    for (name, v) in &tensors {
        let dt = dtype_of(v.dtype()).ok_or_else(|| {
            Error::invalid(
                C,
                format!("tensor '{name}' has unsupported dtype {:?}", v.dtype()),
            )
        })?;
        arrays.insert(name.clone(), array_of(dt, v.shape(), v.data())?);
    }
    // Validate everything first so a bad file leaves the model untouched.
    let mut err: Option<Error> = None;
    let mut seen = vec![];
    owner.visit_vars(&mut |p, var| {
        if err.is_some() {
            return;
        }
        match arrays.get(p) {
            None => {
                err = Some(Error::invalid(
                    C,
                    format!("variable '{p}' ({}) is missing from the file", var.ty()),
                ))
            }
            Some(a) => {
                let ok = a.dtype() == var.ty().dtype
                    && (a.ty() == var.ty()
                        || (var.is_state() && a.shape().len() == var.ty().rank()));
                if !ok {
                    err = Some(Error::invalid(
                        C,
                        format!(
                            "variable '{p}' is {} in the model but {} in the file",
                            var.ty(),
                            a.ty()
                        ),
                    ));
                }
                seen.push(p.to_string());
            }
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    let extra: Vec<&String> = arrays.keys().filter(|k| !seen.contains(k)).collect();
    if !extra.is_empty() {
        return Err(Error::invalid(
            C,
            format!("the file has variables the model does not: {extra:?}"),
        ));
    }
    let mut err: Option<Error> = None;
    owner.visit_vars_mut(&mut |p, var| {
        if let Some(a) = arrays.remove(p)
            && let Err(e) = var.set_value(a)
        {
            err.get_or_insert(e);
        }
    });
    err.map_or(Ok(()), Err)
}
