//! `GET /v0/batch/jobs/{id}/artifacts`: the predictions as a zip with one CSV per model,
//! `transcript.csv` (one row per word said) when media was transcribed, `voice.csv` (one row per
//! utterance's voice measures: pitch, loudness, speaking rate) when the voice was measured, and
//! `timeline.csv` (one
//! row per file per timeline window of the job summary: its words and each model's top
//! expression) for a spreadsheet step to chart.
//!
//! Each row is one prediction: where it came from (source, file, group id), its position or
//! time, then one column per score (`emotion:Joy`, `sentiment:5`, `toxicity:insult`, ...).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Seek, SeekFrom, Write};

use serde_json::Value;
use zip::write::SimpleFileOptions;

/// Flattens predictions into `<model>.csv` files inside a zip (all in memory; for tests and
/// small jobs).
pub fn zip_predictions(predictions: &Value) -> Result<Vec<u8>, String> {
    let sources = predictions.as_array().cloned().unwrap_or_default();
    let mut out = Cursor::new(Vec::new());
    write_zip(sources.len() as i64, |i| Ok(sources[i as usize].clone()), |_| Vec::new(), &mut out)?;
    Ok(out.into_inner())
}

/// Rows a source adds to `timeline.csv`: each with its file's name and its cells (`3:begin`,
/// `4:end`, `5:text`, `<model>_top`, ...), made by the caller (the job summary's timeline).
pub type TimelineRows = Vec<(String, BTreeMap<String, String>)>;

