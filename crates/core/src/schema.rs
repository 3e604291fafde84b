use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The columns every document dataset has, in order. Stages add columns after them.
pub const DOCUMENTS_COLUMNS: [&str; 4] = ["id", "text", "source", "url"];

/// The document schema: `id` (unique, stable), `text` (valid UTF-8), `source`, `url`.
///
/// `schemas/documents.json` holds the same schema; a test keeps the two equal.
pub fn documents_schema() -> SchemaRef {
    Arc::new(Schema::new(documents_fields()))
}

/// The fields of [`documents_schema`], for a stage's schema that adds its own after them.
pub fn documents_fields() -> Vec<Field> {
    vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("text", DataType::LargeUtf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("url", DataType::Utf8, true),
    ]
}

/// A schema as it is written in manifests and in `schemas/*.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaJson {
    pub fields: Vec<FieldJson>,
}

/// One column: its name, its Arrow type as Arrow prints it (`Utf8`, `LargeUtf8`,
/// `Float32`, `List(UInt32)`…) and whether it may hold nulls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldJson {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

pub fn schema_to_json(schema: &Schema) -> SchemaJson {
    SchemaJson {
        fields: schema
            .fields()
            .iter()
            .map(|f| FieldJson {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
                nullable: f.is_nullable(),
            })
            .collect(),
    }
}

pub fn schema_from_json(json: &SchemaJson) -> Result<SchemaRef> {
    let fields = json
        .fields
        .iter()
        .map(|f| {
            let dt: DataType = f.data_type.parse().map_err(|e| {
                Error::input(format!(
                    "column `{}`: unknown type `{}`: {e}",
                    f.name, f.data_type
                ))
            })?;
            Ok(Field::new(&f.name, dt, f.nullable))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_schema_equals_schemas_file() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/documents.json");
        let text = std::fs::read_to_string(path).expect("schemas/documents.json");
        let json: SchemaJson = serde_json::from_str(&text).expect("valid schema json");
        let from_file = schema_from_json(&json).unwrap();
        assert_eq!(
            from_file,
            documents_schema(),
            "schemas/documents.json differs from the code"
        );
    }

    #[test]
    fn schema_round_trips_through_json() {
        let schema = Schema::new(vec![
            Field::new(
                "a",
                DataType::List(Arc::new(Field::new_list_field(DataType::UInt32, true))),
                true,
            ),
            Field::new("b", DataType::Float32, false),
        ]);
        let back = schema_from_json(&schema_to_json(&schema)).unwrap();
        assert_eq!(back.as_ref(), &schema);
    }
}
