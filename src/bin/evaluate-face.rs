//! Runs the local face models on the labelled set in `assets/face/` and prints detection recall
//! and precision at IoU 0.5, the top expression where one is labelled, per-case results, the time
//! per frame and the process's memory with the models loaded.
//!
//! `cargo run --release --bin evaluate-face -- data/models/face [assets/face]`
//! Method and the numbers from the last run: `assets/face/EVALUATION.md`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use hume_action::analyzers::local_face::{decode, detector_threshold, emotions, V0_DEFAULT_PROB_THRESHOLD};
use hume_action::models::face::{Detection, FaceModels, EXPRESSIONS};
use serde::Deserialize;

/// A match needs at least this IoU with a labelled face.
const MATCH_IOU: f32 = 0.5;
/// Runs per case for the timing (the first result is the one scored).
const RUNS: usize = 5;

#[derive(Deserialize)]
struct Labels {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    file: String,
    kind: String,
    faces: Vec<Face>,
}

#[derive(Deserialize)]
struct Face {
    x: f32,
    y: f32,
    w: f32,
    h: f32,
    expression: Option<String>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let models_dir = PathBuf::from(args.first().map(String::as_str).unwrap_or("data/models/face"));
    let assets = PathBuf::from(args.get(1).map(String::as_str).unwrap_or("assets/face"));
    if let Err(e) = run(&models_dir, &assets) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn run(models_dir: &Path, assets: &Path) -> Result<(), String> {
    let labels_path = assets.join("labels.json");
    let labels: Labels = serde_json::from_str(
        &std::fs::read_to_string(&labels_path).map_err(|e| format!("{}: {e}", labels_path.display()))?,
    )
    .map_err(|e| format!("{}: {e}", labels_path.display()))?;
    let before = rss_mb();
    let started = Instant::now();
    let models = FaceModels::load(models_dir).map_err(|e| e.to_string())?;
    println!("models loaded in {} ms", started.elapsed().as_millis());
    if let (Some(before), Some(after)) = (before, rss_mb()) {
        println!("RSS {after:.0} MB with the models loaded ({:.0} MB for them)", after - before);
    }
    let threshold = detector_threshold(V0_DEFAULT_PROB_THRESHOLD);
    println!(
        "detector threshold {threshold} (v0 prob_threshold {V0_DEFAULT_PROB_THRESHOLD}), match at IoU {MATCH_IOU}\n"
    );
    println!("case               kind          size faces  hit   fp   ms/frame  details");
    let (mut labelled, mut detected, mut hits) = (0, 0, 0);
    let (mut expressions_labelled, mut expressions_right) = (0, 0);
    let mut vga_ms = Vec::new();
    let mut all_ms = Vec::new();
    for case in &labels.cases {
        let path = assets.join(&case.file);
        let jpeg = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let image = decode(&jpeg).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut found = Vec::new();
        let mut tops = Vec::new();
        let mut times = Vec::new();
        for run in 0..RUNS {
            let t = Instant::now();
            let faces = models.detect_with(&image, threshold).map_err(|e| e.to_string())?;
            let mut top = Vec::new();
            for face in &faces {
                let p = models.expressions(&image, face).map_err(|e| e.to_string())?;
                let best = (0..7).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(6);
                top.push((EXPRESSIONS[best], p[best], emotions(&p).len()));
            }
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            if run == 0 {
                found = faces;
                tops = top;
            }
        }
        times.sort_by(f64::total_cmp);
        let ms = times[times.len() / 2];
        all_ms.push(ms);
        if (image.width(), image.height()) == (640, 480) {
            vga_ms.push(ms);
        }
        let mut used = vec![false; found.len()];
        let mut details = Vec::new();
        let mut case_hits = 0;
        for label in &case.faces {
            let truth = Detection { x: label.x, y: label.y, w: label.w, h: label.h, prob: 1.0 };
            let best = found
                .iter()
                .enumerate()
                .filter(|(i, _)| !used[*i])
                .map(|(i, d)| (i, truth.iou(d)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((i, iou)) if iou >= MATCH_IOU => {
                    used[i] = true;
                    case_hits += 1;
                    let (top, p, _) = tops[i];
                    let mut note = format!("IoU {iou:.2} prob {:.2} top {top} {p:.2}", found[i].prob);
                    if let Some(expected) = &label.expression {
                        expressions_labelled += 1;
                        if expected == top {
                            expressions_right += 1;
                        } else {
                            note.push_str(&format!(" (expected {expected})"));
                        }
                    }
                    details.push(note);
                }
                Some((_, iou)) => details.push(format!("missed (best IoU {iou:.2})")),
                None => details.push("missed".to_owned()),
            }
        }
        let false_positives = used.iter().filter(|u| !**u).count();
        for (d, _) in found.iter().zip(&used).filter(|(_, u)| !**u) {
            details.push(format!("extra box {:.0},{:.0} {:.0}x{:.0} prob {:.2}", d.x, d.y, d.w, d.h, d.prob));
        }
        labelled += case.faces.len();
        detected += found.len();
        hits += case_hits;
        println!(
            "{:<18} {:<8} {:>9} {:>5} {:>4} {:>4} {:>10.1}  {}",
            case.name,
            case.kind,
            format!("{}x{}", image.width(), image.height()),
            case.faces.len(),
            case_hits,
            false_positives,
            ms,
            details.join("; ")
        );
    }
    let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!();
    println!("recall    {hits}/{labelled} = {:.3}", ratio(hits, labelled));
    println!("precision {hits}/{detected} = {:.3}", ratio(hits, detected));
    println!("top expression {expressions_right}/{expressions_labelled} where labelled");
    println!(
        "ms per frame (detection + expressions, median of {RUNS}): mean {:.1} over all cases, {:.1} at 640x480 ({:.1} frames/s)",
        mean(&all_ms),
        mean(&vga_ms),
        1000.0 / mean(&vga_ms)
    );
    if let Some(rss) = rss_mb() {
        println!("RSS at the end {rss:.0} MB");
    }
    Ok(())
}