/// Writes the artifacts zip of `count` sources to `out`, reading each source with `read` (twice:
/// once for each CSV's columns, once for its rows) so only one source is in memory at a time;
/// the CSVs are written to temporary files before they go into the zip.
pub fn write_zip(
    count: i64,
    mut read: impl FnMut(i64) -> Result<Value, String>,
    timeline: impl Fn(&Value) -> TimelineRows,
    out: impl Write + Seek,
) -> Result<(), String> {
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let for_each_row = |index, source: &Value, row: &mut dyn FnMut(&str, &BTreeMap<String, String>)| {
        for_each_row(index, source, &timeline, row)
    };
    for index in 0..count {
        for_each_row(index, &read(index)?, &mut |model, row| {
            let known = seen.entry(model.to_owned()).or_default();
            for key in row.keys().filter(|&k| !known.contains(k)).cloned().collect::<Vec<_>>() {
                known.insert(key);
            }
        });
    }
    let mut columns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut writers: BTreeMap<String, csv::Writer<std::fs::File>> = BTreeMap::new();
    for (model, names) in seen {
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort_by_key(|c| (column_rank(c), c.clone()));
        let columns = columns.entry(model.clone()).or_insert(names);
        let mut csv = csv::Writer::from_writer(tempfile::tempfile().map_err(|e| e.to_string())?);
        csv.write_record(
            columns
                .iter()
                .map(|c| c.split_once(':').map_or(c.as_str(), |(rank, name)| if rank.len() == 1 { name } else { c })),
        )
        .map_err(|e| e.to_string())?;
        writers.insert(model.clone(), csv);
    }
    let mut failed = None;
    for index in 0..count {
        for_each_row(index, &read(index)?, &mut |model, row| {
            let (Some(csv), Some(columns)) = (writers.get_mut(model), columns.get(model)) else { return };
            if let Err(e) = csv.write_record(columns.iter().map(|c| row.get(c).map_or("", String::as_str))) {
                failed.get_or_insert(e.to_string());
            }
        });
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let mut zip = zip::ZipWriter::new(out);
    for (model, csv) in writers {
        let mut file = csv.into_inner().map_err(|e| e.to_string())?;
        file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        zip.start_file(format!("{model}.csv"), SimpleFileOptions::default()).map_err(|e| e.to_string())?;
        std::io::copy(&mut file, &mut zip).map_err(|e| e.to_string())?;
    }
    zip.finish().map_err(|e| e.to_string())?;
    Ok(())
}

/// Calls `row(model, columns)` for every row one source (the `index`th) adds to the CSVs, the
/// rows of `timeline.csv` (from `timeline`) included.
fn for_each_row(
    index: i64,
    source: &Value,
    timeline: &dyn Fn(&Value) -> TimelineRows,
    row: &mut dyn FnMut(&str, &BTreeMap<String, String>),
) {
    let source_name = source["source"]["url"]
        .as_str()
        .or(source["source"]["filename"].as_str())
        .map_or_else(|| format!("text[{index}]"), str::to_owned);
    for (file, mut cells) in timeline(source) {
        cells.insert("0:source".to_owned(), source_name.clone());
        cells.insert("1:file".to_owned(), file);
        row("timeline", &cells);
    }
    for file in source["results"]["predictions"].as_array().into_iter().flatten() {
        let ids = |group: Option<&str>| {
            let mut cells = BTreeMap::new();
            cells.insert("0:source".to_owned(), source_name.clone());
            cells.insert("1:file".to_owned(), file["file"].as_str().unwrap_or_default().to_owned());
            if let Some(id) = group {
                cells.insert("2:id".to_owned(), id.to_owned());
            }
            cells
        };
        for word in file["transcript"]["words"].as_array().into_iter().flatten() {
            let mut cells = ids(None);
            flatten(word, &mut cells);
            row("transcript", &cells);
        }
        for measure in file["voice"].as_array().into_iter().flatten() {
            let mut cells = ids(None);
            flatten(measure, &mut cells);
            row("voice", &cells);
        }
        for (model, output) in file["models"].as_object().into_iter().flatten() {
            for group in output["grouped_predictions"].as_array().into_iter().flatten() {
                for prediction in group["predictions"].as_array().into_iter().flatten() {
                    let mut cells = ids(Some(group["id"].as_str().unwrap_or_default()));
                    flatten(prediction, &mut cells);
                    row(model, &cells);
                }
            }
        }
    }
}

/// Identity columns first, then plain fields, then scores.
fn column_rank(column: &str) -> u8 {
    match column.split_once(':') {
        Some((rank, _)) if rank.len() == 1 => 0,
        Some(_) => 2,
        None => 1,
    }
}

/// Scalars become `field` / `field.sub` columns; score lists (`{name, score}`, or v1's `{name,
/// probability}` under `hume_v1`) become `list:name` columns, so every number measured has one.
fn flatten(prediction: &Value, row: &mut BTreeMap<String, String>) {
    flatten_under("", prediction, row);
}

fn flatten_under(prefix: &str, value: &Value, row: &mut BTreeMap<String, String>) {
    for (key, value) in value.as_object().into_iter().flatten() {
        let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            Value::Array(scores) => {
                let list = if name == "emotions" { "emotion" } else { name.as_str() };
                for score in scores {
                    let number = score.get("score").or_else(|| score.get("probability")).and_then(Value::as_f64);
                    if let (Some(label), Some(number)) = (score["name"].as_str(), number) {
                        row.insert(format!("{list}:{label}"), number.to_string());
                    }
                }
            }
            Value::Object(_) => flatten_under(&name, value, row),
            Value::Null => {}
            other => {
                row.insert(name, scalar(other));
            }
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Read;

    #[test]
    fn one_csv_per_model_with_a_column_per_score() {
        let predictions = json!([{"source": {"type": "text"}, "results": {"errors": [], "predictions": [{"file": "text", "models": {
        "language": {"metadata": null, "grouped_predictions": [{"id": "unknown", "predictions": [
            {"text": "so, great", "position": {"begin": 0, "end": 9}, "time": null,
             "emotions": [{"name": "Joy", "score": 0.5}, {"name": "Anger", "score": 0.25}], "sentiment": null}
        ]}]}}}]}}]);
        let bytes = zip_predictions(&predictions).unwrap();
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len(), 1);
        let mut text = String::new();
        archive.by_name("language.csv").unwrap().read_to_string(&mut text).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), "source,file,id,position.begin,position.end,text,emotion:Anger,emotion:Joy");
        assert_eq!(lines.next().unwrap(), "text[0],text,unknown,0,9,\"so, great\",0.25,0.5");
    }

    #[test]
    fn voice_measures_get_a_csv_of_their_own_one_row_per_utterance() {
        let predictions = json!([{"source": {"type": "url", "url": "https://x/call.mp3"}, "results": {"errors": [], "predictions": [{"file": "call.mp3", "models": {},
            "voice": [{"time": {"begin": 0.5, "end": 2.5}, "speaker": "unknown", "text": "Hello there.", "words": 2,
                       "pitch_hz": 120.5, "pitch_range_semitones": 3.2, "loudness_lufs": -24.1, "loudness_peak_lufs": -20.0,
                       "words_per_minute": 60.0, "in_baseline": true, "pitch_change_semitones": 0.0,
                       "loudness_change_db": -0.5, "rate_change_ratio": 1.0}]}]}}]);
        let mut archive = zip::ZipArchive::new(Cursor::new(zip_predictions(&predictions).unwrap())).unwrap();
        let mut text = String::new();
        archive.by_name("voice.csv").unwrap().read_to_string(&mut text).unwrap();
        let (header, row) = (text.lines().next().unwrap(), text.lines().nth(1).unwrap());
        assert_eq!(
            header,
            "source,file,in_baseline,loudness_change_db,loudness_lufs,loudness_peak_lufs,pitch_change_semitones,pitch_hz,pitch_range_semitones,rate_change_ratio,speaker,text,time.begin,time.end,words,words_per_minute"
        );
        assert_eq!(
            row,
            "https://x/call.mp3,call.mp3,true,-0.5,-24.1,-20.0,0.0,120.5,3.2,1.0,unknown,Hello there.,0.5,2.5,2,60.0"
        );
    }

    #[test]
    fn face_and_voice_rows_flatten_boxes_times_and_hume_s_own_lists() {
        let predictions = json!([{"source": {"type": "url", "url": "https://x/v.mp4"}, "results": {"errors": [], "predictions": [{"file": "v.mp4", "models": {
            "face": {"metadata": null, "grouped_predictions": [{"id": "face_0", "predictions": [
                {"frame": 3, "time": 1.0, "prob": 0.97, "box": {"x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0},
                 "emotions": [{"name": "Joy", "score": 0.8}], "facs": null, "descriptions": null}]}]},
            "prosody": {"metadata": null, "grouped_predictions": [{"id": "unknown", "predictions": [
                {"text": null, "time": {"begin": 0.5, "end": 3.5}, "confidence": null, "speaker_confidence": null,
                 "emotions": [{"name": "Interest", "score": 0.81}],
                 "hume_v1": {"measurement_id": 0, "utterance_id": 0, "trigger": "interval",
                             "expressions": [{"name": "chuckling", "probability": 0.74}], "voice_attributes": []}}]}]}
        }}]}}]);
        let mut archive = zip::ZipArchive::new(Cursor::new(zip_predictions(&predictions).unwrap())).unwrap();
        let read = |archive: &mut zip::ZipArchive<Cursor<Vec<u8>>>, name: &str| {
            let mut text = String::new();
            archive.by_name(name).unwrap().read_to_string(&mut text).unwrap();
            text
        };
        let face = read(&mut archive, "face.csv");
        assert_eq!(face.lines().next().unwrap(), "source,file,id,box.h,box.w,box.x,box.y,frame,prob,time,emotion:Joy");
        assert_eq!(face.lines().nth(1).unwrap(), "https://x/v.mp4,v.mp4,face_0,4.0,3.0,1.0,2.0,3,0.97,1.0,0.8");
        let prosody = read(&mut archive, "prosody.csv");
        let header = prosody.lines().next().unwrap();
        assert!(
            header.contains("time.begin,time.end")
                && header.ends_with("emotion:Interest,hume_v1.expressions:chuckling"),
            "{header}"
        );
    }
}
