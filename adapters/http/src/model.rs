//! Wire types of PROTOCOL.md §1–2 and their conversions from port records.

use std::collections::BTreeMap;

use poem_openapi::{Enum, Object, Union};
use serde_json::Value;
use tooltool_domain::{DeclaredFile, Digest, PatchOp, Visibility};
use tooltool_ports::{BatchRecord, BatchRequest, FileRecord};

use crate::payload::FromJsonBody;
use crate::timestamp::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum VisibilityName {
    Public,
    Internal,
}

impl From<Visibility> for VisibilityName {
    fn from(v: Visibility) -> Self {
        match v {
            Visibility::Public => Self::Public,
            Visibility::Internal => Self::Internal,
        }
    }
}

/// The only digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum Algorithm {
    Sha512,
}

/// A file: content identified by its SHA-512 digest.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct File {
    pub algorithm: Algorithm,
    /// 128 lower-case hex digits.
    pub digest: String,
    /// Bytes.
    pub size: u64,
    pub visibility: VisibilityName,
    /// Whether some region holds a verified copy (only then can it be downloaded).
    pub has_instances: bool,
}

/// A file with the regions holding a verified copy.
#[derive(Debug, Clone, Object)]
pub struct FileWithInstances {
    pub algorithm: Algorithm,
    pub digest: String,
    pub size: u64,
    pub visibility: VisibilityName,
    pub has_instances: bool,
    /// Region names, sorted.
    pub instances: Vec<String>,
}

/// A file of a newly created batch, with its upload URL when it needs one.
#[derive(Debug, Clone, Object)]
pub struct BatchFile {
    pub algorithm: Algorithm,
    pub digest: String,
    pub size: u64,
    pub visibility: VisibilityName,
    pub has_instances: bool,
    /// Signed URL to `PUT` the content to (with `Content-Type:
    /// application/octet-stream`, no credentials); absent when the server
    /// already has the content.
    #[oai(skip_serializing_if_is_none)]
    pub put_url: Option<String>,
}

/// An upload batch: who uploaded which files under which names, and why.
#[derive(Debug, Clone, Object)]
pub struct Batch {
    pub id: i64,
    /// ISO-8601 UTC, e.g. `2026-11-25T14:33:16.843608Z`.
    pub uploaded: Timestamp,
    /// The principal that uploaded (Taskcluster clientId or JWT `sub`).
    pub author: String,
    pub message: String,
    /// Filename → file.
    pub files: BTreeMap<String, File>,
}

/// A newly created batch.
#[derive(Debug, Clone, Object)]
pub struct CreatedBatch {
    pub id: i64,
    pub uploaded: Timestamp,
    pub author: String,
    pub message: String,
    pub files: BTreeMap<String, BatchFile>,
}

#[derive(Debug, Clone, Object)]
pub struct CreatedBatchResult {
    pub result: CreatedBatch,
}

#[derive(Debug, Clone, Object)]
pub struct BatchList {
    pub result: Vec<Batch>,
}

#[derive(Debug, Clone, Object)]
pub struct FileList {
    pub result: Vec<File>,
}

/// The empty object answered by `upload/complete` when done.
#[derive(Debug, Clone, Object)]
pub struct Empty {}

impl From<&FileRecord> for File {
    fn from(f: &FileRecord) -> Self {
        Self {
            algorithm: Algorithm::Sha512,
            digest: f.digest.to_string(),
            size: f.size,
            visibility: f.visibility.into(),
            has_instances: f.has_instances(),
        }
    }
}

impl From<&FileRecord> for FileWithInstances {
    fn from(f: &FileRecord) -> Self {
        Self {
            algorithm: Algorithm::Sha512,
            digest: f.digest.to_string(),
            size: f.size,
            visibility: f.visibility.into(),
            has_instances: f.has_instances(),
            instances: f.instances.iter().map(ToString::to_string).collect(),
        }
    }
}

impl From<&BatchRecord> for Batch {
    fn from(b: &BatchRecord) -> Self {
        Self {
            id: b.id,
            uploaded: b.uploaded.into(),
            author: b.author.clone(),
            message: b.message.clone(),
            files: b.files.iter().map(|(n, f)| (n.clone(), f.into())).collect(),
        }
    }
}

impl CreatedBatch {
    pub fn new(b: &BatchRecord, put_urls: &BTreeMap<Digest, String>) -> Self {
        Self {
            id: b.id,
            uploaded: b.uploaded.into(),
            author: b.author.clone(),
            message: b.message.clone(),
            files: b
                .files
                .iter()
                .map(|(name, f)| {
                    (
                        name.clone(),
                        BatchFile {
                            algorithm: Algorithm::Sha512,
                            digest: f.digest.to_string(),
                            size: f.size,
                            visibility: f.visibility.into(),
                            has_instances: f.has_instances(),
                            put_url: put_urls.get(&f.digest).cloned(),
                        },
                    )
                })
                .collect(),
        }
    }
}

impl poem_openapi::types::Example for File {
    fn example() -> Self {
        Self {
            algorithm: Algorithm::Sha512,
            digest: EXAMPLE_DIGEST.into(),
            size: 104_857_600,
            visibility: VisibilityName::Public,
            has_instances: true,
        }
    }
}

// ---- request bodies -------------------------------------------------------

/// A file declared in an upload batch.
#[derive(Debug, Clone, Object)]
pub struct DeclaredFileDoc {
    /// Bytes; at most the server's `MAX_FILE_SIZE`.
    pub size: u64,
    /// SHA-512 of the content, 128 lower-case hex digits.
    #[oai(validator(pattern = "^[0-9a-f]{128}$"))]
    pub digest: String,
    pub algorithm: Algorithm,
    pub visibility: VisibilityName,
}

