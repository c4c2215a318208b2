//! Arrow schemas built from the JSON files in `schemas/`.
//!
//! The JSON is embedded at compile time, so a binary always carries the
//! schema it writes; `schemas/` stays the one place to change a column.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::Deserialize;

/// Arrow/Parquet metadata key holding the table name.
pub const META_TABLE: &str = "dak.schema";
/// Arrow/Parquet metadata key holding the schema version.
pub const META_VERSION: &str = "dak.schema_version";

/// The tables dak-pose writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    SourceFrames,
    Cameras,
    SyntheticClips,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaDoc {
    pub name: String,
    pub version: u32,
    pub description: String,
    pub metadata: BTreeMap<String, String>,
    pub columns: Vec<ColumnDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnDoc {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub nullable: bool,
    pub description: String,
}

impl Table {
    pub const ALL: [Table; 3] = [Table::SourceFrames, Table::Cameras, Table::SyntheticClips];

    fn json(self) -> &'static str {
        match self {
            Table::SourceFrames => include_str!("../../../schemas/source_frames.v1.json"),
            Table::Cameras => include_str!("../../../schemas/cameras.v1.json"),
            Table::SyntheticClips => include_str!("../../../schemas/synthetic_clips.v1.json"),
        }
    }

    /// File in `schemas/` this table is defined by.
    pub fn schema_file(self) -> &'static str {
        match self {
            Table::SourceFrames => "source_frames.v1.json",
            Table::Cameras => "cameras.v1.json",
            Table::SyntheticClips => "synthetic_clips.v1.json",
        }
    }

    pub fn doc(self) -> &'static SchemaDoc {
        static DOCS: OnceLock<HashMap<Table, SchemaDoc>> = OnceLock::new();
        let docs = DOCS.get_or_init(|| {
            Table::ALL
                .into_iter()
                .map(|t| {
                    let doc: SchemaDoc = serde_json::from_str(t.json())
                        .unwrap_or_else(|e| panic!("schemas/{} is malformed: {e}", t.schema_file()));
                    (t, doc)
                })
                .collect()
        });
        &docs[&self]
    }

    pub fn name(self) -> &'static str {
        &self.doc().name
    }

    pub fn version(self) -> u32 {
        self.doc().version
    }

    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The Arrow schema, with table name, version and units in its metadata.
    pub fn arrow_schema(self) -> SchemaRef {
        static SCHEMAS: OnceLock<HashMap<Table, SchemaRef>> = OnceLock::new();
        SCHEMAS.get_or_init(|| Table::ALL.into_iter().map(|t| (t, Arc::new(build_schema(t.doc())))).collect())[&self]
            .clone()
    }
}

fn build_schema(doc: &SchemaDoc) -> Schema {
    let fields: Vec<Field> = doc
        .columns
        .iter()
        .map(|c| {
            let ty = parse_type(&c.ty)
                .unwrap_or_else(|| panic!("schema {}: column {} has unknown type {}", doc.name, c.name, c.ty));
            Field::new(&c.name, ty, c.nullable)
        })
        .collect();
    let mut metadata: HashMap<String, String> = doc.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    metadata.insert(META_TABLE.into(), doc.name.clone());
    metadata.insert(META_VERSION.into(), doc.version.to_string());
    Schema::new_with_metadata(fields, metadata)
}

/// `utf8`, `bool`, `u32`, `u64`, `f32`, `f64`, `f32[N]` (fixed-size list),
/// `f32[]` (variable list). List items are never null.
pub fn parse_type(ty: &str) -> Option<DataType> {
    if let Some(inner) = ty.strip_suffix(']') {
        let (scalar, len) = inner.split_once('[')?;
        let item = Arc::new(Field::new("item", parse_scalar(scalar)?, false));
        return if len.is_empty() {
            Some(DataType::List(item))
        } else {
            Some(DataType::FixedSizeList(item, len.parse().ok()?))
        };
    }
    parse_scalar(ty)
}

fn parse_scalar(ty: &str) -> Option<DataType> {
    Some(match ty {
        "utf8" => DataType::Utf8,
        "bool" => DataType::Boolean,
        "u32" => DataType::UInt32,
        "u64" => DataType::UInt64,
        "f32" => DataType::Float32,
        "f64" => DataType::Float64,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_parses_with_name_and_version_metadata() {
        for t in Table::ALL {
            let s = t.arrow_schema();
            assert!(!s.fields().is_empty());
            assert_eq!(s.metadata()[META_TABLE], t.name());
            assert_eq!(s.metadata()[META_VERSION], t.version().to_string());
            assert_eq!(Table::from_name(t.name()), Some(t));
            assert!(t.schema_file().starts_with(t.name()));
        }
    }

    #[test]
    fn joint_columns_have_skeleton_widths() {
        let s = Table::SourceFrames.arrow_schema();
        let width = |name: &str| match s.field_with_name(name).unwrap().data_type() {
            DataType::FixedSizeList(_, n) => *n as usize,
            other => panic!("{name}: {other}"),
        };
        assert_eq!(width("joints_3d_camera_mm"), dak_core::NUM_JOINTS * 3);
        assert_eq!(width("joints_2d_px"), dak_core::NUM_JOINTS * 2);
        assert_eq!(width("detected_2d_confidence"), dak_core::NUM_JOINTS);
    }

    #[test]
    fn type_grammar() {
        assert_eq!(parse_type("u32"), Some(DataType::UInt32));
        assert!(matches!(parse_type("f64[3]"), Some(DataType::FixedSizeList(_, 3))));
        assert!(matches!(parse_type("f32[]"), Some(DataType::List(_))));
        assert_eq!(parse_type("f16"), None);
        assert_eq!(parse_type("f32[x]"), None);
    }
}
