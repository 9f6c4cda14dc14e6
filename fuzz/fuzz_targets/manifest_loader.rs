#![no_main]
//! Arbitrary bytes as an `-f` source: splitting, parsing and loading never panic, documents
//! stay inside the text, and every problem names the source.
use image_sec_domain::manifests::{load_objects, parse_document, split_documents, Source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // `read_sources` refuses NUL bytes and invalid UTF-8 before parsing; the rest reaches here.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for doc in split_documents(text) {
        assert!(doc.offset + doc.text.len() <= text.len());
        assert_eq!(&text[doc.offset..doc.offset + doc.text.len()], doc.text);
        assert!(doc.line >= 1);
        let _ = parse_document(doc.text);
    }
    let source = Source {
        name: "fuzz.yaml".into(),
        text: text.to_string(),
    };
    let (_objects, problems) = load_objects(&[source]);
    for p in problems {
        assert_eq!(p.file, "fuzz.yaml");
        assert!(
            !p.message.contains('\n'),
            "one-line problem: {:?}",
            p.message
        );
    }
});
