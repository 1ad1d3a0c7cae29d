use crate::Visibility;

/// One operation of `PATCH /file/sha512/<digest>`, applied in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOp {
    SetVisibility(Visibility),
    /// Remove every stored copy and instance record; the file and its batch
    /// history stay, so the content can be uploaded again later.
    DeleteInstances,
}
