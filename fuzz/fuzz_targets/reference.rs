#![no_main]
//! Any string either fails to parse or round-trips through its normalised form.
use image_sec_domain::reference::ImageReference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(parsed) = ImageReference::parse(input) {
        let normalized = parsed.normalized();
        let again = ImageReference::parse(&normalized).expect("normalised form must parse");
        assert_eq!(again.normalized(), normalized);
        let _ = (
            parsed.account(),
            parsed.pull_target(),
            parsed.is_official_image(),
        );
    }
});
