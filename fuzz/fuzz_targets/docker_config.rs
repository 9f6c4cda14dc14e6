#![no_main]
//! Both docker config parsers, the pull-secret check and the keyring never panic.
use std::collections::BTreeMap;

use image_sec_domain::docker_config::{
    parse_docker_config_json, parse_dockercfg, parse_pull_secret, DOCKERCFG_KEY, DOCKERCFG_TYPE,
    DOCKER_CONFIG_JSON_KEY, DOCKER_CONFIG_JSON_TYPE,
};
use image_sec_domain::keyring::Keyring;
use image_sec_domain::reference::ImageReference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let mut keyring = Keyring::new();
    if let Ok(config) = parse_docker_config_json(bytes) {
        keyring.add("json", &config);
    }
    if let Ok(config) = parse_dockercfg(bytes) {
        keyring.add("cfg", &config);
    }
    for (secret_type, key) in [
        (DOCKER_CONFIG_JSON_TYPE, DOCKER_CONFIG_JSON_KEY),
        (DOCKERCFG_TYPE, DOCKERCFG_KEY),
    ] {
        let data = BTreeMap::from([(key.to_string(), bytes.to_vec())]);
        let _ = parse_pull_secret(Some(secret_type), &data);
    }
    for image in ["nginx", "registry.io/team/app", "localhost:5000/x"] {
        if let Ok(image) = ImageReference::parse(image) {
            let _ = keyring.lookup(&image);
        }
    }
});
