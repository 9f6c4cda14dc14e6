//! Streaming decode of a LIST response: items are decoded one by one, straight from the bytes as
//! they arrive, into a small typed struct, so a page is never held whole in memory and decoding
//! overlaps with the transfer. The list `metadata` (with the continue token) is available as
//! soon as it is complete, which the API server makes early (it precedes `items`).
//!
//! serde_json finds where each value ends by itself (one pass per byte); a value cut by the end
//! of the received data fails with an end-of-input error and is decoded again once more bytes
//! are in. Decoding waits for [`BATCH`] bytes, so such retries cost a few percent at most.

use serde::de::{DeserializeOwned, IgnoredAny};

use super::skim::{self, SkimError};
use super::ListMeta;

/// How the items of one LIST page are decoded from their bytes. A decoder lives for one page,
/// so it may keep state across that page's items (see `commands::audit`'s pod decoder).
pub trait ItemDecoder: Clone + Send + 'static {
    type Item: Send + 'static;
    /// Decodes the item at the start of `input`, the page's `index`th item; returns it with
    /// the number of bytes it took. Called once per item, in order (a failed decode is retried
    /// with more bytes).
    fn decode(&mut self, input: &[u8], index: usize) -> Result<(Self::Item, usize), SkimError>;
}

/// Decodes each item as `T` (only the fields `T` names; the rest is skipped).
pub struct Plain<T>(std::marker::PhantomData<fn() -> T>);

impl<T> Clone for Plain<T> {
    fn clone(&self) -> Self {
        Plain::default()
    }
}

impl<T> Default for Plain<T> {
    fn default() -> Self {
        Plain(std::marker::PhantomData)
    }
}

impl<T: DeserializeOwned + Send + 'static> ItemDecoder for Plain<T> {
    type Item = T;
    fn decode(&mut self, input: &[u8], _index: usize) -> Result<(T, usize), SkimError> {
        skim::from_slice_prefix(input)
    }
}

/// Bytes gathered before decoding (unless the body has ended): a value cut by the end of the
/// data is decoded again once more has come, so decoding waits for this much.
const BATCH: usize = 64 * 1024;
/// The slice of the next chunk first used to finish a value cut by the end of a chunk.
const COMPLETE: usize = 16 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Start,
    Key,
    Items,
    ItemSep,
    AfterValue,
    Done,
}

/// Incremental decoder for `{"kind":..,"metadata":{..},"items":[{..},{..}]}`.
pub struct PageSplitter<D: ItemDecoder> {
    decoder: D,
    buf: Vec<u8>,
    pos: usize,
    state: State,
    pub items: Vec<D::Item>,
    pub metadata: Option<ListMeta>,
}

enum Step<V> {
    Value(V, usize),
    NeedMore,
}

fn bad(e: serde_json::Error) -> String {
    e.to_string()
}

impl<D: ItemDecoder> PageSplitter<D> {
    pub fn new(decoder: D) -> Self {
        PageSplitter {
            decoder,
            buf: Vec::new(),
            pos: 0,
            state: State::Start,
            items: Vec::new(),
            metadata: None,
        }
    }

