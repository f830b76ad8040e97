//! The burst model on real audio: needs `scripts/install-models.sh --with-burst` and Debian's
//! `hedgewars-data` (`scripts/install-system.sh --tests`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::*;

fn model_dir() -> PathBuf {
    std::env::var_os("HUME_ACTION_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("data/models"))
        .join(DIR_NAME)
}

fn model() -> Arc<Yamnet> {
    static MODEL: OnceLock<Arc<Yamnet>> = OnceLock::new();
    MODEL.get_or_init(|| Arc::new(Yamnet::load(&model_dir()).unwrap_or_else(|e| panic!("{e}")))).clone()
}

#[test]
fn a_file_that_is_not_the_pinned_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(MODEL_FILE), b"not a model").unwrap();
    let err = Yamnet::load(dir.path()).err().unwrap();
    assert!(matches!(err, BurstModelError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("--with-burst"), "{err}");
    let missing = Yamnet::load(&dir.path().join("nowhere")).err().unwrap();
    assert!(matches!(missing, BurstModelError::Read { .. }), "{missing}");
    // The start-up check (the model loads on first use) refuses the same files the same way.
    let checked = Yamnet::check(dir.path()).unwrap_err();
    assert!(matches!(checked, BurstModelError::Checksum { .. }), "{checked}");
    assert!(matches!(Yamnet::check(&dir.path().join("nowhere")), Err(BurstModelError::Read { .. })));
}

#[test]
fn the_installed_files_pass_the_start_up_check() {
    Yamnet::check(&model_dir()).unwrap_or_else(|e| panic!("{e}"));
    // The class map is checked too: one that is not the pinned file is refused.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(model_dir().join(MODEL_FILE), dir.path().join(MODEL_FILE)).unwrap();
    std::fs::write(dir.path().join(CLASS_MAP_FILE), "index,mid,display_name\n0,/m/x,Speech\n").unwrap();
    assert!(matches!(Yamnet::check(dir.path()), Err(BurstModelError::Checksum { .. })));
}

#[test]
fn the_burst_classes_are_the_class_maps_names() {
    let model = model();
    for (index, name) in BURST_CLASSES {
        assert_eq!(model.name(index), name);
    }
}

#[test]
fn a_hedgewars_laugh_is_laughter_and_speech_is_not_a_burst() {
    let model = model();
    let laugh = eval::decode(&eval::hedgewars_clip("Default", "Laugh")).unwrap_or_else(|e| panic!("{e}"));
    let bursts = model.bursts(&laugh).unwrap();
    assert!(!bursts.is_empty(), "no burst in a laugh");
    let (top, score) = bursts[0].top();
    assert!(eval::LAUGHTER.contains(&top), "top class {top} ({score})");
    let speech = crate::models::speech::eval::synthesize(
        "The meeting moved to Thursday afternoon, and the report is due on Friday.",
        "en-us",
        150,
    )
    .unwrap();
    let found = model.bursts(&speech.samples).unwrap();
    assert!(found.is_empty(), "bursts in plain speech: {found:?}");
}