/// `POST /upload` body. `author` must not be given: it is the caller.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct UploadRequestDoc {
    /// Why these files are uploaded: 1 to 4096 bytes of UTF-8, no control
    /// characters but tab and line breaks.
    #[oai(validator(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    ))]
    pub message: String,
    /// Filename (1 to 255 bytes of UTF-8, no `/`, `\` or control
    /// characters, not `.` or `..`) → declaration; 1 to 4096 files.
    #[oai(validator(min_properties = 1, max_properties = 4096))]
    pub files: BTreeMap<String, DeclaredFileDoc>,
}

const EXAMPLE_DIGEST: &str = "f93a685c8a10abbd349cbef5306441ba235c4cbfba1cc000299e11b58f258e9953cbe23463515407925eeca94c3f5d8e5f637c95be387e620845efa43cdcb0c0";

impl poem_openapi::types::Example for UploadRequestDoc {
    fn example() -> Self {
        Self {
            message: "Bug 1234567 - update the linux64 clang toolchain".into(),
            files: BTreeMap::from([(
                "clang.tar.zst".to_owned(),
                DeclaredFileDoc {
                    size: 104_857_600,
                    digest: EXAMPLE_DIGEST.into(),
                    algorithm: Algorithm::Sha512,
                    visibility: VisibilityName::Public,
                },
            )]),
        }
    }
}

/// `{"op": "set_visibility", "visibility": "public|internal"}`
#[derive(Debug, Clone, Object)]
pub struct SetVisibilityOp {
    pub visibility: VisibilityName,
}

/// `{"op": "delete_instances"}`: delete every stored copy (the file and its history stay).
#[derive(Debug, Clone, Object)]
pub struct DeleteInstancesOp {}

/// One management operation.
// `oneOf`: exactly one shape applies (generators make it an enum; with
// `anyOf` they make a struct of optional variants).
#[derive(Debug, Clone, Union)]
#[oai(discriminator_name = "op", one_of)]
pub enum PatchOpDoc {
    #[oai(mapping = "set_visibility")]
    SetVisibility(SetVisibilityOp),
    #[oai(mapping = "delete_instances")]
    DeleteInstances(DeleteInstancesOp),
}

fn required<'v>(
    obj: &'v serde_json::Map<String, Value>,
    member: &str,
    context: &str,
) -> Result<&'v Value, String> {
    obj.get(member)
        .ok_or_else(|| format!("'{member}' is a required property{context}"))
}

fn string<'v>(value: &'v Value, member: &str, context: &str) -> Result<&'v str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("'{member}'{context} must be a string"))
}

fn parse_visibility(value: &Value, context: &str) -> Result<Visibility, String> {
    Visibility::parse(string(value, "visibility", context)?).map_err(|e| e.to_string())
}

/// A parsed `POST /upload` body.
#[derive(Debug)]
pub struct UploadBody(pub BatchRequest);

impl FromJsonBody for UploadBody {
    type Doc = UploadRequestDoc;

    fn from_json(value: Value) -> Result<Self, String> {
        let obj = value
            .as_object()
            .ok_or("the request body must be a JSON object with 'message' and 'files'")?;
        let message = string(required(obj, "message", "")?, "message", "")?.to_owned();
        let files = required(obj, "files", "")?
            .as_object()
            .ok_or("'files' must be an object mapping filenames to file declarations")?;
        let mut declared = Vec::with_capacity(files.len());
        for (filename, file) in files {
            let ctx = format!(" of file {filename:?}");
            let file = file
                .as_object()
                .ok_or_else(|| format!("the declaration{ctx} must be an object"))?;
            let size = required(file, "size", &ctx)?;
            let size = size
                .as_u64()
                .ok_or_else(|| format!("'size'{ctx} must be a non-negative integer, not {size}"))?;
            let algorithm = string(required(file, "algorithm", &ctx)?, "algorithm", &ctx)?;
            if algorithm != "sha512" {
                return Err(format!(
                    "unsupported algorithm {algorithm:?}{ctx}: only \"sha512\" is accepted"
                ));
            }
            let digest = Digest::parse(string(required(file, "digest", &ctx)?, "digest", &ctx)?)
                .map_err(|e| e.to_string())?;
            let visibility = parse_visibility(required(file, "visibility", &ctx)?, &ctx)?;
            declared.push(DeclaredFile {
                filename: filename.clone(),
                digest,
                size,
                visibility,
            });
        }
        Ok(Self(BatchRequest {
            message,
            author_given: obj.contains_key("author"),
            files: declared,
        }))
    }
}

/// A parsed `PATCH /file/sha512/{digest}` body.
#[derive(Debug)]
pub struct PatchBody(pub Vec<PatchOp>);

impl FromJsonBody for PatchBody {
    type Doc = Vec<PatchOpDoc>;

    fn from_json(value: Value) -> Result<Self, String> {
        let ops = value
            .as_array()
            .ok_or("the request body must be a JSON array of operations")?;
        ops.iter()
            .enumerate()
            .map(|(i, op)| {
                let ctx = format!(" of operation {i}");
                let obj = op.as_object().ok_or_else(|| {
                    format!("operation {i} must be an object with an 'op' member")
                })?;
                match string(required(obj, "op", &ctx)?, "op", &ctx)? {
                    "set_visibility" => Ok(PatchOp::SetVisibility(parse_visibility(
                        required(obj, "visibility", &ctx)?,
                        &ctx,
                    )?)),
                    "delete_instances" => Ok(PatchOp::DeleteInstances),
                    other => Err(format!(
                        "unknown op {other:?}{ctx}: use \"set_visibility\" or \"delete_instances\""
                    )),
                }
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}
