#![no_main]
use conduit::config::load_str;
use libfuzzer_sys::fuzz_target;

// Input: a TOML file, then (after a NUL) `NAME=value` environment lines.
fuzz_target!(|text: &str| {
    let (file, env) = text.split_once('\0').unwrap_or((text, ""));
    let env: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let Ok(cfg) = load_str(Some(file), env, &[]) else {
        return;
    };
    assert!(cfg.validate().is_ok());
    // A loaded config written back as TOML loads to the same config.
    let written = toml::to_string(&cfg).expect("a config serializes");
    let again = load_str(Some(&written), Vec::new(), &[]).expect("written config loads");
    assert_eq!(again, cfg);
});
