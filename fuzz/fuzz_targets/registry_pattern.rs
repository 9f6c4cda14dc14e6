#![no_main]
//! Pattern parsing and matching never panic; a parsed pattern displays as written.
use image_sec_domain::reference::ImageReference;
use image_sec_domain::registry_pattern::RegistryPattern;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (pattern, image) = input;
    if let Ok(parsed) = RegistryPattern::parse(pattern) {
        assert_eq!(parsed.to_string(), pattern);
        let _ = parsed.matches_registry(image);
        if let Ok(image) = ImageReference::parse(image) {
            let _ = parsed.matches(&image);
        }
    }
});
