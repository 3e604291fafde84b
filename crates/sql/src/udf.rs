//! Functions primer adds to DataFusion's SQL.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, StringArray, UInt64Array};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;
use xxhash_rust::xxh3::xxh3_64_with_seed;

pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(StableRandom::new()));
    ctx.register_udf(ScalarUDF::from(Xxh3::new()));
}

fn to_array(v: &ColumnarValue, rows: usize) -> DfResult<ArrayRef> {
    v.to_array(rows)
}

fn utf8(a: &ArrayRef) -> DfResult<StringArray> {
    let c = cast(a, &DataType::Utf8)?;
    Ok(c.as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8")
        .clone())
}

/// `stable_random(key, seed)`: a number in [0, 1) that depends only on `key` (any type, as
/// text) and the integer `seed`; `WHERE stable_random(id, 7) < 0.1` keeps a reproducible
/// 10 % sample, `ORDER BY stable_random(id, 7)` is a reproducible shuffle.
#[derive(Debug, PartialEq, Eq, Hash)]
struct StableRandom {
    signature: Signature,
}

impl StableRandom {
    fn new() -> Self {
        StableRandom {
            signature: Signature::one_of(
                vec![TypeSignature::Any(2), TypeSignature::Any(1)],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for StableRandom {
    fn name(&self) -> &str {
        "stable_random"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let keys = utf8(&to_array(&args.args[0], n)?)?;
        let seeds: Option<Int64Array> = match args.args.get(1) {
            None => None,
            Some(v) => {
                let a = cast(&to_array(v, n)?, &DataType::Int64)?;
                Some(
                    a.as_any()
                        .downcast_ref::<Int64Array>()
                        .expect("cast to Int64")
                        .clone(),
                )
            }
        };
        let out: Float64Array = (0..n)
            .map(|i| {
                if keys.is_null(i) {
                    return None;
                }
                let seed = seeds
                    .as_ref()
                    .map_or(0, |s| if s.is_null(i) { 0 } else { s.value(i) });
                let h = xxh3_64_with_seed(keys.value(i).as_bytes(), seed as u64);
                Some((h >> 11) as f64 / (1u64 << 53) as f64)
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `xxh3(text)`: the 64-bit xxh3 hash of a value's text, as UInt64.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Xxh3 {
    signature: Signature,
}

impl Xxh3 {
    fn new() -> Self {
        Xxh3 {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Xxh3 {
    fn name(&self) -> &str {
        "xxh3"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::UInt64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        if args.args.len() != 1 {
            return exec_err!("xxh3 takes one argument");
        }
        if let ColumnarValue::Scalar(ScalarValue::Null) = &args.args[0] {
            return Ok(ColumnarValue::Scalar(ScalarValue::UInt64(None)));
        }
        let keys = utf8(&to_array(&args.args[0], n)?)?;
        let out: UInt64Array = (0..n)
            .map(|i| (!keys.is_null(i)).then(|| xxh3_64_with_seed(keys.value(i).as_bytes(), 0)))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
