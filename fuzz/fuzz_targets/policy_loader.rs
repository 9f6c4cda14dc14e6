#![no_main]
//! Any text either is a valid policy or gives a one-line error naming the file.
use image_sec_domain::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match Policy::from_yaml(text, "fuzz-policy.yaml") {
        Ok(p) => {
            let _ = p.severity(image_sec_domain::rules::RuleId::MissingTag);
        }
        Err(e) => {
            assert!(e.contains("fuzz-policy.yaml"), "names the file: {e}");
            assert!(!e.contains('\n'), "one-line error: {e:?}");
        }
    }
});
