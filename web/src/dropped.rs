//! The files of a drag and drop. A dropped folder arrives as a directory entry
//! (`DataTransferItem.webkitGetAsEntry()`), not as files: it is read here recursively, so
//! dropping a checkpoint folder works like choosing it with the folder picker.

/// The path the core sees for a dropped entry: relative to what was dropped, as the folder
/// picker's `webkitRelativePath` is ("ckpt/model-00001-of-00002.safetensors").
pub fn entry_path(full_path: &str) -> String {
    full_path.trim_start_matches('/').to_string()
}

/// Folders not read: hidden ones (a cloned Hugging Face repository's `.git` holds a second
/// copy of every weight file, and thousands of small files).
pub fn skip_folder(name: &str) -> bool {
    name.starts_with('.')
}

/// A file inside a hidden folder (`ckpt/.git/lfs/x.safetensors`): left out of a picked
/// folder as of a dropped one, so both give the same files.
pub fn in_hidden_folder(path: &str) -> bool {
    let mut parts: Vec<&str> = path.split(['/', '\\']).collect();
    parts.pop();
    parts.iter().any(|p| skip_folder(p))
}

/// At most this many entries are read from dropped folders: a stray drop of a home
/// directory ends with a message instead of a tab that reads forever.
pub const MAX_ENTRIES: usize = 20_000;

#[cfg(target_arch = "wasm32")]
pub use browser::{files_of_entries, take_entries};

#[cfg(target_arch = "wasm32")]
mod browser {
    use super::{entry_path, skip_folder, MAX_ENTRIES};
    use js_sys::{Array, Function, Promise, Reflect};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{DataTransfer, File, FileSystemDirectoryEntry, FileSystemEntry};

    /// The entries of a drop. Only valid while the drop event is dispatched: call it from
    /// the handler, before anything asynchronous.
    pub fn take_entries(dt: &DataTransfer) -> Vec<FileSystemEntry> {
        let items = dt.items();
        (0..items.length())
            .filter_map(|i| items.get(i))
            .filter(|item| item.kind() == "file")
            .filter_map(|item| item.webkit_get_as_entry().ok().flatten())
            .collect()
    }

    /// Call `obj.method(resolve, reject)` and wait for either callback.
    async fn callback_call(obj: &JsValue, method: &str) -> Result<JsValue, String> {
        let f: Function = Reflect::get(obj, &method.into())
            .ok()
            .and_then(|f| f.dyn_into().ok())
            .ok_or_else(|| format!("this browser has no {method}()"))?;
        let mut call_error = None;
        let promise = Promise::new(&mut |resolve, reject| {
            if let Err(e) = f.call2(obj, &resolve, &reject) {
                call_error = Some(e);
            }
        });
        if let Some(e) = call_error {
            return Err(format!("{method}() failed: {e:?}"));
        }
        JsFuture::from(promise)
            .await
            .map_err(|e| format!("{method}() failed: {}", crate::blob_stream::js_error(e)))
    }

    /// Every file under `entries`, folders read recursively, with its path relative to the
    /// drop. Files come in the order the browser lists them.
    pub async fn files_of_entries(
        entries: Vec<FileSystemEntry>,
    ) -> Result<Vec<(File, String)>, String> {
        let mut out = Vec::new();
        let mut stack: Vec<FileSystemEntry> = entries.into_iter().rev().collect();
        let mut seen = 0usize;
        while let Some(entry) = stack.pop() {
            seen += 1;
            if seen > MAX_ENTRIES {
                return Err(format!(
                    "the dropped folders hold more than {MAX_ENTRIES} entries: drop the model's own folder"
                ));
            }
            if entry.is_file() {
                let file: File = callback_call(&entry, "file")
                    .await
                    .map_err(|e| format!("{}: {e}", entry.full_path()))?
                    .unchecked_into();
                out.push((file, entry_path(&entry.full_path())));
            } else if entry.is_directory() && !skip_folder(&entry.name()) {
                let dir: FileSystemDirectoryEntry = entry.unchecked_into();
                let reader: JsValue = dir.create_reader().into();
                // readEntries returns the folder in batches until an empty one.
                let mut children = Vec::new();
                loop {
                    let batch: Array = callback_call(&reader, "readEntries")
                        .await
                        .map_err(|e| format!("{}: {e}", dir.full_path()))?
                        .unchecked_into();
                    if batch.length() == 0 {
                        break;
                    }
                    children.extend(batch.iter().map(|e| e.unchecked_into::<FileSystemEntry>()));
                    if children.len() > MAX_ENTRIES {
                        break;
                    }
                }
                stack.extend(children.into_iter().rev());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn dropped_paths_are_relative_like_picked_ones() {
        assert_eq!(
            entry_path("/ckpt/model-00001-of-00002.safetensors"),
            "ckpt/model-00001-of-00002.safetensors"
        );
        assert_eq!(entry_path("/model.gguf"), "model.gguf");
        assert!(skip_folder(".git"));
        assert!(!skip_folder("ckpt"));
        assert!(in_hidden_folder("ckpt/.git/lfs/model.safetensors"));
        assert!(!in_hidden_folder("ckpt/model.safetensors"));
        assert!(!in_hidden_folder(".hidden-name.gguf"));
    }
}