    /// Feeds the next chunk of the body. Errors on malformed JSON or an item that does not decode.
    ///
    /// Items are decoded straight from the chunk where they lie whole in it; only a value cut by
    /// the end of a chunk is copied, and completed from the next chunk a slice at a time.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), String> {
        // Decode early while the metadata is missing (the caller wants the continue token).
        let eager = self.metadata.is_none() && self.items.is_empty();
        let mut rest = chunk;
        if !self.buf.is_empty() {
            let held = self.buf.len();
            // Enough of the chunk to finish a typical item; more if that was not enough.
            let take = if rest.len() >= BATCH {
                COMPLETE
            } else {
                rest.len()
            };
            self.buf.extend_from_slice(&rest[..take]);
            if self.buf.len() < BATCH && !eager && take == rest.len() {
                return Ok(());
            }
            self.run_buffered()?;
            let used = held + take - self.buf.len();
            if used < held {
                // The held value is still unfinished: go on gathering the whole chunk.
                self.buf.extend_from_slice(&rest[take..]);
                if take < rest.len() {
                    self.run_buffered()?;
                }
                return Ok(());
            }
            // What is left in the buffer is the end of the slice taken from the chunk: drop it
            // and decode from the chunk itself.
            rest = &rest[used - held..];
            self.buf.clear();
        }
        if rest.len() < BATCH && !eager {
            self.buf.extend_from_slice(rest);
            return Ok(());
        }
        self.pos = 0;
        self.run(rest, false)?;
        self.buf.extend_from_slice(&rest[self.pos..]);
        self.pos = 0;
        Ok(())
    }

    /// Runs over the buffer and drops what was decoded from it.
    fn run_buffered(&mut self) -> Result<(), String> {
        let buf = std::mem::take(&mut self.buf);
        self.pos = 0;
        let outcome = self.run(&buf, false);
        self.buf = buf;
        self.buf.drain(..self.pos);
        self.pos = 0;
        outcome
    }

    /// Ends the body: decodes what is left; errors when the JSON was cut short.
    pub fn finish(mut self) -> Result<(Vec<D::Item>, ListMeta), String> {
        let buf = std::mem::take(&mut self.buf);
        self.pos = 0;
        self.run(&buf, true)?;
        if self.state != State::Done {
            return Err("the list response ended early".into());
        }
        Ok((self.items, self.metadata.unwrap_or_default()))
    }

    fn skip_ws(&mut self, data: &[u8]) -> Option<u8> {
        while let Some(&b) = data.get(self.pos) {
            if !b.is_ascii_whitespace() {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    /// One JSON value at `pos`; NeedMore when it may continue past the data received so far.
    fn value<V: DeserializeOwned>(&self, data: &[u8], last: bool) -> Result<Step<V>, String> {
        let slice = &data[self.pos..];
        let mut it = serde_json::Deserializer::from_slice(slice).into_iter::<V>();
        match it.next() {
            Some(Ok(v)) => {
                let end = it.byte_offset();
                // A number (or literal) ending exactly at the end of the data may go on.
                if end == slice.len() && !last {
                    return Ok(Step::NeedMore);
                }
                Ok(Step::Value(v, end))
            }
            Some(Err(e)) if e.is_eof() && !last => Ok(Step::NeedMore),
            Some(Err(e)) => Err(bad(e)),
            None if !last => Ok(Step::NeedMore),
            None => Err("the list response ended early".into()),
        }
    }

    /// One list item at `pos`, decoded by the skimming deserializer (most of an item is
    /// skipped).
    fn item(&mut self, data: &[u8], last: bool) -> Result<Step<D::Item>, String> {
        let slice = &data[self.pos..];
        // Only a number or literal ending exactly at the end of the data may go on; an object,
        // array or string is complete at its closing byte. It must not be decoded twice: a
        // decoder keeps state across a page's items.
        let self_delimited = matches!(slice.first(), Some(b'{' | b'[' | b'"'));
        match self.decoder.decode(slice, self.items.len()) {
            Ok((_, end)) if end == slice.len() && !last && !self_delimited => Ok(Step::NeedMore),
            Ok((item, end)) => Ok(Step::Value(item, end)),
            Err(e) if e.is_eof() && !last => Ok(Step::NeedMore),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Runs the state machine over `data` from `pos`; `pos` ends at the first byte not yet
    /// decoded (the start of a value cut by the end of `data`).
    fn run(&mut self, data: &[u8], last: bool) -> Result<(), String> {
        while let Some(b) = self.skip_ws(data) {
            match self.state {
                State::Start => {
                    if b != b'{' {
                        return Err("the list response is not a JSON object".into());
                    }
                    self.pos += 1;
                    self.state = State::Key;
                }
                State::Key => {
                    if b == b'}' {
                        self.pos += 1;
                        self.state = State::Done;
                        continue;
                    }
                    // The key, the colon and (unless it is `items`) the whole value in one go,
                    // so an incomplete pair is simply read again from its key.
                    let start = self.pos;
                    let key: String = match self.value(data, last)? {
                        Step::Value(k, n) => {
                            self.pos += n;
                            k
                        }
                        Step::NeedMore => break,
                    };
                    match self.skip_ws(data) {
                        Some(b':') => self.pos += 1,
                        Some(_) => return Err("expected ':' in the list response".into()),
                        None => {
                            self.pos = start;
                            break;
                        }
                    }
                    let Some(v) = self.skip_ws(data) else {
                        self.pos = start;
                        break;
                    };
                    if key == "items" && v == b'[' {
                        self.pos += 1;
                        self.state = State::Items;
                        continue;
                    }
                    let done = if key == "metadata" {
                        match self.value::<ListMeta>(data, last)? {
                            Step::Value(m, n) => {
                                self.metadata = Some(m);
                                self.pos += n;
                                true
                            }
                            Step::NeedMore => false,
                        }
                    } else {
                        match self.value::<IgnoredAny>(data, last)? {
                            Step::Value(_, n) => {
                                self.pos += n;
                                true
                            }
                            Step::NeedMore => false,
                        }
                    };
                    if !done {
                        self.pos = start;
                        break;
                    }
                    self.state = State::AfterValue;
                }
                State::Items => {
                    if b == b']' {
                        self.pos += 1;
                        self.state = State::AfterValue;
                        continue;
                    }
                    match self.item(data, last)? {
                        Step::Value(item, n) => {
                            if self.items.is_empty() {
                                // Pages are full but the last: growing item by item would copy
                                // the page's items over and over.
                                self.items.reserve(super::PAGE_SIZE as usize);
                            }
                            self.items.push(item);
                            self.pos += n;
                            self.state = State::ItemSep;
                        }
                        Step::NeedMore => break,
                    }
                }
                State::ItemSep => {
                    self.pos += 1;
                    match b {
                        b',' => self.state = State::Items,
                        b']' => self.state = State::AfterValue,
                        _ => return Err("expected ',' or ']' between list items".into()),
                    }
                }
                State::AfterValue => {
                    self.pos += 1;
                    match b {
                        b',' => self.state = State::Key,
                        b'}' => self.state = State::Done,
                        _ => return Err("expected ',' or '}' in the list response".into()),
                    }
                }
                State::Done => {
                    return Err("trailing data after the list response".into());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn split(body: &str, chunk: usize) -> Result<(Vec<Value>, ListMeta), String> {
        let mut s = PageSplitter::new(Plain::<Value>::default());
        for c in body.as_bytes().chunks(chunk) {
            s.feed(c)?;
        }
        s.finish()
    }

    #[test]
    fn items_and_metadata_come_out_whatever_the_chunking() {
        let body = r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9","continue":"t\"k"},
            "items":[{"metadata":{"name":"a]}\\"},"x":[1,{"y":"}"}]}, {"metadata":{"name":"b"}} ,null,"s",31]}"#;
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
            assert_eq!(items[4], 31, "chunk {chunk}");
        }
        let full: Value = serde_json::from_str(body).unwrap();
        assert_eq!(full["items"].as_array().unwrap().len(), 5);
    }

    #[test]
    fn big_chunks_decode_in_place_and_values_cut_between_them_are_completed() {
        // Items of every size around the thresholds, some bigger than the slice first taken to
        // complete a cut value, and strings that look like structure.
        let mut items = Vec::new();
        for i in 0..400usize {
            let len = [10, 900, 5_000, COMPLETE - 3, COMPLETE + 7, 40_000][i % 6] + i;
            items.push(serde_json::json!({"i": i, "pad": "]}\\\"x".repeat(len / 5)}));
        }
        let body =
            serde_json::json!({"kind": "List", "metadata": {"continue": "c"}, "items": items})
                .to_string();
        let sizes: &[&[usize]] = &[
            &[BATCH - 1],
            &[BATCH],
            &[BATCH + 1],
            &[70_000],
            &[131_072],
            &[250_000],
            &[100, 200_000, 3, BATCH, 17],
            &[COMPLETE, BATCH * 3, 1],
        ];
        for pattern in sizes {
            let mut s = PageSplitter::new(Plain::<Value>::default());
            let mut at = 0;
            for size in pattern.iter().cycle() {
                if at == body.len() {
                    break;
                }
                let end = (at + size).min(body.len());
                s.feed(&body.as_bytes()[at..end]).unwrap();
                at = end;
            }
            let (got, meta) = s.finish().unwrap();
            assert_eq!(meta.continue_token.as_deref(), Some("c"), "{pattern:?}");
            assert_eq!(got.len(), items.len(), "{pattern:?}");
            assert!(got.iter().eq(items.iter()), "{pattern:?}");
        }
    }

    #[test]
    fn metadata_after_items_and_empty_lists() {
        let (items, meta) = split(r#"{"items":[],"metadata":{"continue":""}}"#, 3).unwrap();
        assert!(items.is_empty());
        assert_eq!(meta.continue_token.as_deref(), Some(""));
        let (items, meta) = split(r#"{"kind":"List"}"#, 5).unwrap();
        assert!(items.is_empty() && meta.continue_token.is_none());
        let (items, _) = split(r#"{"items":null, "n": 12}"#, 5).unwrap();
        assert!(items.is_empty());
    }

    #[test]
    fn truncated_or_broken_bodies_fail() {
        assert!(split(r#"{"items":[{"a":1}"#, 4).is_err());
        assert!(split(r#"{"items":[{"a":}]}"#, 4).is_err());
        assert!(split(r#"[1,2]"#, 4).is_err());
        assert!(split(r#"{"items":[1 2]}"#, 4).is_err());
    }
}
