//! Streaming decode of a LIST response: items are cut out of the byte stream as it arrives and
//! decoded one by one into a small typed struct, so a page is never held whole in memory and
//! decoding overlaps with the transfer. The list `metadata` (with the continue token) is
//! reported as soon as it is complete, which the API server makes early (it precedes `items`).

use serde::de::DeserializeOwned;

use super::ListMeta;

/// Incremental splitter for `{"kind":..,"metadata":{..},"items":[{..},{..}]}`.
pub struct PageSplitter<T> {
    buf: Vec<u8>,
    /// Scan position in `buf`.
    pos: usize,
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// Span of the last complete string at depth 1 (a key candidate).
    last_string: Option<(usize, usize)>,
    string_start: usize,
    /// The depth-1 key whose value is being read.
    key: Key,
    /// Start of the value being captured (metadata object, or current item).
    value_start: Option<usize>,
    pub items: Vec<T>,
    pub metadata: Option<ListMeta>,
    done: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Other,
    Metadata,
    Items,
}

impl<T: DeserializeOwned> PageSplitter<T> {
    pub fn new() -> Self {
        PageSplitter {
            buf: Vec::with_capacity(64 * 1024),
            pos: 0,
            depth: 0,
            in_string: false,
            escaped: false,
            last_string: None,
            string_start: 0,
            key: Key::Other,
            value_start: None,
            items: Vec::new(),
            metadata: None,
            done: false,
        }
    }

