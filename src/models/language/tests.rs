//! These tests need the model files, which `scripts/install-models.sh` puts in
//! `./data/models/all-minilm-l6-v2/`; `HUME_ACTION_MODEL_DIR` may name another parent folder.

use super::*;
use std::sync::OnceLock;

fn model_dir() -> PathBuf {
    let root = std::env::var_os("HUME_ACTION_MODEL_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("data/models"), PathBuf::from);
    Path::new(&root).join(MODEL_DIR_NAME)
}

fn model() -> &'static LanguageModel {
    static MODEL: OnceLock<LanguageModel> = OnceLock::new();
    MODEL.get_or_init(|| LanguageModel::load(&model_dir()).unwrap_or_else(|e| panic!("{e}")))
}

fn top3(text: &str) -> Vec<&'static str> {
    let scores = &model().score(&[text]).unwrap()[0].emotions;
    let mut order: Vec<usize> = (0..EXPRESSIONS.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order[..3].iter().map(|&i| EXPRESSIONS[i]).collect()
}

fn expected_sentiment(text: &str) -> f32 {
    let p = &model().score(&[text]).unwrap()[0].sentiment;
    p.iter().enumerate().map(|(i, p)| (i + 1) as f32 * p).sum()
}

#[test]
fn embeddings_match_sentence_transformers() {
    // First values of `SentenceTransformer(all-MiniLM-L6-v2).encode(...)` (6.2.0, CPU).
    let long = ["word"; 400].join(" ");
    let reference: [(&str, [f32; 4]); 5] = [
        ("The quick brown fox jumps over the lazy dog.", [0.043934, 0.058934, 0.048178, 0.077548]),
        ("I'm terrified of what the scan will show.", [0.043031, 0.032944, -0.052365, 0.011016]),
        ("", [-0.118838, 0.048299, -0.002548, -0.011011]),
        (&long, [-0.008124, -0.095586, -0.038673, 0.049662]),
        ("short one", [-0.011381, 0.073897, 0.018923, 0.019101]),
    ];
    // One batch: padding and truncation must not change the result.
    let texts: Vec<&str> = reference.iter().map(|(t, _)| *t).collect();
    let embeddings = model().embed(&texts).unwrap();
    for ((text, want), got) in reference.iter().zip(&embeddings) {
        assert_eq!(got.len(), EMBEDDING_DIM);
        let norm = got.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{text:?}: norm {norm}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "{text:?}: got {:?}, want {want:?}", &got[..4]);
        }
    }
    assert!(model().embed(&[]).unwrap().is_empty());
}

#[test]
fn scores_have_the_documented_shape() {
    let texts = ["I love this!", "meh", "", "This is awful and you should be ashamed."];
    let scores = model().score(&texts).unwrap();
    assert_eq!(scores.len(), texts.len());
    for s in scores {
        assert_eq!((s.emotions.len(), s.sentiment.len(), s.toxicity.len()), (53, 9, 6));
        let unit = |v: &f32| (0.0..=1.0).contains(v);
        assert!(s.emotions.iter().chain(&s.sentiment).chain(&s.toxicity).all(unit));
        assert!((s.sentiment.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
}

#[test]
fn clear_examples_rank_sensibly() {
    let cases: [(&str, &[&str]); 3] = [
        ("I'm furious, this is the third time you've lost my package!", &["Anger", "Annoyance"]),
        ("Thank you so much, you saved my day!", &["Gratitude"]),
        ("I'm terrified of what the scan will show.", &["Fear", "Anxiety"]),
    ];
    for (text, any_of) in cases {
        let top = top3(text);
        assert!(any_of.iter().any(|l| top.contains(l)), "{text:?}: top 3 {top:?}, expected one of {any_of:?}");
    }
}

#[test]
fn positive_text_has_higher_sentiment_than_negative() {
    let positive = expected_sentiment("What a wonderful surprise, I'm so happy with how it turned out!");
    let negative = expected_sentiment("This is the worst day of my life, everything went wrong.");
    assert!(positive > negative + 2.0, "positive {positive}, negative {negative}");
}

#[test]
fn insult_is_more_toxic_than_polite_complaint() {
    let scores = model()
        .score(&[
            "You're a worthless idiot and everyone hates you.",
            "I'm disappointed that my order arrived late; could you please look into it?",
        ])
        .unwrap();
    let toxic = |s: &TextScores| s.toxicity[0];
    assert!(toxic(&scores[0]) > 0.5 && toxic(&scores[1]) < 0.5, "{:?} vs {:?}", scores[0].toxicity, scores[1].toxicity);
}

#[test]
fn missing_or_corrupt_model_files_name_the_install_script() {
    let source = model_dir();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
    for (name, _) in MODEL_FILES {
        std::fs::copy(source.join(name), dir.path().join(name)).unwrap();
    }
    let error = |dir: &Path| LanguageModel::load(dir).err().expect("load should fail").to_string();

    std::fs::write(dir.path().join("config.json"), "{}").unwrap();
    let corrupt = error(dir.path());
    assert!(corrupt.contains("config.json") && corrupt.contains("sha256"), "{corrupt}");
    assert!(corrupt.contains("scripts/install-models.sh"), "{corrupt}");

    std::fs::copy(source.join("config.json"), dir.path().join("config.json")).unwrap();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let missing = error(dir.path());
    assert!(missing.contains("model.safetensors") && missing.contains("missing"), "{missing}");
    assert!(missing.contains("scripts/install-models.sh"), "{missing}");
}

#[test]
fn heads_trained_on_another_model_are_rejected() {
    let mut heads: serde_json::Value = serde_json::from_str(HEAD_JSON).unwrap();
    heads["model_sha256"] = "0".repeat(64).into();
    let error = HeadFile::parse(&heads.to_string()).unwrap_err();
    assert!(matches!(error, LanguageModelError::HeadModelMismatch { .. }), "{error}");
    assert!(error.to_string().contains("train-language-head"));
}

#[test]
fn fit_separates_a_toy_problem() {
    // Two labels on 2-d points: label 0 where x > 0, label 1 where y > 0.
    let x: Vec<Vec<f32>> =
        [(1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0)].iter().map(|&(a, b)| vec![a, b]).collect();
    let y: Vec<Vec<f32>> =
        x.iter().map(|p| vec![f32::from(u8::from(p[0] > 0.0)), f32::from(u8::from(p[1] > 0.0))]).collect();
    let head = train::fit(&x, &y, &["x", "y"], train::Link::Sigmoid, 1e-3, 500).unwrap();
    for (x, y) in x.iter().zip(&y) {
        let p = train::Link::Sigmoid.apply(&head.logits(x));
        assert!(p.iter().zip(y).all(|(p, y)| (p - y).abs() < 0.2), "{x:?}: {p:?}");
    }
    assert!(train::cross_entropy(&head, train::Link::Sigmoid, &x, &y) < 0.4);
}