    /// Feeds the next chunk of the body. Errors on malformed JSON or an item that does not decode.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), String> {
        self.buf.extend_from_slice(chunk);
        let mut i = self.pos;
        let n = self.buf.len();
        while i < n {
            let b = self.buf[i];
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                    if self.depth == 1 {
                        self.last_string = Some((self.string_start, i));
                    }
                } else if self.depth > 2 {
                    // Fast path inside items: jump to the next quote or backslash.
                    if let Some(off) = self.buf[i + 1..n]
                        .iter()
                        .position(|&c| c == b'"' || c == b'\\')
                    {
                        i += off;
                    } else {
                        i = n - 1;
                    }
                }
                i += 1;
                continue;
            }
            match b {
                b'"' => {
                    self.in_string = true;
                    self.string_start = i + 1;
                    if self.depth == 2 && self.key == Key::Items && self.value_start.is_none() {
                        self.value_start = Some(i);
                    }
                }
                b':' if self.depth == 1 => {
                    self.key = match self.last_string.take() {
                        Some((s, e)) if &self.buf[s..e] == b"metadata" => Key::Metadata,
                        Some((s, e)) if &self.buf[s..e] == b"items" => Key::Items,
                        _ => Key::Other,
                    };
                }
                b'{' | b'[' => {
                    if self.depth == 0 && b != b'{' {
                        return Err("the list response is not a JSON object".into());
                    }
                    if (self.depth == 1 && self.key == Key::Metadata && b == b'{')
                        || (self.depth == 2 && self.key == Key::Items && self.value_start.is_none())
                    {
                        self.value_start = Some(i);
                    }
                    self.depth += 1;
                }
                b'}' | b']' => {
                    if self.depth == 0 {
                        return Err("unbalanced JSON in the list response".into());
                    }
                    if self.depth == 2 && self.key == Key::Items {
                        // End of the items array: a scalar item may be pending.
                        self.finish_item(i)?;
                    }
                    self.depth -= 1;
                    if self.depth == 1 && self.key == Key::Metadata {
                        if let Some(s) = self.value_start.take() {
                            let meta: ListMeta = serde_json::from_slice(&self.buf[s..=i])
                                .map_err(|e| e.to_string())?;
                            self.metadata = Some(meta);
                        }
                    } else if self.depth == 2 && self.key == Key::Items {
                        if let Some(s) = self.value_start.take() {
                            self.decode_item(s, i + 1)?;
                        }
                    } else if self.depth == 0 {
                        self.done = true;
                    }
                }
                b',' if self.depth == 2 && self.key == Key::Items => self.finish_item(i)?,
                b',' if self.depth == 1 => self.last_string = None,
                _ => {
                    if self.depth == 2
                        && self.key == Key::Items
                        && self.value_start.is_none()
                        && !b.is_ascii_whitespace()
                    {
                        self.value_start = Some(i);
                    }
                }
            }
            i += 1;
        }
        self.pos = n;
        // Drop what is consumed: keep only the value being captured (or the pending key).
        let keep = self
            .value_start
            .unwrap_or(n)
            .min(if self.in_string && self.depth == 1 {
                self.string_start.saturating_sub(1)
            } else {
                n
            })
            .min(self.last_string.map_or(n, |(s, _)| s));
        if keep > 0 {
            self.buf.drain(..keep);
            self.pos -= keep;
            self.string_start = self.string_start.saturating_sub(keep);
            if let Some(s) = self.value_start.as_mut() {
                *s -= keep;
            }
            if let Some((s, e)) = self.last_string.as_mut() {
                *s -= keep;
                *e -= keep;
            }
        }
        Ok(())
    }

    /// A scalar item (string/number/null) ends at a comma or the closing bracket.
    fn finish_item(&mut self, end: usize) -> Result<(), String> {
        if let Some(s) = self.value_start.take() {
            self.decode_item(s, end)?;
        }
        Ok(())
    }

    fn decode_item(&mut self, start: usize, end: usize) -> Result<(), String> {
        let item: T = serde_json::from_slice(&self.buf[start..end]).map_err(|e| e.to_string())?;
        self.items.push(item);
        Ok(())
    }

    /// Ends the body: errors when the JSON was cut short.
    pub fn finish(self) -> Result<(Vec<T>, ListMeta), String> {
        if !self.done || self.in_string {
            return Err("the list response ended early".into());
        }
        Ok((self.items, self.metadata.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn split(body: &str, chunk: usize) -> Result<(Vec<Value>, ListMeta), String> {
        let mut s = PageSplitter::<Value>::new();
        for c in body.as_bytes().chunks(chunk) {
            s.feed(c)?;
        }
        s.finish()
    }

    #[test]
    fn items_and_metadata_come_out_whatever_the_chunking() {
        let body = r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9","continue":"t\"k"},
            "items":[{"metadata":{"name":"a]}\\"},"x":[1,{"y":"}"}]}, {"metadata":{"name":"b"}} ,null,"s",3]}"#;
        for chunk in [1, 2, 3, 7, 64, 4096] {
            let (items, meta) = split(body, chunk).unwrap();
            assert_eq!(
                meta.continue_token.as_deref(),
                Some("t\"k"),
                "chunk {chunk}"
            );
            assert_eq!(items.len(), 5);
            assert_eq!(items[0]["metadata"]["name"], "a]}\\");
            assert_eq!(items[0]["x"][1]["y"], "}");
            assert_eq!(items[1]["metadata"]["name"], "b");
            assert_eq!(items[2], Value::Null);
            assert_eq!(items[3], "s");
            assert_eq!(items[4], 3);
        }
        let full: Value = serde_json::from_str(body).unwrap();
        assert_eq!(full["items"].as_array().unwrap().len(), 5);
    }

    #[test]
    fn metadata_after_items_and_empty_lists() {
        let (items, meta) = split(r#"{"items":[],"metadata":{"continue":""}}"#, 3).unwrap();
        assert!(items.is_empty());
        assert_eq!(meta.continue_token.as_deref(), Some(""));
        let (items, meta) = split(r#"{"kind":"List"}"#, 5).unwrap();
        assert!(items.is_empty() && meta.continue_token.is_none());
        let (items, _) = split(r#"{"items":null}"#, 5).unwrap();
        assert!(items.is_empty());
    }

    #[test]
    fn truncated_or_broken_bodies_fail() {
        assert!(split(r#"{"items":[{"a":1}"#, 4).is_err());
        assert!(split(r#"{"items":[{"a":}]}"#, 4).is_err());
        assert!(split(r#"[1,2]"#, 4).is_err());
    }
}
